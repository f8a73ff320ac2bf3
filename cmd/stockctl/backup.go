package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/flashstock/flashstock/fsm"
)

func runBackup(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "inspect" {
		return runBackupInspect(args[1:], stdout, stderr)
	}
	c := newCLI("backup", "backup --out FILE [flags]\n       stockctl backup inspect FILE [--json]", `
Writes a consistent snapshot of the leader's state to FILE ("-" for standard output). The
file appears only once complete: an interrupted backup leaves no partial file behind.
Written to a file, the backup is then read back and checked, and its state hash printed:
the hash "stockd restore" prints after seeding a node from it.

A multi-group cluster (bootstrapped with --groups above 1) is backed up into a new
directory --out: one snapshot per data group (group-N.snap, each from its group's
leader, one group after another) and manifest.json with the placement, every file's
size and sha256, and each group's applied index and state hash. It too appears only once
complete and checked; "stockd restore DIR" restores it, "backup inspect DIR" checks it.

"backup inspect FILE" describes a backup offline (no cluster needed): applied index,
state hash, state format version, SKU count and size; "backup inspect DIR" a multi-group
one, its checksums checked.

examples:
  stockctl backup --out flashstock-$(date +%F).snap
  stockctl backup --out - | gzip > flashstock.snap.gz
  stockctl backup inspect flashstock-2026-12-07.snap`, stdout, stderr)
	out := c.fs.String("out", "", "the file to write, or - for standard output (required)")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	if *out == "" {
		return c.usageError("--out is required (a file name, or - for standard output)")
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	view, err := cl.ClusterStatus(ctx)
	if err != nil {
		return c.explain(err)
	}
	if view.PlacementVersion > 0 {
		return runGroupBackup(ctx, c, cl, view, *out, stdout)
	}
	if *out == "-" {
		_, err := cl.Backup(ctx, stdout)
		return c.explain(err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), filepath.Base(*out)+".partial-*")
	if err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	info, err := cl.Backup(ctx, tmp)
	if err != nil {
		tmp.Close()
		return c.explain(err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	// Read back before the rename: a backup that would not restore never gets the name.
	snap, err := inspectFile(tmp.Name())
	if err != nil {
		return fmt.Errorf("the backup from %s does not check out, not kept: %w", info.Node, err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	hash := hex.EncodeToString(snap.StateHash[:])
	if c.json {
		return writeJSON(stdout, map[string]any{"file": *out, "bytes": info.Bytes, "applied_index": snap.AppliedIndex,
			"state_hash": hash, "node": info.Node})
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes, state at log index %d, from %s\nstate hash %s\n", *out, info.Bytes, snap.AppliedIndex, info.Node, hash)
	return nil
}

// backupInspection is what "backup inspect --json" prints.
type backupInspection struct {
	File         string `json:"file"`
	AppliedIndex uint64 `json:"applied_index"`
	StateHash    string `json:"state_hash"`
	Format       int    `json:"format_version"`
	SKUs         int    `json:"skus"`
	Bytes        int64  `json:"bytes"`
}

func runBackupInspect(args []string, stdout, stderr io.Writer) error {
	c := newCLI("backup inspect", "backup inspect FILE [--json]", `
Describes a backup file offline, without a cluster: the log index its state reflects, the
state hash (what "stockd restore" prints after seeding from it, and GET /v1/debug/state
shows on a replica at that index), the state format version, the number of SKUs and the
size. The file is checked as a restore checks it (checksum, a readable state): a damaged
backup fails here, not at restore time.

examples:
  stockctl backup inspect flashstock-2026-12-07.snap
  stockctl backup inspect flashstock.snap --json`, stdout, stderr)
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if st, err := os.Stat(pos[0]); err == nil && st.IsDir() {
		return runGroupBackupInspect(c, pos[0], stdout)
	}
	snap, err := inspectFile(pos[0])
	if err != nil {
		return err
	}
	out := backupInspection{File: pos[0], AppliedIndex: snap.AppliedIndex, StateHash: hex.EncodeToString(snap.StateHash[:]),
		Format: snap.Format, SKUs: snap.SKUs, Bytes: snap.Bytes}
	if c.json {
		return writeJSON(stdout, out)
	}
	_, err = fmt.Fprintf(stdout, "file:           %s\napplied index:  %d\nstate hash:     %s\nformat version: %d\nskus:           %d\nsize:           %d bytes\n",
		out.File, out.AppliedIndex, out.StateHash, out.Format, out.SKUs, out.Bytes)
	return err
}

// inspectFile checks a backup file and describes it, unpacking it beside the file (where
// there is room for it) and removing that copy.
func inspectFile(path string) (fsm.SnapshotInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return fsm.SnapshotInfo{}, err
	}
	defer f.Close()
	info, err := fsm.InspectSnapshot(f, filepath.Dir(path))
	if err != nil {
		return fsm.SnapshotInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}
