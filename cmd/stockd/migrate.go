package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/flashstock/flashstock/node"
)

const migrateLogHelp = `stockd migrate-log --data-dir DIR --to bolt|wal

Converts a STOPPED node's raft log and stable store to the other kind, offline:
bolt (raft-boltdb, raft.db) or wal (raft-wal, raft-wal/). Every entry and raft's term and
vote are copied, read back and compared, and synced before the new store is renamed into
place; the old one is kept beside it under a dated name (delete it once the node runs
well). Start the node afterwards with --raft-log-store set to the new kind. The members of
a cluster may use different kinds, so convert one node at a time.

A migration cut off part-way leaves the old store in place (run it again), or, once the new
store is complete, both (the node refuses to start; run it again to finish).
`

// runMigrateLog is "stockd migrate-log".
func runMigrateLog(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stockd migrate-log", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataDir := fs.String("data-dir", "", "the stopped node's data dir")
	to := fs.String("to", "", "the kind to convert to: bolt or wal")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, migrateLogHelp)
			return 0
		}
		fmt.Fprintf(stderr, "stockd migrate-log: %v\n\nusage: %s", err, migrateLogHelp)
		return 2
	}
	if *dataDir == "" || (*to != node.LogStoreBolt && *to != node.LogStoreWAL) || fs.NArg() > 0 {
		fmt.Fprint(stderr, "stockd migrate-log: --data-dir and --to bolt|wal are required\n\nusage: "+migrateLogHelp)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := node.MigrateLogStore(ctx, *dataDir, *to, nil)
	if err != nil {
		fmt.Fprintf(stderr, "stockd migrate-log: %v\n", err)
		return 1
	}
	if res.Resumed {
		fmt.Fprintf(stdout, "finished an interrupted migration of %s to %s; the old %s store is at %s\n", *dataDir, res.To, res.From, res.KeptAt)
		return 0
	}
	fmt.Fprintf(stdout, "migrated %s from %s to %s: %d entries (index %d..%d) copied and verified; the old store is at %s\nstart the node with --raft-log-store %s\n",
		*dataDir, res.From, res.To, res.Entries, res.First, res.Last, res.KeptAt, res.To)
	return 0
}
