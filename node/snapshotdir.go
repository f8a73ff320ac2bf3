package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// removeTempSnapshots deletes the snapshots a crash interrupted. raft's file snapshot
// store writes a snapshot into snapshots/<id>.tmp and renames it when complete; it never
// reads a .tmp dir again, and never removes one either, so every crash during a snapshot
// (a kill, a power cut) would leave one behind for good, as large as the state. It runs
// at start, before raft does, so no snapshot of this process is in progress.
func removeTempSnapshots(dataDir string, log hclog.Logger) error {
	dir := filepath.Join(dataDir, "snapshots") // raft's FileSnapshotStore layout
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		log.Warn("removing a snapshot left incomplete by a crash", "dir", e.Name())
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}
