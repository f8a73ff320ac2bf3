package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// A deduction commits on the leader, the leader dies before its answer reaches the client,
// and the client retries elsewhere with the same request_id: it gets the first answer
// (flagged duplicate), and the unit is taken once.
func TestClient_LeaderKilledWhileRetrying(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(map[bool]string{false: "single", true: "batched"}[batched], func(t *testing.T) {
			leaderKilledWhileRetrying(t, batched)
		})
	}
}

func leaderKilledWhileRetrying(t *testing.T, batched bool) {
	path := "/v1/skus/tee/deduct"
	if batched {
		path = "/v1/batch/deduct"
	}
	c := startCluster(t, 3)
	ctx := testContext(t)

	var mu sync.Mutex
	var ids []string
	var killed atomic.Bool
	rec := &recorder{base: http.DefaultTransport.(*http.Transport).Clone()}
	rec.before = func(req *http.Request) {
		if req.URL.Path != path {
			return
		}
		body, _ := req.GetBody()
		var d struct {
			api.DeductRequest
			Items []api.DeductItem `json:"items"`
		}
		_ = json.NewDecoder(body).Decode(&d)
		if batched && len(d.Items) == 1 {
			d.RequestID = d.Items[0].RequestID
		}
		mu.Lock()
		ids = append(ids, d.RequestID)
		mu.Unlock()
	}
	rec.after = func(req *http.Request, resp *http.Response, err error) (*http.Response, error) {
		if req.URL.Path != path || err != nil || resp.StatusCode != 200 || killed.Swap(true) {
			return resp, err
		}
		resp.Body.Close()
		if i, _ := c.Leader(); i >= 0 {
			c.Node(i).Kill() // committed, applied, answered: and the answer is lost with the leader
		}
		return nil, errors.New("connection reset (test)")
	}
	cl := newClient(t, client.Config{Endpoints: c.Addrs(), Transport: rec, DisableBatching: !batched})
	if _, err := cl.CreateSKU(ctx, "tee", 10); err != nil {
		t.Fatal(err)
	}

	got, err := cl.Deduct(ctx, "tee", 1, "u1")
	if err != nil {
		t.Fatalf("deduct: %v", err)
	}
	if got.Remaining != 9 || !got.Duplicate {
		t.Fatalf("answer %+v, want the first answer (remaining 9) replayed as a duplicate", got)
	}
	mu.Lock()
	if len(ids) < 2 || slices.Compact(slices.Clone(ids))[0] != ids[0] || len(slices.Compact(slices.Clone(ids))) != 1 {
		t.Fatalf("request ids of the tries: %q, want one id sent at least twice", ids)
	}
	mu.Unlock()
	s, err := cl.GetSKU(ctx, "tee")
	if err != nil {
		t.Fatal(err)
	}
	if s.Sold != 1 || s.Available != 9 {
		t.Fatalf("after the retried deduction: %+v, want sold 1", s)
	}
}

// Buyers race for stock while the leader is killed: every call ends with a definite answer,
// every unit sold is a success some buyer saw, and none is sold twice.
func TestClient_SellOutThroughLeaderFailover(t *testing.T) {
	c := startCluster(t, 3)
	ctx := testContext(t)
	cl := newClient(t, client.Config{Endpoints: c.Addrs()})
	const stock, buyers = 60, 8
	if _, err := cl.CreateSKU(ctx, "hot", stock); err != nil {
		t.Fatal(err)
	}
	var sold, soldOut atomic.Int64
	var wg sync.WaitGroup
	for b := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := cl.Deduct(ctx, "hot", 1, fmt.Sprintf("u%d", b))
				switch {
				case err == nil:
					sold.Add(1)
				case errors.Is(err, client.ErrSoldOut):
					soldOut.Add(1)
					return
				default:
					t.Errorf("buyer %d: %v", b, err)
					return
				}
			}
		}()
	}
	eventually(t, 20*time.Second, func() error {
		if n := sold.Load(); n < stock/4 {
			return fmt.Errorf("%d sold", n)
		}
		return nil
	})
	_, l := c.WaitLeader()
	l.Kill()
	wg.Wait()
	if sold.Load() != stock || soldOut.Load() != buyers {
		t.Fatalf("%d successes, %d sold-out answers; want %d and %d", sold.Load(), soldOut.Load(), stock, buyers)
	}
	s, err := cl.GetSKU(ctx, "hot")
	if err != nil {
		t.Fatal(err)
	}
	if s.Sold != stock || s.Available != 0 {
		t.Fatalf("sku %+v", s)
	}
}

// A node that dies is skipped by stale reads once its health check fails, and used again
// once it answers.
func TestClient_NodeDownThenBack(t *testing.T) {
	c := startCluster(t, 3)
	ctx := testContext(t)
	cl := newClient(t, client.Config{Endpoints: c.Addrs()})
	if _, err := cl.CreateSKU(ctx, "mug", 5); err != nil {
		t.Fatal(err)
	}
	li, _ := c.WaitLeader()
	victim := (li + 1) % 3
	addr := c.Node(victim).HTTPAddr()
	c.Node(victim).Kill()
	eventually(t, 10*time.Second, func() error { return healthOf(cl, addr, false) })

	for i := 0; i < 30; i++ {
		var info client.ReadInfo
		if _, err := cl.GetSKU(ctx, "mug", client.WithStale(), client.WithReadInfo(&info)); err != nil {
			t.Fatalf("stale read %d with a node down: %v", i, err)
		}
		if info.Node == addr {
			t.Fatalf("stale read %d served by the dead node %s", i, addr)
		}
	}
	if _, err := cl.Deduct(ctx, "mug", 1, "u"); err != nil {
		t.Fatalf("deduct with a node down: %v", err)
	}

	c.Restart(victim)
	eventually(t, 10*time.Second, func() error { return healthOf(cl, addr, true) })
	eventually(t, 10*time.Second, func() error {
		var info client.ReadInfo
		if _, err := cl.GetSKU(ctx, "mug", client.WithStale(), client.WithReadInfo(&info)); err != nil {
			return err
		}
		if info.Node != addr {
			return fmt.Errorf("served by %s", info.Node)
		}
		return nil
	})
}

func healthOf(cl *client.Client, addr string, want bool) error {
	for _, e := range cl.Endpoints() {
		if e.Addr == addr {
			if e.Healthy != want {
				return fmt.Errorf("%s healthy=%v", addr, e.Healthy)
			}
			return nil
		}
	}
	return fmt.Errorf("%s not among %+v", addr, cl.Endpoints())
}

// fakeDNS answers LookupHost from a table the test changes.
type fakeDNS struct {
	mu    sync.Mutex
	hosts map[string][]string
}

func (f *fakeDNS) set(name string, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[name] = ips
}

func (f *fakeDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ips, ok := f.hosts[host]; ok {
		return slices.Clone(ips), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// One DNS name stands for the cluster: three nodes on three loopback addresses and one
// port. The client finds all three, works through them, and follows the records as they
// change.
func TestClient_DNSEndpoints(t *testing.T) {
	port := freePort(t)
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	c := startCluster(t, 3, ips[0]+":"+port, ips[1]+":"+port, ips[2]+":"+port)
	ctx := testContext(t)
	dns := &fakeDNS{hosts: map[string][]string{}}
	dns.set("flashstock.test", ips...)
	cl := newClient(t, client.Config{Endpoints: []string{"flashstock.test:" + port}, Resolver: dns,
		ResolveInterval: 20 * time.Millisecond})

	want := []string{c.Addrs()[0], c.Addrs()[1], c.Addrs()[2]}
	if got := endpointAddrs(cl); !slices.Equal(got, want) {
		t.Fatalf("endpoints %q, want %q", got, want)
	}
	if _, err := cl.CreateSKU(ctx, "cap", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Deduct(ctx, "cap", 1, "u"); err != nil {
		t.Fatal(err)
	}

	// The records change: one node leaves the name. A failing lookup keeps the last answer.
	dns.set("flashstock.test", ips[0], ips[1])
	eventually(t, 5*time.Second, func() error {
		if got := endpointAddrs(cl); len(got) != 2 {
			return fmt.Errorf("endpoints %q", got)
		}
		return nil
	})
	dns.set("other.test") // unrelated; flashstock.test is still answered
	for i := 0; i < 10; i++ {
		var info client.ReadInfo
		if _, err := cl.GetSKU(ctx, "cap", client.WithStale(), client.WithReadInfo(&info)); err != nil {
			t.Fatal(err)
		}
		if info.Node == want[2] {
			t.Fatalf("stale read served by %s, which left the DNS name", info.Node)
		}
	}
}

func endpointAddrs(cl *client.Client) []string {
	var out []string
	for _, e := range cl.Endpoints() {
		out = append(out, e.Addr)
	}
	return out
}

// A watch delivers the current state, then each change, and survives the death of the
// node serving it.
func TestClient_WatchReconnects(t *testing.T) {
	c := startCluster(t, 3)
	ctx := testContext(t)
	cl := newClient(t, client.Config{Endpoints: c.Addrs()})
	if _, err := cl.CreateSKU(ctx, "w", 10); err != nil {
		t.Fatal(err)
	}
	events := cl.Watch(ctx, "w")
	next := func() api.SKU {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok || ev.Err != nil {
				t.Fatalf("watch ended: %v", ev.Err)
			}
			return ev.SKU
		case <-ctx.Done():
			t.Fatal("no watch event in time")
		}
		return api.SKU{}
	}
	if s := next(); s.Available != 10 {
		t.Fatalf("first event %+v", s)
	}
	if _, err := cl.Deduct(ctx, "w", 2, "u"); err != nil {
		t.Fatal(err)
	}
	if s := next(); s.Available != 8 {
		t.Fatalf("after deduct: %+v", s)
	}

	// Kill the node serving the watch (the one with a request outstanding).
	var serving string
	eventually(t, 5*time.Second, func() error {
		for _, e := range cl.Endpoints() {
			if e.Outstanding == 1 {
				serving = e.Addr
				return nil
			}
		}
		return fmt.Errorf("no node serving the watch: %+v", cl.Endpoints())
	})
	for i, a := range c.Addrs() {
		if a == serving {
			c.Node(i).Kill()
		}
	}
	if _, err := cl.Deduct(ctx, "w", 3, "u"); err != nil {
		t.Fatal(err)
	}
	// The new stream starts with the current state: 5 left (never an older state again).
	if s := next(); s.Available != 5 {
		t.Fatalf("after reconnect: %+v", s)
	}

	// A watch of a SKU that does not exist ends with ErrNotFound.
	for _, err := range cl.WatchSeq(ctx, "nope") {
		if !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("watch of a missing SKU: %v", err)
		}
	}
}

// Leadership moves where it is asked; the client follows; a backup streams.
func TestClient_ClusterAdmin(t *testing.T) {
	c := startCluster(t, 3)
	ctx := testContext(t)
	cl := newClient(t, client.Config{Endpoints: c.Addrs()})
	st, err := cl.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 3 || st.Leader == "" {
		t.Fatalf("status %+v", st)
	}
	li, _ := c.WaitLeader()
	target := (li + 1) % 3
	if err := cl.TransferLeadership(ctx, c.Node(target).ID()); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	eventually(t, 10*time.Second, func() error {
		if cl.Leader() != c.Node(target).HTTPAddr() {
			return fmt.Errorf("client follows %q", cl.Leader())
		}
		return nil
	})
	if _, err := cl.CreateSKU(ctx, "b", 1); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	info, err := cl.Backup(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if info.Bytes == 0 || int64(buf.Len()) != info.Bytes || info.AppliedIndex == 0 {
		t.Fatalf("backup %+v, %d bytes written", info, buf.Len())
	}
	if err := cl.RemoveMember(ctx, "no-such-node"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("remove unknown member: %v", err)
	}
}

func TestClient_AdjustAndRetire(t *testing.T) {
	c := startCluster(t, 1)
	ctx := testContext(t)
	cl := newClient(t, client.Config{Endpoints: c.Addrs()})
	if _, err := cl.CreateSKU(ctx, "mug", 5); err != nil {
		t.Fatal(err)
	}
	s, err := cl.Adjust(ctx, "mug", -2, "damage", client.WithRequestID("adj-1"))
	if err != nil || s.Available != 3 {
		t.Fatalf("adjust: %+v %v", s, err)
	}
	// The same request id again is the first answer, not another two units.
	if s, err := cl.Adjust(ctx, "mug", -2, "damage", client.WithRequestID("adj-1")); err != nil || !s.Duplicate || s.Available != 3 {
		t.Fatalf("adjust again: %+v %v", s, err)
	}
	if _, err := cl.Adjust(ctx, "mug", -4, "damage"); !errors.Is(err, client.ErrInsufficientStock) {
		t.Fatalf("adjust below zero: %v", err)
	}
	if s, err = cl.Retire(ctx, "mug"); err != nil || !s.Retired || s.Available != 0 {
		t.Fatalf("retire: %+v %v", s, err)
	}
	if _, err := cl.Deduct(ctx, "mug", 1, "u"); !errors.Is(err, client.ErrFailedPrecondition) {
		t.Fatalf("deduct of a retired sku: %v", err)
	}
	h, err := cl.History(ctx, "mug")
	if err != nil || len(h.Movements) != 3 || h.Movements[1].Reason != "damage" || h.Movements[2].Kind != "retire" {
		t.Fatalf("history %+v %v", h, err)
	}
}
