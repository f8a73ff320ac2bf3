package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	bolt "go.etcd.io/bbolt"
)

// The raft log and stable store of a data dir: one of two kinds, never both.
//
//   - bolt (the default): raft-boltdb/v2 in raft.db. Every append is a bbolt commit, two
//     fdatasyncs.
//   - wal: hashicorp/raft-wal in raft-wal/ (segment files and a small bolt meta file),
//     Consul's default on new clusters since 1.20. One fsync per append.
//
// A node refuses a data dir that holds the other kind; `stockd migrate-log` converts one
// offline (MigrateLogStore). Members of one cluster may use different kinds: the log's
// content is the same.
const (
	LogStoreBolt = "bolt"
	LogStoreWAL  = "wal"

	walDirName = "raft-wal"
	lockName   = "LOCK"
)

// raftStore is what raft needs of a log store; both kinds are also its stable store.
type raftStore interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

// logStorePath is where the store of kind lives in dataDir.
func logStorePath(dataDir, kind string) string {
	if kind == LogStoreWAL {
		return filepath.Join(dataDir, walDirName)
	}
	return filepath.Join(dataDir, raftDBName)
}

// DetectLogStore says which kind of raft log dataDir holds: "" when none. Both at once means
// a migration was cut off after its new store was complete (see MigrateLogStore).
func DetectLogStore(dataDir string) (string, error) {
	var found []string
	for _, kind := range []string{LogStoreBolt, LogStoreWAL} {
		if _, err := os.Stat(logStorePath(dataDir, kind)); err == nil {
			found = append(found, kind)
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s holds both a bolt raft log (%s) and a wal one (%s/): a `stockd migrate-log` was interrupted; run it again with the same --to",
		dataDir, raftDBName, walDirName)
}

// openLogStore opens the raft log of kind in dataDir, creating it when the dir holds none,
// and refusing a dir that holds the other kind. It holds the data dir's lock until Close,
// so two processes never open one log (raft-wal's meta file would otherwise wait forever).
// walSegment is raft-wal's segment size in bytes (0: its default; Config.WALSegmentSize).
func openLogStore(dataDir, kind string, walSegment int, logger hclog.Logger) (raftStore, error) {
	if kind == "" {
		kind = LogStoreBolt
	}
	if kind != LogStoreBolt && kind != LogStoreWAL {
		return nil, fmt.Errorf("raft log store %q: want %s or %s", kind, LogStoreBolt, LogStoreWAL)
	}
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return nil, err
	}
	found, err := DetectLogStore(dataDir)
	if err == nil && found != "" && found != kind {
		err = fmt.Errorf("%s holds a %s raft log, and this node is set to use %s: convert it offline first (stockd migrate-log --data-dir %s --to %s), or start with --raft-log-store %s",
			dataDir, found, kind, dataDir, kind, found)
	}
	var s raftStore
	if err == nil {
		s, err = openStoreOfKind(dataDir, kind, walSegment, logger)
	}
	if err != nil {
		unlock()
		return nil, err
	}
	return lockedStore{s, unlock}, nil
}

func openStoreOfKind(dataDir, kind string, walSegment int, logger hclog.Logger) (raftStore, error) {
	if kind == LogStoreWAL {
		return openWAL(logStorePath(dataDir, kind), walSegment, logger)
	}
	return openBolt(logStorePath(dataDir, kind))
}

func openBolt(path string) (raftStore, error) {
	s, err := raftboltdb.New(raftboltdb.Options{
		Path: path,
		// fsync stays on (NoSync false). Not syncing the freelist is etcd's setting too: it
		// is rebuilt on open, and every commit writes less.
		BoltOptions: &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType},
	})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", path, err)
	}
	return s, nil
}

func openWAL(dir string, segment int, logger hclog.Logger) (raftStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft log dir: %w", err)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if segment <= 0 {
		segment = wal.DefaultSegmentSize
	}
	w, err := wal.Open(dir, wal.WithLogger(logger.Named("wal")), wal.WithSegmentSize(segment))
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	return w, nil
}

// lockedStore releases the data dir's lock after closing the store.
type lockedStore struct {
	raftStore
	unlock func()
}

func (s lockedStore) Close() error {
	defer s.unlock()
	return s.raftStore.Close()
}

// IsMonotonic passes raft-wal's answer through (raft.MonotonicLogStore): after installing a
// snapshot, raft then drops the whole log instead of leaving a gap that store cannot hold.
func (s lockedStore) IsMonotonic() bool {
	m, ok := s.raftStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// lockDataDir takes an exclusive lock on dataDir's LOCK file, without waiting.
func lockDataDir(dataDir string) (unlock func(), err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dataDir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another process (is stockd still running?)", dataDir)
		}
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	return func() { f.Close() }, nil
}

// logStoreKind is the kind this node's log store is (the metrics' store label).
func (g *Group) logStoreKind() string {
	if g.cfg.LogStore == "" {
		return LogStoreBolt
	}
	return g.cfg.LogStore
}
