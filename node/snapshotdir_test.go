package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

// A node cut during a snapshot leaves snapshots/<id>.tmp behind; the next start removes
// it, and only it: the complete snapshots stay and the node serves from them.
func TestSnapshots_IncompleteRemovedOnStart(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.SnapshotThreshold = 16
		cfg.SnapshotInterval = 50 * time.Millisecond
		cfg.TrailingLogs = 8
	})
	c.createSKU("s", 1000)
	for i := range 40 {
		c.mustCall(c.AnyAddr(), "POST", "/v1/skus/s/deduct", api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("r%d", i), UserID: "u"}, nil)
	}
	eventually(t, 10*time.Second, func() error {
		if list, err := c.Node(0).cluster.snaps.List(); err != nil || len(list) == 0 {
			return fmt.Errorf("no snapshot yet (%v)", err)
		}
		return nil
	})
	if err := c.Node(0).Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	snapDir := filepath.Join(c.Config(0).DataDir, "snapshots")
	complete, err := os.ReadDir(snapDir)
	if err != nil || len(complete) == 0 {
		t.Fatalf("snapshots before the restart: %v %v", complete, err)
	}
	// What raft leaves when the process dies between creating a snapshot and renaming it.
	cut := filepath.Join(snapDir, "2-99-1700000000000.tmp")
	if err := os.MkdirAll(cut, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cut, "state.bin"), []byte("half a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A file named like one is not raft's: left alone.
	stray := filepath.Join(snapDir, "notes.tmp")
	if err := os.WriteFile(stray, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	c.Restart(0)
	c.WaitLeader()
	if _, err := os.Stat(cut); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the incomplete snapshot is still there: %v", err)
	}
	if _, err := os.Stat(stray); err != nil {
		t.Fatalf("a file that is not a snapshot dir was removed: %v", err)
	}
	for _, e := range complete {
		if _, err := os.Stat(filepath.Join(snapDir, e.Name())); err != nil {
			t.Fatalf("complete snapshot %s: %v", e.Name(), err)
		}
	}
	var s api.SKU
	c.mustCall(c.AnyAddr(), "GET", "/v1/skus/s", nil, &s)
	if s.Sold != 40 {
		t.Fatalf("after the restart: sold %d, want 40", s.Sold)
	}
}
