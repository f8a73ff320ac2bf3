package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// watch opens a SKU's event stream on addr and returns a function that waits for its next
// event (failing the test when ctx ends first).
func watch(t *testing.T, ctx context.Context, addr, sku string) (next func() api.SKU, resp *http.Response) {
	t.Helper()
	events, resp := openWatch(t, ctx, addr, sku)
	return func() api.SKU {
		t.Helper()
		select {
		case s, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return s
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return api.SKU{}
	}, resp
}

// openWatch opens a SKU's event stream on addr: its answer and its events, the channel
// closed when the stream ends (ctx ending ends it too).
func openWatch(t *testing.T, ctx context.Context, addr, sku string) (<-chan api.SKU, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/skus/"+sku+"/watch", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch %s: HTTP %d: %v", sku, resp.StatusCode, readAPIError(resp))
	}
	events := make(chan api.SKU, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var s api.SKU
				if json.Unmarshal([]byte(data), &s) == nil {
					events <- s
				}
			}
		}
	}()
	return events, resp
}

// waitEvent reads events until one satisfies ok: a watcher may skip intermediate states.
func waitEvent(next func() api.SKU, ok func(api.SKU) bool) api.SKU {
	for {
		if s := next(); ok(s) {
			return s
		}
	}
}

func TestWatch_StreamsChanges(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("tee", 10)
	li, _ := c.WaitLeader()
	// Watching through a follower right after the create: it may not have applied the SKU
	// yet, and must wait for it rather than answer not_found.
	follower := c.Node((li + 1) % 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	next, resp := watch(t, ctx, follower.HTTPAddr(), "tee")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	if got := resp.Header.Get(api.HeaderLeader); got != c.Node(li).HTTPAddr() {
		t.Fatalf("leader hint %q, want %q", got, c.Node(li).HTTPAddr())
	}
	if s := next(); s.Available != 10 {
		t.Fatalf("first event %+v", s)
	}
	for i, want := range []int64{9, 8} {
		c.mustCall(c.LeaderAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "w" + string(rune('a'+i)), UserID: "u"}, nil)
		// A watcher may skip intermediate states, never go backwards or miss the last one.
		for s := next(); s.Available != want; s = next() {
			if s.Available < want {
				t.Fatalf("event %+v went past %d", s, want)
			}
		}
	}
}

// Stock a hold gave back is a change like any other: the expiry round's entry names it.
func TestWatch_HearsStockComeBackFromAnExpiredHold(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.createSKU("tee", 10)
	addr := c.Node(0).HTTPAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	next, _ := watch(t, ctx, addr, "tee")
	if s := next(); s.Available != 10 {
		t.Fatalf("first event %+v", s)
	}
	c.mustCall(addr, "POST", "/v1/orders", api.ReserveRequest{OrderID: "o1", UserID: "u", RequestID: "r1",
		TTLMillis: 300, Lines: []api.Line{{SKU: "tee", Qty: 3}}}, nil)
	waitEvent(next, func(s api.SKU) bool { return s.Reserved == 3 })
	// Nothing else writes to tee: only the expiry round can bring the stock back.
	s := waitEvent(next, func(s api.SKU) bool { return s.Reserved == 0 })
	if s.Available != 10 {
		t.Fatalf("after the hold expired %+v, want 10 available", s)
	}
}

// A follower that catches up by installing a snapshot gets its state without an entry
// naming the SKUs that changed: its watchers must hear of the restore itself.
func TestWatch_HearsASnapshotRestore(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold = 16
		cfg.SnapshotInterval = 50 * time.Millisecond
		cfg.TrailingLogs = 8
	})
	c.createSKU("tee", 100)
	li, l := c.WaitLeader()
	fi := (li + 1) % 3
	f := c.Node(fi)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next, _ := watch(t, ctx, f.HTTPAddr(), "tee")
	if s := next(); s.Available != 100 {
		t.Fatalf("first event %+v", s)
	}
	c.Isolate(fi)
	const sold = 40
	for i := range sold {
		c.mustCall(l.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("d%d", i), UserID: "u"}, nil)
	}
	// The leader snapshots past the last deduct (so no entry after the snapshot names tee)
	// and drops the log the follower would need.
	behind, lastDeduct := f.cluster.fsm.AppliedIndex(), l.cluster.fsm.AppliedIndex()
	eventually(t, 15*time.Second, func() error {
		_ = l.cluster.raft.Snapshot().Error() // or the interval takes one
		snaps, err := l.cluster.snaps.List()
		if err != nil || len(snaps) == 0 || snaps[0].Index < lastDeduct {
			return fmt.Errorf("no snapshot past index %d yet (%v)", lastDeduct, err)
		}
		if first, err := l.cluster.logStore.FirstIndex(); err != nil || first <= behind+1 {
			return fmt.Errorf("leader's log starts at %d, follower applied %d (%v)", first, behind, err)
		}
		return nil
	})
	c.Heal()
	s := waitEvent(next, func(s api.SKU) bool { return s.Sold == sold })
	if s.Available != 100-sold {
		t.Fatalf("after the restore %+v", s)
	}
}

// Asking for the leader that already leads gets what was asked: 200 naming it, whether
// sent to the leader or forwarded by a follower, and leadership stays where it was.
func TestTransfer_ToTheCurrentLeaderIsANoOp(t *testing.T) {
	c := newCluster(t, 2, nil)
	li, l := c.WaitLeader()
	term := l.cluster.raft.CurrentTerm()
	for _, via := range []*Node{l, c.Node(1 - li)} {
		var out map[string]string
		code, err := c.call(via.HTTPAddr(), "POST", "/v1/cluster/leader", api.TransferRequest{ID: l.ID()}, &out)
		if err != nil || code != http.StatusOK || out["leader"] != l.ID() {
			t.Fatalf("transfer to the leader via %s: %d %v %v", via.ID(), code, out, err)
		}
	}
	if !l.IsLeader() || l.cluster.raft.CurrentTerm() != term {
		t.Fatalf("leadership moved: %s leads %v, term %d → %d", l.ID(), l.IsLeader(), term, l.cluster.raft.CurrentTerm())
	}
}

func TestBackup_RestoresToTheSameState(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.createSKU("tee", 10)
	addr := c.Node(0).HTTPAddr()
	c.mustCall(addr, "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 4, RequestID: "b1", UserID: "u"}, nil)
	resp, err := http.Get("http://" + addr + "/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	snap, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get(api.HeaderAppliedIndex) == "" {
		t.Fatalf("backup: %d %v", resp.StatusCode, resp.Header)
	}
	m, err := fsm.Open(filepath.Join(t.TempDir(), "restored.db"), fsm.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	s, err := m.GetSKU("tee")
	if err != nil || s.Sold != 4 || s.Available != 6 {
		t.Fatalf("restored %+v %v", s, err)
	}
}

func TestHealthAndReady(t *testing.T) {
	c := newCluster(t, 1, nil)
	addr := c.Node(0).HTTPAddr()
	var h api.Health
	c.mustCall(addr, "GET", "/healthz", nil, &h)
	c.mustCall(addr, "GET", "/readyz", nil, &h)
	if h.Status != "ok" || h.Leader != "n1" {
		t.Fatalf("ready %+v", h)
	}
	// A node that is not part of any cluster yet is alive but not ready.
	cfg := fastConfig(t, "lonely")
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Kill()
	c.mustCall(n.HTTPAddr(), "GET", "/healthz", nil, &h)
	if code, err := c.call(n.HTTPAddr(), "GET", "/readyz", nil, &h); code != 503 || err == nil {
		t.Fatalf("readyz of a lone node: %d %v", code, err)
	}
}

func TestDebugState_ReplicasAgree(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("tee", 10)
	c.mustCall(c.LeaderAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "d", UserID: "u"}, nil)
	eventually(t, 10*time.Second, func() error {
		var first api.DebugState
		for i, n := range c.Running() {
			var st api.DebugState
			c.mustCall(n.HTTPAddr(), "GET", "/v1/debug/state", nil, &st)
			if st.Invariants != "ok" || len(st.StateHash) != 64 {
				t.Fatalf("%s: %+v", n.ID(), st)
			}
			if i == 0 {
				first = st
			} else if st.AppliedIndex != first.AppliedIndex || st.StateHash != first.StateHash {
				return fmt.Errorf("%s at %d, %s at %d: hashes %s / %s", first.ID, first.AppliedIndex, st.ID, st.AppliedIndex, first.StateHash[:8], st.StateHash[:8])
			}
		}
		return nil
	})
}
