package node

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

func TestCluster_WriteThroughFollowerAppliedOnce(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("tee", 10)
	li, _ := c.WaitLeader()
	f := c.Node((li + 1) % 3)
	var out api.DeductResponse
	c.mustCall(f.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 3, RequestID: "r1", UserID: "u"}, &out)
	if out.Remaining != 7 || out.Duplicate {
		t.Fatalf("first answer %+v", out)
	}
	// The same request through another follower: the first answer again, nothing applied.
	c.mustCall(c.Node((li+2)%3).HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 3, RequestID: "r1", UserID: "u"}, &out)
	if out.Remaining != 7 || !out.Duplicate {
		t.Fatalf("retry answer %+v", out)
	}
	var s api.SKU
	c.mustCall(f.HTTPAddr(), "GET", "/v1/skus/tee", nil, &s) // strong, forwarded
	if s.Sold != 3 || s.Available != 7 {
		t.Fatalf("sku %+v", s)
	}
	c.converged()
}

func TestCluster_LeaderKilledMidStream(t *testing.T) {
	c := newCluster(t, 3, nil)
	const stock, buyers = 200, 40
	c.createSKU("hot", stock)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var mu sync.Mutex
	acked := map[string]bool{}
	answers := map[string]api.DeductResponse{}
	var soldOut atomic.Int64
	pick := c.AnyAddr
	var wg sync.WaitGroup
	for b := 0; b < buyers; b++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("b%d-%d", b, i)
				code, out := c.buy(ctx, "hot", id, fmt.Sprintf("u%d", b), pick)
				switch code {
				case api.OK:
					mu.Lock()
					acked[id], answers[id] = true, out
					mu.Unlock()
				case api.SoldOut:
					soldOut.Add(1)
					return
				default:
					t.Errorf("buyer %d: %s", b, code)
					return
				}
			}
		}()
	}
	// Kill the leader once sales are under way, then bring it back.
	eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < stock/4 {
			return fmt.Errorf("%d sold", len(acked))
		}
		return nil
	})
	li, old := c.WaitLeader()
	old.Kill()
	start := time.Now()
	ni, _ := c.WaitLeader()
	t.Logf("new leader %s after %v", c.Node(ni).ID(), time.Since(start))
	c.Restart(li)
	wg.Wait()

	if len(acked) != stock {
		t.Fatalf("%d distinct requests acknowledged, stock %d", len(acked), stock)
	}
	var s api.SKU
	_, l := c.WaitLeader()
	c.mustCall(l.HTTPAddr(), "GET", "/v1/skus/hot", nil, &s)
	if s.Sold != stock || s.Available != 0 {
		t.Fatalf("sku %+v after the sale", s)
	}
	// Every acknowledged request, asked again, gives its first answer and changes nothing.
	for id, first := range answers {
		var again api.DeductResponse
		c.mustCall(l.HTTPAddr(), "POST", "/v1/skus/hot/deduct", api.DeductRequest{Qty: 1, RequestID: id, UserID: "u" + id[1:indexOf(id, '-')]}, &again)
		if !again.Duplicate || again.Remaining != first.Remaining {
			t.Fatalf("%s: retry %+v, first %+v", id, again, first)
		}
	}
	c.converged()
}

func indexOf(s string, b byte) int {
	for i := range s {
		if s[i] == b {
			return i
		}
	}
	return len(s)
}

func TestCluster_StrongReadsAfterLeaderChange(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("s", 100)
	li, old := c.WaitLeader()
	oldAddr := old.HTTPAddr()

	// Partition the leader away from its peers; clients can still reach it.
	c.Isolate(li)
	var ni int
	eventually(t, 15*time.Second, func() error {
		for i, n := range c.Nodes() {
			if i != li && n.IsLeader() {
				ni = i
				return nil
			}
		}
		return fmt.Errorf("no new leader among the majority")
	})
	// The majority sells one unit.
	var out api.DeductResponse
	c.mustCall(c.Node(ni).HTTPAddr(), "POST", "/v1/skus/s/deduct", api.DeductRequest{Qty: 1, RequestID: "after", UserID: "u"}, &out)
	if out.Remaining != 99 {
		t.Fatalf("remaining %d", out.Remaining)
	}
	// The old leader must not serve a strong read of the old state, nor acknowledge a write.
	var s api.SKU
	code, err := c.call(oldAddr, "GET", "/v1/skus/s", nil, &s)
	if err == nil {
		t.Fatalf("partitioned old leader served a strong read: %+v", s)
	}
	if code != 503 && code != 504 {
		t.Fatalf("partitioned old leader answered %d %v", code, err)
	}
	if _, err := c.call(oldAddr, "POST", "/v1/skus/s/deduct", api.DeductRequest{Qty: 1, RequestID: "lost", UserID: "u"}, &out); err == nil {
		t.Fatal("partitioned old leader acknowledged a write")
	}
	// A stale read there says how stale it is.
	c.mustCall(oldAddr, "GET", "/v1/skus/s?consistency=stale", nil, &s)
	c.Heal()
	// After healing, a strong read anywhere sees the new state.
	eventually(t, 15*time.Second, func() error {
		for _, n := range c.Nodes() {
			if _, err := c.call(n.HTTPAddr(), "GET", "/v1/skus/s", nil, &s); err != nil {
				return err
			}
			if s.Sold != 1 {
				return fmt.Errorf("strong read via %s saw sold=%d", n.ID(), s.Sold)
			}
		}
		return nil
	})
	c.converged()
}

func TestCluster_JoinRemoveRestart(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("s", 1000)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sold atomic.Int64
	var mu sync.Mutex
	var unknown []string // cut off by the end of the load: applied or not
	for b := 0; b < 8; b++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("l%d-%d", b, i)
				code, _ := c.buy(ctx, "s", id, "u", c.LeaderAddr)
				switch {
				case code == api.OK:
					sold.Add(1)
				case ctx.Err() != nil:
					mu.Lock()
					unknown = append(unknown, id)
					mu.Unlock()
				}
			}
		}()
	}
	// Join a fourth node under load.
	cfg := fastConfig(t, "n4")
	cfg.Join = []string{c.Node(1).HTTPAddr()}
	c.Add(cfg)
	c.WaitReady(4)
	// Remove a follower.
	li, l := c.WaitLeader()
	victim := (li + 1) % 4
	c.mustCall(l.HTTPAddr(), "DELETE", "/v1/cluster/members/"+c.Node(victim).ID(), nil, nil)
	select {
	case <-c.Node(victim).Done():
	case <-time.After(15 * time.Second):
		t.Fatal("removed node did not stop")
	}
	var cl api.Cluster
	c.mustCall(l.HTTPAddr(), "GET", "/v1/cluster", nil, &cl)
	if len(cl.Nodes) != 3 {
		t.Fatalf("cluster after removal: %+v", cl)
	}
	// Restart a follower with its data.
	li, _ = c.WaitLeader()
	r := (li + 1) % 4
	if r == victim {
		r = (r + 1) % 4
	}
	c.Node(r).Shutdown(context.Background())
	c.Restart(r)
	cancel()
	wg.Wait()
	// A buyer stopped while its request was in flight does not know whether it sold: its
	// retry with the same request id settles it, exactly once (the first sale answered
	// again as a duplicate, a sale now, or sold out: never applied).
	settle, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	for _, id := range unknown {
		switch code, _ := c.buy(settle, "s", id, "u", c.LeaderAddr); code {
		case api.OK:
			sold.Add(1)
		case api.SoldOut: // never applied, and now too late
		default:
			t.Fatalf("settling %s: %s", id, code)
		}
	}
	c.converged()
	var s api.SKU
	_, l = c.WaitLeader()
	c.mustCall(l.HTTPAddr(), "GET", "/v1/skus/s", nil, &s)
	if s.Sold != sold.Load() {
		t.Fatalf("sold %d, acknowledged %d", s.Sold, sold.Load())
	}
}

// Each log store kind: raft-wal is a MonotonicLogStore, so raft drops its whole log after
// installing a snapshot instead of leaving a gap.
func TestCluster_CatchUpThroughSnapshot(t *testing.T) {
	for _, kind := range []string{LogStoreBolt, LogStoreWAL} {
		t.Run(kind, func(t *testing.T) { testCatchUpThroughSnapshot(t, kind) })
	}
}

func testCatchUpThroughSnapshot(t *testing.T, kind string) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.LogStore = kind
		cfg.SnapshotThreshold = 64
		cfg.SnapshotInterval = 50 * time.Millisecond
		cfg.TrailingLogs = 16
	})
	c.createSKU("s", 10_000)
	_, l := c.WaitLeader()
	for i := 0; i < 400; i++ {
		c.mustCall(l.HTTPAddr(), "POST", "/v1/skus/s/deduct", api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("r%d", i), UserID: "u"}, nil)
	}
	// Let the leader compact its log, then add a node that can only catch up by snapshot.
	eventually(t, 10*time.Second, func() error {
		first, err := l.cluster.logStore.FirstIndex()
		if err != nil || first < 100 {
			return fmt.Errorf("log still starts at %d", first)
		}
		return nil
	})
	cfg := fastConfig(t, "n4")
	cfg.LogStore = kind
	cfg.Join = []string{l.HTTPAddr()}
	n4 := c.Add(cfg)
	c.WaitReady(4)
	c.converged()
	// The dedup table came with the snapshot: an old request id answers as the first time.
	var out api.DeductResponse
	c.mustCall(n4.HTTPAddr(), "POST", "/v1/skus/s/deduct", api.DeductRequest{Qty: 1, RequestID: "r7", UserID: "u"}, &out)
	if !out.Duplicate || out.Remaining != 10_000-8 {
		t.Fatalf("old request via the new node: %+v", out)
	}
}

// A start that fails after raft is up (its HTTP port taken: a restart whose old port
// another process picked up) stops raft before closing the stores under it: no raft
// goroutine is left to log "database not open" from a node that New never returned.
func TestNew_FailedStartLeavesNoRaftRunning(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	before := raftGoroutines()
	cfg := fastConfig(t, "n1")
	cfg.Bootstrap, cfg.HTTPAddr = true, taken.Addr().String()
	if n, err := New(cfg); err == nil {
		n.Kill()
		t.Fatal("New succeeded on a taken HTTP port")
	}
	eventually(t, 5*time.Second, func() error {
		if n := raftGoroutines(); n > before {
			return fmt.Errorf("%d raft goroutines after the failed start, %d before", n, before)
		}
		return nil
	})
}

// raftGoroutines counts the goroutines running hashicorp/raft's code, by their stacks.
func raftGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/hashicorp/raft.") {
			n++
		}
	}
	return n
}
