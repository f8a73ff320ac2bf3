package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

// A cluster may mix log stores: the log's content is the same.
func TestCluster_MixedLogStores(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		if cfg.ID != "n1" {
			cfg.LogStore = LogStoreWAL
		}
	})
	c.createSKU("s", 100)
	_, l := c.WaitLeader()
	for i := range 20 {
		c.mustCall(l.HTTPAddr(), "POST", "/v1/skus/s/deduct", api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("r%d", i), UserID: "u"}, nil)
	}
	for _, id := range []string{"n2", "n3"} {
		if _, err := os.Stat(filepath.Join(c.Config(indexOfID(c, id)).DataDir, walDirName)); err != nil {
			t.Fatalf("%s has no wal: %v", id, err)
		}
	}
	c.Node(1).Kill()
	c.Restart(1)
	c.converged()
	var s api.SKU
	c.mustCall(c.Node(1).HTTPAddr(), "GET", "/v1/skus/s", nil, &s)
	if s.Available != 80 {
		t.Fatalf("after restarting the wal node: %+v, want 80 available", s)
	}
}

func indexOfID(c *testCluster, id string) int {
	for i := range c.Size() {
		if c.Config(i).ID == id {
			return i
		}
	}
	c.t.Fatalf("no node %s", id)
	return -1
}

// oneNode starts a single-node cluster on dir with kind, sells n units of "s" (created with
// 1000 on the first start), and stops it; it returns the applied index and term it
// stopped at.
func oneNode(t *testing.T, dir, kind string, sell int, reqPrefix string) (applied, term uint64) {
	t.Helper()
	cfg := fastConfig(t, "solo")
	cfg.DataDir = dir
	cfg.LogStore = kind
	cfg.Bootstrap = true
	c := emptyCluster(t)
	n := c.Add(cfg)
	defer n.Kill()
	c.WaitLeader()
	if _, err := n.cluster.fsm.GetSKU("s"); err != nil {
		c.mustCall(n.HTTPAddr(), "PUT", "/v1/skus/s", map[string]any{"stock": 1000}, nil)
	}
	for i := range sell {
		c.mustCall(n.HTTPAddr(), "POST", "/v1/skus/s/deduct", api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("%s%d", reqPrefix, i), UserID: "u"}, nil)
	}
	applied, term = n.cluster.fsm.AppliedIndex(), n.cluster.raft.CurrentTerm()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return applied, term
}

func TestLogStore_RefusesTheOtherKind(t *testing.T) {
	dir := t.TempDir()
	oneNode(t, dir, LogStoreBolt, 1, "r")
	cfg := fastConfig(t, "solo")
	cfg.DataDir, cfg.LogStore = dir, LogStoreWAL
	n, err := New(cfg)
	if err == nil {
		n.Kill()
		t.Fatal("a bolt data dir started with the wal store")
	}
	if !strings.Contains(err.Error(), "migrate-log") {
		t.Fatalf("refusal does not say how to convert: %v", err)
	}
}

func TestLogStore_DataDirLockedWhileInUse(t *testing.T) {
	dir := t.TempDir()
	cfg := fastConfig(t, "solo")
	cfg.DataDir, cfg.Bootstrap = dir, true
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Kill()
	if _, err := MigrateLogStore(context.Background(), dir, LogStoreWAL, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("migrating a running node's log: %v, want an in-use refusal", err)
	}
	cfg2 := cfg
	cfg2.HTTPAddr, cfg2.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	if n2, err := New(cfg2); err == nil {
		n2.Kill()
		t.Fatal("a second node started on a data dir in use")
	}
}

// bolt → wal → bolt: the node comes back each time with the same state and the same
// exactly-once memory, and goes on writing.
func TestMigrateLogStore_RoundTrip(t *testing.T) {
	dir := t.TempDir()
	applied, term := oneNode(t, dir, LogStoreBolt, 30, "a")
	res, err := MigrateLogStore(context.Background(), dir, LogStoreWAL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Last < applied || res.Entries == 0 || res.KeptAt == "" {
		t.Fatalf("migration result %+v, applied index was %d", res, applied)
	}
	if kind, err := DetectLogStore(dir); kind != LogStoreWAL || err != nil {
		t.Fatalf("after migrating: %q, %v", kind, err)
	}
	// Starting on the wal replays nothing new, and request a0 is still remembered.
	cfg := fastConfig(t, "solo")
	cfg.DataDir, cfg.LogStore = dir, LogStoreWAL
	c := emptyCluster(t)
	n := c.Add(cfg)
	c.WaitLeader()
	// raft found its whole log and its term in the new store: it did not start over.
	if last := n.cluster.raft.LastIndex(); last <= applied {
		t.Fatalf("raft's last index on the wal is %d, want past %d", last, applied)
	}
	if got := n.cluster.raft.CurrentTerm(); got <= term {
		t.Fatalf("term on the wal is %d, want past %d", got, term)
	}
	var d api.DeductResponse
	c.mustCall(n.HTTPAddr(), "POST", "/v1/skus/s/deduct", api.DeductRequest{Qty: 1, RequestID: "a0", UserID: "u"}, &d)
	if !d.Duplicate || d.Remaining != 999 {
		t.Fatalf("a0 after the migration: %+v, want the first answer (999) as a duplicate", d)
	}
	n.Kill()
	applied2, _ := oneNode(t, dir, LogStoreWAL, 5, "b")
	if _, err := MigrateLogStore(context.Background(), dir, LogStoreBolt, nil); err != nil {
		t.Fatal(err)
	}
	applied3, _ := oneNode(t, dir, LogStoreBolt, 1, "c")
	if applied3 <= applied2 {
		t.Fatalf("applied index went from %d to %d after migrating back", applied2, applied3)
	}
}

// A migration cut off after the new store was renamed into place leaves both stores: the
// node refuses them, and a second run finishes the move.
func TestMigrateLogStore_InterruptedAfterRename(t *testing.T) {
	dir := t.TempDir()
	oneNode(t, dir, LogStoreBolt, 3, "a")
	if _, err := MigrateLogStore(context.Background(), dir, LogStoreWAL, nil); err != nil {
		t.Fatal(err)
	}
	// Put the old store back, as if the run had stopped before moving it aside.
	kept, _ := filepath.Glob(filepath.Join(dir, raftDBName+".pre-migrate-*"))
	if len(kept) != 1 {
		t.Fatalf("kept stores: %v", kept)
	}
	if err := os.Rename(kept[0], filepath.Join(dir, raftDBName)); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig(t, "solo")
	cfg.DataDir, cfg.LogStore = dir, LogStoreWAL
	if n, err := New(cfg); err == nil {
		n.Kill()
		t.Fatal("started on a dir with both stores")
	} else if !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("refusal: %v", err)
	}
	res, err := MigrateLogStore(context.Background(), dir, LogStoreWAL, nil)
	if err != nil || !res.Resumed {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	oneNode(t, dir, LogStoreWAL, 1, "b")
}
