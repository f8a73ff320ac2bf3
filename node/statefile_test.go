package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

// A follower whose machine went down while its state file was open (its unclean mark holds
// another boot id) must not trust the file: it sets it aside, restores the newest raft
// snapshot, replays the log after it, and ends with the state of the others. Here the file
// is garbage, so trusting it would fail the start.
func TestState_RebuiltAfterMachineCrash(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold = 64
		cfg.SnapshotInterval = 50 * time.Millisecond
		cfg.TrailingLogs = 16
	})
	c.createSKU("s", 10_000)
	li, l := c.WaitLeader()
	buy := func(from, to int) {
		for i := from; i < to; i++ {
			c.mustCall(l.HTTPAddr(), "POST", "/v1/skus/s/deduct", api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("r%d", i), UserID: "u"}, nil)
		}
	}
	buy(0, 200)
	f := (li + 1) % 3
	dir := c.Config(f).DataDir
	eventually(t, 10*time.Second, func() error { // the follower has taken a snapshot of its own
		if list, err := c.Node(f).cluster.snaps.List(); err != nil || len(list) == 0 {
			return fmt.Errorf("no snapshot yet (%v)", err)
		}
		return nil
	})
	if err := c.Node(f).Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, uncleanName)); !os.IsNotExist(err) {
		t.Fatalf("a clean stop left the unclean mark: %v", err)
	}
	buy(200, 260) // entries the follower gets after its restart, by log or snapshot
	if err := os.WriteFile(filepath.Join(dir, stateDBName), []byte("torn by a power cut"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, uncleanName), []byte("00000000-0000-0000-0000-000000000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Restart(f)
	c.converged()
	if b, err := os.ReadFile(filepath.Join(dir, untrustedName)); err != nil || string(b) != "torn by a power cut" {
		t.Fatalf("the untrusted file was not set aside: %q, %v", b, err)
	}
	var s api.SKU
	c.mustCall(c.Node(f).HTTPAddr(), "GET", "/v1/skus/s?consistency=stale", nil, &s)
	if s.Sold != 260 {
		t.Fatalf("rebuilt follower shows %d sold, want 260", s.Sold)
	}
	// The dedup table was rebuilt too: an early request id answers with its first result.
	var out api.DeductResponse
	c.mustCall(c.Node(f).HTTPAddr(), "POST", "/v1/skus/s/deduct", api.DeductRequest{Qty: 1, RequestID: "r3", UserID: "u"}, &out)
	if !out.Duplicate || out.Remaining != 10_000-4 {
		t.Fatalf("old request after the rebuild: %+v", out)
	}
}

// A mark from this boot means only the process died: the page cache kept every write, so
// the file is trusted and nothing is set aside or rebuilt.
func TestState_TrustedAfterProcessCrash(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.createSKU("s", 5)
	dir := c.Config(0).DataDir
	applied := c.Node(0).cluster.fsm.AppliedIndex()
	if err := c.Node(0).Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, uncleanName), []byte(bootID()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Restart(0)
	if _, err := os.Stat(filepath.Join(dir, untrustedName)); !os.IsNotExist(err) {
		t.Fatalf("state set aside after a process crash: %v", err)
	}
	if got := c.Node(0).cluster.fsm.AppliedIndex(); got < applied {
		t.Fatalf("state opened at index %d, was %d", got, applied)
	}
}
