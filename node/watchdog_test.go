package node

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// stallingStore is a log store whose writes hang while stalled, as on a dying disk.
type stallingStore struct {
	raft.LogStore
	stalled *atomic.Bool
	release <-chan struct{}
}

func (s stallingStore) StoreLogs(logs []*raft.Log) error {
	if s.stalled.Load() {
		<-s.release
	}
	return s.LogStore.StoreLogs(logs)
}

func (s stallingStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func TestWatchdog_StalledLeaderStepsAsideAndRejoins(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	stalls := map[string]*atomic.Bool{}
	var mu sync.Mutex
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.DiskStallTimeout = 300 * time.Millisecond
		flag := &atomic.Bool{}
		mu.Lock()
		stalls[cfg.ID] = flag
		mu.Unlock()
		cfg.WrapLogStore = func(s raft.LogStore) raft.LogStore { return stallingStore{s, flag, release} }
	})
	// Runs before the cluster's own cleanup: a node cannot stop while its write hangs.
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	c.createSKU("tee", 10)
	li, old := c.WaitLeader()

	mu.Lock()
	stalls[old.ID()].Store(true) // the next write of the leader hangs (the expiry ticks make one)
	mu.Unlock()
	var ni int
	eventually(t, 20*time.Second, func() error {
		for i, n := range c.Running() {
			if i != li && n.IsLeader() {
				ni = i
				return nil
			}
		}
		return fmt.Errorf("no other leader yet")
	})
	if code, _ := c.call(old.HTTPAddr(), "GET", "/readyz", nil, nil); code != 503 {
		t.Fatalf("stalled node's readyz: %d", code)
	}
	// The cluster goes on without the stalled node.
	var out api.DeductResponse
	c.mustCall(c.Node(ni).HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "during", UserID: "u"}, &out)
	if out.Remaining != 9 {
		t.Fatalf("deduct during the stall: %+v", out)
	}
	text := scrape(t, c, old)
	if v, ok := sample(text, `flashstock_disk_stalled{group="1"}`); !ok || v != 1 {
		t.Errorf("flashstock_disk_stalled = %v %v", v, ok)
	}

	// The disk comes back: the old leader follows the new one and catches up.
	mu.Lock()
	stalls[old.ID()].Store(false)
	mu.Unlock()
	releaseOnce.Do(func() { close(release) })
	eventually(t, 20*time.Second, func() error {
		if code, err := c.call(old.HTTPAddr(), "GET", "/readyz", nil, nil); code != 200 {
			return fmt.Errorf("readyz %d %v", code, err)
		}
		return nil
	})
	c.converged()
}
