package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// MigrateResult says what MigrateLogStore did.
type MigrateResult struct {
	From, To    string
	First, Last uint64 // the log's index range, copied (0, 0: an empty log)
	Entries     uint64
	KeptAt      string // where the old store was moved: delete it once the node runs well
	Resumed     bool   // an interrupted migration was finished
}

// raft's stable-store keys (raft.go): the term and the vote must survive a migration, or the
// node could vote twice in one term.
var (
	stableUint64Keys = [][]byte{[]byte("CurrentTerm"), []byte("LastVoteTerm")}
	stableBytesKeys  = [][]byte{[]byte("LastVoteCand")}
)

// MigrateLogStore converts a STOPPED node's raft log and stable store to kind `to`, offline.
// The new store is written beside the old one under a temporary name, read back and
// compared entry by entry, synced, and only then renamed into place; the old store is then
// moved aside (MigrateResult.KeptAt), not deleted. A migration cut off after the rename
// leaves both stores, which a node refuses to start on and which a second run finishes.
func MigrateLogStore(ctx context.Context, dataDir, to string, logger hclog.Logger) (MigrateResult, error) {
	if to != LogStoreBolt && to != LogStoreWAL {
		return MigrateResult{}, fmt.Errorf("migrate: --to %q: want %s or %s", to, LogStoreBolt, LogStoreWAL)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return MigrateResult{}, fmt.Errorf("migrate: %w", err)
	}
	defer unlock()
	from := LogStoreBolt
	if to == LogStoreBolt {
		from = LogStoreWAL
	}
	res := MigrateResult{From: from, To: to}
	_, errFrom := os.Stat(logStorePath(dataDir, from))
	_, errTo := os.Stat(logStorePath(dataDir, to))
	switch {
	case errFrom != nil && errTo == nil:
		return res, fmt.Errorf("migrate: %s already holds a %s raft log and no %s one: nothing to do", dataDir, to, from)
	case errFrom != nil:
		return res, fmt.Errorf("migrate: %s holds no %s raft log (%s)", dataDir, from, logStorePath(dataDir, from))
	case errTo == nil:
		// The new store was renamed into place only once complete: finish the move.
		res.Resumed = true
		res.KeptAt, err = keepAside(dataDir, from)
		return res, err
	}

	tmp := logStorePath(dataDir, to) + ".migrating"
	if err := os.RemoveAll(tmp); err != nil {
		return res, fmt.Errorf("migrate: remove an earlier attempt: %w", err)
	}
	src, err := openStoreOfKind(dataDir, from, 0, logger)
	if err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	defer src.Close()
	dst, err := openStoreAt(tmp, to, logger)
	if err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	if err := copyRaftStore(ctx, src, dst, &res); err != nil {
		dst.Close()
		os.RemoveAll(tmp)
		return res, fmt.Errorf("migrate: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.RemoveAll(tmp)
		return res, fmt.Errorf("migrate: close the new store: %w", err)
	}
	if err := syncPath(tmp); err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	if err := os.Rename(tmp, logStorePath(dataDir, to)); err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	if err := syncPath(dataDir); err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	if err := src.Close(); err != nil {
		return res, fmt.Errorf("migrate: close the old store: %w", err)
	}
	res.KeptAt, err = keepAside(dataDir, from)
	return res, err
}

// openStoreAt opens a store of kind at an explicit path (the migration's temporary one).
func openStoreAt(path, kind string, logger hclog.Logger) (raftStore, error) {
	if kind == LogStoreWAL {
		return openWAL(path, 0, logger)
	}
	return openBolt(path)
}

// copyRaftStore copies every log entry and raft's stable keys, then reads the copy back.
func copyRaftStore(ctx context.Context, src, dst raftStore, res *MigrateResult) error {
	first, err := src.FirstIndex()
	if err != nil {
		return fmt.Errorf("read first index: %w", err)
	}
	last, err := src.LastIndex()
	if err != nil {
		return fmt.Errorf("read last index: %w", err)
	}
	res.First, res.Last = first, last
	const chunk = 1024
	if last > 0 {
		for lo := first; lo <= last; lo += chunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			var logs []*raft.Log
			for i := lo; i < lo+chunk && i <= last; i++ {
				l := new(raft.Log)
				if err := src.GetLog(i, l); err != nil {
					return fmt.Errorf("read entry %d: %w", i, err)
				}
				logs = append(logs, l)
			}
			if err := dst.StoreLogs(logs); err != nil {
				return fmt.Errorf("write entries from %d: %w", lo, err)
			}
			res.Entries += uint64(len(logs))
		}
	}
	// A key never set reads as raft-boltdb's ErrKeyNotFound or as raft-wal's zero value; the
	// copy leaves it unset either way.
	for _, k := range stableUint64Keys {
		v, err := src.GetUint64(k)
		if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
			return fmt.Errorf("read %s: %w", k, err)
		}
		if v == 0 {
			continue
		}
		if err := dst.SetUint64(k, v); err != nil {
			return fmt.Errorf("write %s: %w", k, err)
		}
	}
	for _, k := range stableBytesKeys {
		v, err := src.Get(k)
		if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
			return fmt.Errorf("read %s: %w", k, err)
		}
		if len(v) == 0 {
			continue
		}
		if err := dst.Set(k, v); err != nil {
			return fmt.Errorf("write %s: %w", k, err)
		}
	}
	return verifyCopy(src, dst, first, last)
}

func verifyCopy(src, dst raftStore, first, last uint64) error {
	if last == 0 {
		return nil
	}
	df, err := dst.FirstIndex()
	if err != nil {
		return err
	}
	dl, err := dst.LastIndex()
	if err != nil {
		return err
	}
	if df != first || dl != last {
		return fmt.Errorf("verify: the copy holds %d..%d, the original %d..%d", df, dl, first, last)
	}
	var a, b raft.Log
	for i := first; i <= last; i++ {
		if err := src.GetLog(i, &a); err != nil {
			return fmt.Errorf("verify: read entry %d: %w", i, err)
		}
		if err := dst.GetLog(i, &b); err != nil {
			return fmt.Errorf("verify: read the copy of entry %d: %w", i, err)
		}
		if a.Index != b.Index || a.Term != b.Term || a.Type != b.Type || !bytes.Equal(a.Data, b.Data) || !bytes.Equal(a.Extensions, b.Extensions) {
			return fmt.Errorf("verify: entry %d differs in the copy", i)
		}
	}
	return nil
}

// keepAside moves the old store of kind out of the data dir's way, under a dated name.
func keepAside(dataDir, kind string) (string, error) {
	from := logStorePath(dataDir, kind)
	to := fmt.Sprintf("%s.pre-migrate-%s", from, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(from, to); err != nil {
		return "", fmt.Errorf("migrate: move the old store aside: %w", err)
	}
	return to, syncPath(dataDir)
}

// syncPath fsyncs a file, or a directory and (for a directory) every file in it.
func syncPath(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				if err := syncFile(filepath.Join(path, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return syncFile(path)
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}
