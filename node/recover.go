package node

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/fsm"
)

// SeedResult describes the state a seeded or recovered data dir starts from.
type SeedResult struct {
	AppliedIndex uint64   // the fsm's applied index (the backup's source index for a seed)
	StateHash    [32]byte // the fsm's state hash, as GET /v1/debug/state reports it
	SnapshotIdx  uint64   // the raft snapshot index the node starts after
}

// SeedFromBackup makes cfg.DataDir the first node of a NEW cluster whose state is a backup
// (the stream of GET /v1/backup). Start the node afterwards with cfg as usual (Bootstrap
// is not needed: the data dir has raft state); others join it.
//
// Why not simply restore the fsm and bootstrap: the backup's applied index is far ahead of
// a fresh raft log, which starts again at index 1, and the fsm skips every entry at or
// below its applied index — it would ignore the new cluster's first writes. Instead the
// backup becomes a raft snapshot taken at the backup's own index, in term 1, with a
// configuration of this node alone; raft then starts after the snapshot, so its log
// continues above everything in the backup. Followers that join receive that snapshot.
//
// cfg.RaftAdvertise (or cfg.RaftAddr) must be the address the node will really have: it
// is written into the cluster configuration.
func SeedFromBackup(cfg Config, backup io.Reader) (SeedResult, error) {
	addr, err := seedAddr(cfg)
	if err != nil {
		return SeedResult{}, err
	}
	return seedGroup(cfg, cfg.DataDir, addr, backup)
}

// seedAddr is the raft address a seeded node records in its configuration.
func seedAddr(cfg Config) (string, error) {
	addr := cfg.RaftAdvertise
	if addr == "" {
		addr = cfg.RaftAddr
	}
	switch {
	case cfg.ID == "" || cfg.DataDir == "":
		return "", errors.New("seed: id and data dir are required")
	case addr == "" || hasPortZero(addr):
		return "", fmt.Errorf("seed: raft address %q must be the node's real address (it goes into the configuration)", addr)
	}
	return addr, nil
}

// seedGroup seeds one data group's dir (the data dir's root for group 1) from a backup.
func seedGroup(cfg Config, dir, addr string, backup io.Reader) (SeedResult, error) {
	for _, name := range []string{raftDBName, walDirName, stateDBName} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return SeedResult{}, fmt.Errorf("seed: %s already holds %s: a restore seeds a new cluster into an empty data dir", dir, name)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return SeedResult{}, fmt.Errorf("seed: create data dir: %w", err)
	}
	m, err := fsm.Open(filepath.Join(dir, stateDBName), fsm.Options{DedupWindow: cfg.DedupWindow, LedgerMax: cfg.LedgerMax})
	if err != nil {
		return SeedResult{}, err
	}
	defer m.Close()
	if err := m.Restore(backup); err != nil {
		return SeedResult{}, fmt.Errorf("seed: restore backup: %w", err)
	}
	var res SeedResult
	res.AppliedIndex, res.StateHash, err = m.HashAt()
	if err != nil {
		return SeedResult{}, err
	}
	res.SnapshotIdx = max(res.AppliedIndex, 1)
	snap, err := m.Snapshot()
	if err != nil {
		return SeedResult{}, err
	}
	defer snap.Release()
	if err := seedRaft(cfg, dir, addr, res.SnapshotIdx, fsmSnapshot{snap}); err != nil {
		return SeedResult{}, err
	}
	return res, nil
}

// seedRaft writes the raft state of a group that starts from snap: term 1, and a raft
// snapshot at index whose configuration is this node alone.
func seedRaft(cfg Config, dir, addr string, index uint64, snap raft.FSMSnapshot) error {
	store, err := openLogStore(dir, cfg.LogStore, cfg.WALSegmentSize, cfg.Logger)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer store.Close()
	// raft's own BootstrapCluster starts the term at 1 the same way.
	if err := store.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		return fmt.Errorf("seed: write term: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hclog.NewNullLogger())
	if err != nil {
		return fmt.Errorf("seed: open snapshot store: %w", err)
	}
	// The snapshot store asks a transport to encode peers for old protocol versions only.
	_, trans := raft.NewInmemTransport(raft.ServerAddress(addr))
	defer trans.Close()
	conf := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(addr), Suffrage: raft.Voter}}}
	sink, err := snaps.Create(raft.SnapshotVersionMax, index, 1, conf, index, trans)
	if err != nil {
		return fmt.Errorf("seed: create snapshot: %w", err)
	}
	if err := snap.Persist(sink); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

func hasPortZero(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err != nil || port == "0"
}

// ReadPeersFile reads a peers file in raft's peers.json format (version 3):
//
//	[{"id": "n1", "address": "10.0.0.1:5001", "non_voter": false}]
func ReadPeersFile(path string) (raft.Configuration, error) {
	c, err := raft.ReadConfigJSON(path)
	if err != nil {
		return raft.Configuration{}, fmt.Errorf("peers file %s: %w", path, err)
	}
	return c, nil
}

// RecoverCluster rewrites a STOPPED node's raft state so that it belongs to the cluster of
// peers, whatever its log said: the way back from a lost quorum (two of three nodes gone
// for good). Run it on every surviving node with the same peers, then start them as usual;
// new nodes can join afterwards to restore the cluster's size.
//
// The risk (docs/RAFT-NOTES.md, "Lost quorum"): the survivors' logs may hold entries that were
// never committed — accepted by this node but not by a majority, and never acknowledged to
// a client as done — and recovery applies and commits them. A client that got a timeout
// for such a request sees it done; one that retried with the same request_id gets the
// first answer (exactly-once still holds). Entries acknowledged to clients are on a
// majority, so if any survivor holds them, recover from the most up-to-date survivor (the
// highest applied index: GET /v1/debug/state before it stopped, or stockd's start log).
// Never run it while the node runs, nor while a quorum of the old cluster still lives: two
// clusters would then accept writes for the same SKUs.
func RecoverCluster(cfg Config, peers raft.Configuration) (SeedResult, error) {
	if cfg.ID == "" || cfg.DataDir == "" {
		return SeedResult{}, errors.New("recover: id and data dir are required")
	}
	self := false
	for _, s := range peers.Servers {
		self = self || (string(s.ID) == cfg.ID && s.Suffrage == raft.Voter)
	}
	if !self {
		return SeedResult{}, fmt.Errorf("recover: the peers must list this node (%s) as a voter", cfg.ID)
	}
	if !HasState(cfg.DataDir) {
		return SeedResult{}, fmt.Errorf("recover: %s holds no raft state", cfg.DataDir)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	m, err := openState(cfg.DataDir, fsm.Options{DedupWindow: cfg.DedupWindow, LedgerMax: cfg.LedgerMax}, logger)
	if err != nil {
		return SeedResult{}, err
	}
	defer closeState(m, cfg.DataDir)
	kind, err := DetectLogStore(cfg.DataDir)
	if err != nil {
		return SeedResult{}, fmt.Errorf("recover: %w", err)
	}
	store, err := openLogStore(cfg.DataDir, kind, cfg.WALSegmentSize, logger)
	if err != nil {
		return SeedResult{}, fmt.Errorf("recover: %w", err)
	}
	defer store.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, logger.Named("snapshot"))
	if err != nil {
		return SeedResult{}, fmt.Errorf("recover: open snapshot store: %w", err)
	}
	_, trans := raft.NewInmemTransport("")
	defer trans.Close()
	var applyErr error
	sm := recoveryFSM{&stateMachine{m: m, fatal: func(err error) { applyErr = err }}}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = logger.Named("raft")
	// raft replays the log after the newest snapshot into the fsm, uncommitted entries
	// included; the fsm skips what it already applied.
	if err := raft.RecoverCluster(rc, sm, store, store, snaps, trans, peers); err != nil {
		return SeedResult{}, fmt.Errorf("recover: %w", err)
	}
	if applyErr != nil {
		return SeedResult{}, fmt.Errorf("recover: apply: %w", applyErr)
	}
	var res SeedResult
	res.AppliedIndex, res.StateHash, err = m.HashAt()
	if list, lerr := snaps.List(); lerr == nil && len(list) > 0 {
		res.SnapshotIdx = list[0].Index
	}
	return res, err
}

// recoveryFSM releases the snapshot raft.RecoverCluster takes once it is persisted:
// RecoverCluster never calls Release, and an unreleased fsm snapshot holds a bbolt read
// transaction that keeps the state file from closing.
type recoveryFSM struct{ *stateMachine }

func (r recoveryFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := r.stateMachine.Snapshot()
	if err != nil {
		return nil, err
	}
	return &releasingSnapshot{FSMSnapshot: s}, nil
}

type releasingSnapshot struct {
	raft.FSMSnapshot
	once sync.Once
}

func (s *releasingSnapshot) Persist(sink raft.SnapshotSink) error {
	defer s.Release()
	return s.FSMSnapshot.Persist(sink)
}

func (s *releasingSnapshot) Release() { s.once.Do(s.FSMSnapshot.Release) }
