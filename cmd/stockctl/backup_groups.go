package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
	"github.com/flashstock/flashstock/node"
)

// runGroupBackup writes a multi-group cluster's backup: the directory out, holding each
// data group's snapshot and node.GroupBackupManifest. It is built in a directory beside
// out and renamed to it only once every file is written, synced and read back as a
// restore reads it (node.ReadGroupBackup), as a single-group backup file is.
func runGroupBackup(ctx context.Context, c *cli, cl *client.Client, view api.Cluster, out string, stdout io.Writer) error {
	if out == "-" {
		return c.usageError("this cluster has %d raft groups: its backup is a directory, not a stream; give --out DIR", len(view.Groups))
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("--out %s exists: a multi-group backup is a new directory", out)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), filepath.Base(out)+".partial-*")
	if err != nil {
		return fmt.Errorf("--out %s: %w", out, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	man := node.NewGroupBackup(api.Placement{Version: view.PlacementVersion, SlotCount: api.SlotCount, Groups: view.Groups})
	for _, g := range view.Groups {
		if g.Kind != api.GroupData {
			continue
		}
		f, err := backupGroupFile(ctx, cl, g.ID, filepath.Join(tmp, node.GroupBackupFileName(g.ID)))
		if err != nil {
			return c.explain(err)
		}
		man.Groups = append(man.Groups, f)
	}
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSynced(filepath.Join(tmp, node.GroupBackupManifest), append(b, '\n')); err != nil {
		return fmt.Errorf("--out %s: %w", out, err)
	}
	// Read back before the rename: a backup that would not restore never gets the name.
	if _, err := node.ReadGroupBackup(tmp); err != nil {
		return fmt.Errorf("the backup does not check out, not kept: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("--out %s: %w", out, err)
	}
	if c.json {
		return writeJSON(stdout, map[string]any{"dir": out, "placement_version": view.PlacementVersion, "groups": man.Groups})
	}
	fmt.Fprintf(stdout, "wrote %s: %d data groups of placement version %d\n", out, len(man.Groups), view.PlacementVersion)
	for _, f := range man.Groups {
		fmt.Fprintf(stdout, "group %d: %s, %d bytes, state at log index %d, from %s\n  state hash %s\n", f.ID, f.File, f.Bytes, f.AppliedIndex, f.Node, f.StateHash)
	}
	return nil
}

// backupGroupFile writes data group id's snapshot to path, synced, and describes it.
func backupGroupFile(ctx context.Context, cl *client.Client, id uint64, path string) (node.GroupBackupFile, error) {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return node.GroupBackupFile{}, err
	}
	defer file.Close()
	sum := sha256.New()
	info, err := cl.BackupGroup(ctx, id, io.MultiWriter(file, sum))
	if err != nil {
		return node.GroupBackupFile{}, fmt.Errorf("group %d: %w", id, err)
	}
	if err := file.Sync(); err != nil {
		return node.GroupBackupFile{}, err
	}
	snap, err := inspectFile(path)
	if err != nil {
		return node.GroupBackupFile{}, fmt.Errorf("group %d from %s does not check out: %w", id, info.Node, err)
	}
	return node.GroupBackupFile{ID: id, File: filepath.Base(path), Bytes: info.Bytes, SHA256: hex.EncodeToString(sum.Sum(nil)),
		AppliedIndex: snap.AppliedIndex, StateHash: hex.EncodeToString(snap.StateHash[:]), Node: info.Node}, nil
}

func writeFileSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runGroupBackupInspect is "backup inspect DIR": a multi-group backup checked as a
// restore checks it, and described.
func runGroupBackupInspect(c *cli, dir string, stdout io.Writer) error {
	b, err := node.ReadGroupBackup(dir)
	if err != nil {
		return err
	}
	if c.json {
		return writeJSON(stdout, map[string]any{"dir": dir, "placement_version": b.Placement.Version, "groups": b.Groups})
	}
	fmt.Fprintf(stdout, "dir:               %s\nplacement version: %d\ndata groups:       %d\n", dir, b.Placement.Version, len(b.Groups))
	for _, f := range b.Groups {
		fmt.Fprintf(stdout, "group %d: %s, %d bytes, state at log index %d\n  state hash %s\n", f.ID, f.File, f.Bytes, f.AppliedIndex, f.StateHash)
	}
	return nil
}
