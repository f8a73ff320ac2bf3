package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/node"
)

const restoreHelp = `stockd restore FILE|DIR --id ID --data-dir EMPTY_DIR [stockd flags]

Seeds the first node of a NEW cluster from a backup (stockctl backup --out FILE). The data
dir must be empty. The backup becomes a raft snapshot at the backup's own log index, with
this node as the only voter, so the new cluster's log continues above everything in the
backup. It prints the state's applied index and hash: they equal the source's
GET /v1/debug/state at the time of the backup.

Then start the node with the same flags, without "restore" (no --bootstrap needed), and
let the other nodes join it with empty data dirs. --raft-addr (or --raft-advertise) must be
the address the node will really have: it goes into the cluster configuration.

A multi-group backup is a directory (stockctl backup of a cluster bootstrapped with
--groups above 1): restore DIR seeds every data group, each from its file, and a
placement of this node alone with the backup's slot table; start the node with --groups
set to the backup's number of data groups. --http-addr (or --http-advertise) must be the
node's real address too: the placement lists it. A failed restore may leave some groups
seeded: empty the data dir before trying again.

Stop the old cluster first, or keep it apart: two clusters with the same stock would sell
it twice.
`

const recoverHelp = `stockd recover --peers FILE --id ID --data-dir DIR [stockd flags]

Lost quorum: rewrites a STOPPED node's raft membership to the members listed in FILE, in
raft's peers.json format:

  [{"id": "n1", "address": "10.0.0.1:5001", "non_voter": false}]

Run it on every surviving node with the same file, then start them with their usual
command; new members can then join to restore the cluster's size.

Risk: the survivors' logs may hold entries that a majority never accepted and no client
was told succeeded; recovery commits them. Recover from the survivor with the highest
applied index, and never while a majority of the old cluster still runs.
`

// runRestore is "stockd restore FILE [flags]".
func runRestore(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprint(stdout, restoreHelp)
			return 0
		}
		fmt.Fprint(stderr, "stockd restore: the backup FILE comes first\n\nusage: "+restoreHelp)
		return 2
	}
	file := args[0]
	cfg, logger, code := restoreConfig("stockd restore", args[1:], stdout, stderr, restoreHelp)
	if code >= 0 {
		return code
	}
	if st, err := os.Stat(file); err == nil && st.IsDir() {
		return restoreGroups(cfg, logger, file, stdout)
	}
	f, err := os.Open(file)
	if err != nil {
		logger.Error("open backup", "error", err)
		return 1
	}
	defer f.Close()
	res, err := node.SeedFromBackup(cfg, f)
	if err != nil {
		logger.Error("restore failed", "error", err)
		return 1
	}
	fmt.Fprintf(stdout, "seeded %s from %s: applied index %d, state hash %s\nstart the node with the same flags (without \"restore\"); other nodes join it\n",
		cfg.DataDir, file, res.AppliedIndex, hex.EncodeToString(res.StateHash[:]))
	return 0
}

// restoreGroups is "stockd restore DIR": a multi-group backup (stockctl backup of a
// cluster bootstrapped with --groups above 1).
func restoreGroups(cfg node.Config, logger hclog.Logger, dir string, stdout io.Writer) int {
	res, err := node.SeedGroupsFromBackup(cfg, dir)
	if err != nil {
		logger.Error("restore failed", "error", err)
		return 1
	}
	for i, r := range res {
		fmt.Fprintf(stdout, "seeded group %d of %s from %s: applied index %d, state hash %s\n",
			i+1, cfg.DataDir, dir, r.AppliedIndex, hex.EncodeToString(r.StateHash[:]))
	}
	fmt.Fprintf(stdout, "start the node with the same flags and --groups %d (without \"restore\"); other nodes join it\n", len(res))
	return 0
}

// runRecover is "stockd recover --peers FILE [flags]".
func runRecover(args []string, stdout, stderr io.Writer) int {
	var peers string
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--peers" || a == "-peers":
			if i+1 < len(args) {
				peers = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--peers=") || strings.HasPrefix(a, "-peers="):
			peers = a[strings.Index(a, "=")+1:]
		default:
			rest = append(rest, a)
		}
	}
	cfg, logger, code := restoreConfig("stockd recover", rest, stdout, stderr, recoverHelp)
	if code >= 0 {
		return code
	}
	if peers == "" {
		fmt.Fprint(stderr, "stockd recover: --peers FILE is required\n\nusage: "+recoverHelp)
		return 2
	}
	conf, err := node.ReadPeersFile(peers)
	if err != nil {
		logger.Error("recover failed", "error", err)
		return 1
	}
	res, err := node.RecoverCluster(cfg, conf)
	if err != nil {
		logger.Error("recover failed", "error", err)
		return 1
	}
	fmt.Fprintf(stdout, "recovered %s as a member of %d: applied index %d, state hash %s\nstart the node with its usual command\n",
		cfg.DataDir, len(conf.Servers), res.AppliedIndex, hex.EncodeToString(res.StateHash[:]))
	return 0
}

// restoreConfig parses stockd's flags for restore and recover; code is -1 to go on.
func restoreConfig(prog string, args []string, stdout, stderr io.Writer, help string) (node.Config, hclog.Logger, int) {
	opts, err := parseOptions(args, os.LookupEnv, os.ReadFile)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, help)
		return node.Config{}, nil, 0
	}
	if err != nil {
		reportUsageError(stderr, prog, err)
		return node.Config{}, nil, 2
	}
	logger := createLogger(opts.logLevel, opts.logJSON, stderr)
	cfg, err := createNodeConfig(opts, logger)
	if err != nil {
		logger.Error("invalid configuration", "error", err)
		return node.Config{}, nil, 2
	}
	return cfg, logger, -1
}
