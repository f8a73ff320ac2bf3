package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/transport"
)

// testCluster runs real nodes in this process: real raft over loopback TCP, real bbolt
// files, each node's raft links behind a transport.Faults for partitions.
type testCluster struct {
	t      testing.TB
	mu     sync.Mutex // guards nodes: load goroutines read it while the test kills and restarts
	nodes  []*Node
	cfgs   []Config
	faults []*transport.Faults
	client *http.Client
}

func fastConfig(t testing.TB, id string) Config {
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.DataDir = filepath.Join(t.TempDir(), id)
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.HeartbeatTimeout = 200 * time.Millisecond
	cfg.ElectionTimeout = 200 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	cfg.RequestTimeout = 5 * time.Second
	cfg.ExpireInterval = 100 * time.Millisecond
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: testWriter{t}})
	cfg.OnFatal = func(err error) { t.Errorf("node %s fatal: %v", id, err) }
	return cfg
}

// testWriter sends logs to t.Log, so they show only for failing tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newCluster(t testing.TB, size int, tweak func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, client: &http.Client{Timeout: 10 * time.Second}}
	for i := 0; i < size; i++ {
		cfg := fastConfig(t, fmt.Sprintf("n%d", i+1))
		if tweak != nil {
			tweak(&cfg)
		}
		if i == 0 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = []string{c.nodes[0].HTTPAddr()}
		}
		c.add(cfg)
		if i == 0 {
			c.waitLeader()
		}
	}
	c.waitMembers(size)
	t.Cleanup(func() {
		for _, n := range c.running() {
			n.Kill()
		}
	})
	return c
}

func (c *testCluster) add(cfg Config) *Node {
	c.t.Helper()
	f := transport.NewFaults(nil)
	cfg.RaftDial, cfg.RaftWrapListener = f.Dial, f.WrapListener
	n, err := New(cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", cfg.ID, err)
	}
	// Restarts reuse the ports the first start picked.
	cfg.HTTPAddr, cfg.RaftAddr = n.HTTPAddr(), n.RaftAddr()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = append(c.nodes, n)
	c.cfgs = append(c.cfgs, cfg)
	c.faults = append(c.faults, f)
	return n
}

// restart starts node i again from its data dir, with the same command line.
func (c *testCluster) restart(i int) {
	c.t.Helper()
	cfg := c.cfgs[i]
	f := transport.NewFaults(nil)
	cfg.RaftDial, cfg.RaftWrapListener = f.Dial, f.WrapListener
	var n *Node
	var err error
	eventually(c.t, 10*time.Second, func() error { // the old listener's port may linger briefly
		n, err = New(cfg)
		return err
	})
	c.faults[i] = f
	c.set(i, n)
}

func (c *testCluster) get(i int) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

func (c *testCluster) set(i int, n *Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[i] = n
}

// running lists the nodes that are up.
func (c *testCluster) running() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// anyAddr picks a running node's HTTP address at random.
func (c *testCluster) anyAddr() string {
	r := c.running()
	return r[rand.IntN(len(r))].HTTPAddr()
}

// leaderAddr is the current leader's address, or any node's if there is none.
func (c *testCluster) leaderAddr() string {
	if _, l := c.leader(); l != nil {
		return l.HTTPAddr()
	}
	return c.anyAddr()
}

func (c *testCluster) leader() (int, *Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n != nil && n.IsLeader() {
			return i, n
		}
	}
	return -1, nil
}

func (c *testCluster) waitLeader() (int, *Node) {
	c.t.Helper()
	var i int
	var n *Node
	eventually(c.t, 15*time.Second, func() error {
		if i, n = c.leader(); n == nil {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	return i, n
}

func (c *testCluster) waitMembers(size int) {
	c.t.Helper()
	eventually(c.t, 20*time.Second, func() error {
		_, l := c.leader()
		if l == nil {
			return fmt.Errorf("no leader")
		}
		m, err := l.fsm.Members()
		if err != nil || len(m) != size {
			return fmt.Errorf("%d member records, want %d (%v)", len(m), size, err)
		}
		// A member that has not yet applied the leader's member record cannot forward (it
		// answers no_leader); tests that go through followers at once expect them to.
		for _, n := range c.running() {
			if n.leaderHTTP() == "" {
				return fmt.Errorf("%s does not know the leader's address yet", n.ID())
			}
		}
		return nil
	})
}

// isolate cuts node i's raft links both ways; heal restores every link. All nodes share
// 127.0.0.1 and accepted connections are known only by the peer's host, so the cut is made
// on i's side for everything it accepts, and on every side for what is dialed to or from i.
func (c *testCluster) isolate(i int) {
	c.faults[i].Block(hostOf(c.nodes[i].RaftAddr()))
	for j, n := range c.nodes {
		if j == i || n == nil {
			continue
		}
		c.faults[i].Block(n.RaftAddr())
		c.faults[j].Block(c.nodes[i].RaftAddr())
	}
}

func (c *testCluster) heal() {
	for _, f := range c.faults {
		f.Heal()
	}
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }

// call does one HTTP request and decodes a 2xx body into out; a non-2xx answer comes back as
// *api.Error.
func (c *testCluster) call(addr, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		var eb api.ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error == nil {
			return resp.StatusCode, fmt.Errorf("HTTP %d without an error body: %s", resp.StatusCode, raw)
		}
		return resp.StatusCode, eb.Error
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %v", raw, err)
		}
	}
	return resp.StatusCode, nil
}

// mustCall is call that must succeed. An answer that says retry (an election on a loaded
// machine: no_leader, timeout) is retried with the same body, request id included, as the
// client does.
func (c *testCluster) mustCall(addr, method, path string, body any, out any) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.call(addr, method, path, body, out)
		if err == nil {
			return
		}
		var ae *api.Error
		if !errors.As(err, &ae) || !ae.Code.Retryable() || time.Now().After(deadline) {
			c.t.Fatalf("%s %s via %s: %v", method, path, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *testCluster) createSKU(sku string, stock int64) {
	c.t.Helper()
	_, l := c.waitLeader()
	c.mustCall(l.HTTPAddr(), "PUT", "/v1/skus/"+sku, map[string]any{"stock": stock}, nil)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// converged waits until every running node holds the same state hash at the same index.
func (c *testCluster) converged() {
	c.t.Helper()
	eventually(c.t, 20*time.Second, func() error {
		var first [32]byte
		var firstIdx uint64
		for i, n := range c.running() {
			h, err := n.fsm.StateHash()
			if err != nil {
				return err
			}
			if firstIdx == 0 {
				first, firstIdx = h, n.fsm.AppliedIndex()
				continue
			}
			if h != first {
				return fmt.Errorf("node %d: hash differs (applied %d vs %d)", i, n.fsm.AppliedIndex(), firstIdx)
			}
		}
		return nil
	})
	for _, n := range c.running() {
		if err := n.fsm.CheckInvariants(); err != nil {
			c.t.Fatalf("%s: %v", n.ID(), err)
		}
	}
}

// buyer deducts with one request id, retrying it until a definite answer, as the client
// will. It returns the code of the definite answer and the response.
func (c *testCluster) buy(ctx context.Context, sku, reqID, user string, pick func() string) (api.Code, api.DeductResponse) {
	body := api.DeductRequest{Qty: 1, RequestID: reqID, UserID: user}
	for ctx.Err() == nil {
		var out api.DeductResponse
		_, err := c.call(pick(), "POST", "/v1/skus/"+sku+"/deduct", body, &out)
		if err == nil {
			return api.OK, out
		}
		var ae *api.Error
		if asAPI(err, &ae) && !ae.Code.Retryable() {
			return ae.Code, out
		}
		time.Sleep(20 * time.Millisecond)
	}
	return api.Timeout, api.DeductResponse{}
}

func asAPI(err error, out **api.Error) bool {
	ae, ok := err.(*api.Error)
	*out = ae
	return ok
}
