package client_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/client"
	"github.com/flashstock/flashstock/node"
)

// cluster is real flashstock nodes in this process (raft over loopback TCP, bbolt files),
// as node/cluster_test.go builds them.
type cluster struct {
	t     testing.TB
	mu    sync.Mutex
	nodes []*node.Node
	cfgs  []node.Config
}

func nodeConfig(t testing.TB, dir, id, httpAddr, raftAddr string) node.Config {
	cfg := node.DefaultConfig()
	cfg.ID = id
	cfg.DataDir = filepath.Join(dir, id)
	cfg.HTTPAddr, cfg.RaftAddr = httpAddr, raftAddr
	cfg.HeartbeatTimeout = 200 * time.Millisecond
	cfg.ElectionTimeout = 200 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	cfg.RequestTimeout = 5 * time.Second
	cfg.ExpireInterval = 100 * time.Millisecond
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Error, Output: logWriter{t}})
	cfg.OnFatal = func(err error) { t.Errorf("node %s fatal: %v", id, err) }
	return cfg
}

// logWriter sends node logs to t.Log, so they show only for failing tests.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startCluster starts size nodes; hosts[i], when given, is node i's HTTP listen address.
func startCluster(t testing.TB, size int, hosts ...string) *cluster {
	t.Helper()
	c := &cluster{t: t}
	dir := t.TempDir()
	for i := 0; i < size; i++ {
		httpAddr, raftAddr := "127.0.0.1:0", "127.0.0.1:0"
		if i < len(hosts) {
			httpAddr = hosts[i]
		}
		cfg := nodeConfig(t, dir, fmt.Sprintf("n%d", i+1), httpAddr, raftAddr)
		if i == 0 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = []string{c.nodes[0].HTTPAddr()}
		}
		c.start(cfg)
		if i == 0 {
			c.waitLeader()
		}
	}
	c.waitMembers(size)
	t.Cleanup(c.stopAll)
	return c
}

func (c *cluster) start(cfg node.Config) *node.Node {
	c.t.Helper()
	n, err := node.New(cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", cfg.ID, err)
	}
	cfg.HTTPAddr, cfg.RaftAddr = n.HTTPAddr(), n.RaftAddr() // a restart reuses the ports
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = append(c.nodes, n)
	c.cfgs = append(c.cfgs, cfg)
	return n
}

func (c *cluster) stopAll() {
	for _, n := range c.running() {
		n.Kill()
	}
}

func (c *cluster) node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

func (c *cluster) running() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*node.Node
	for _, n := range c.nodes {
		select {
		case <-n.Done():
		default:
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.HTTPAddr())
	}
	return out
}

// kill stops node i at once, as kill -9 would.
func (c *cluster) kill(i int) { c.node(i).Kill() }

// restart starts node i again from its data dir on the same addresses.
func (c *cluster) restart(i int) {
	c.t.Helper()
	c.mu.Lock()
	cfg := c.cfgs[i]
	c.mu.Unlock()
	var n *node.Node
	eventually(c.t, 10*time.Second, func() error { // the old port may linger briefly
		var err error
		n, err = node.New(cfg)
		return err
	})
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
}

// leader returns the index of the node that believes it leads, or -1.
func (c *cluster) leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		select {
		case <-n.Done():
			continue
		default:
		}
		if n.IsLeader() {
			return i
		}
	}
	return -1
}

func (c *cluster) waitLeader() int {
	c.t.Helper()
	var i int
	eventually(c.t, 15*time.Second, func() error {
		if i = c.leader(); i < 0 {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	return i
}

// waitMembers waits until the cluster lists size members, each with its HTTP address.
func (c *cluster) waitMembers(size int) {
	c.t.Helper()
	cl := newClient(c.t, client.Config{Endpoints: c.addrs()})
	eventually(c.t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := cl.ClusterStatus(ctx)
		if err != nil {
			return err
		}
		ok := 0
		for _, n := range st.Nodes {
			if n.HTTPAddr != "" && n.Role != "unknown" {
				ok++
			}
		}
		if ok != size {
			return fmt.Errorf("%d of %d members up: %+v", ok, size, st.Nodes)
		}
		return nil
	})
}

// newClient makes a client with test-friendly timing, closed when the test ends.
func newClient(t testing.TB, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = 50 * time.Millisecond
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase, cfg.BackoffMax = 10*time.Millisecond, 200*time.Millisecond
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = -1 // the test's context bounds every call
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
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
		time.Sleep(10 * time.Millisecond)
	}
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// freePort finds a TCP port free on loopback, for nodes that must share one port on
// several loopback addresses (the DNS test).
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// noLeakedGoroutines polls until the goroutine count is back to before (the client's
// goroutines stop asynchronously after Close returns only for idle connections).
func noLeakedGoroutines(t testing.TB, before int) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			return fmt.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		return nil
	})
}

// recorder wraps a transport and hands every request to a hook before and after it runs.
type recorder struct {
	base   http.RoundTripper
	before func(*http.Request)
	after  func(*http.Request, *http.Response, error) (*http.Response, error)
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.before != nil {
		r.before(req)
	}
	resp, err := r.base.RoundTrip(req)
	if r.after != nil {
		return r.after(req, resp, err)
	}
	return resp, err
}

// endpoints is the one-node cluster the Example functions run against, started by
// TestMain ("127.0.0.1:4001" in a real deployment).
var endpoints []string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flashstock-client-example")
	if err != nil {
		panic(err)
	}
	cfg := node.DefaultConfig()
	cfg.ID, cfg.DataDir, cfg.Bootstrap = "ex1", dir, true
	cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
	cfg.Logger = hclog.NewNullLogger()
	cfg.OnFatal = func(err error) { panic(err) }
	n, err := node.New(cfg)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := n.WaitLeader(ctx); err != nil {
		panic(err)
	}
	cancel()
	endpoints = []string{n.HTTPAddr()}
	code := m.Run()
	n.Kill()
	os.RemoveAll(dir)
	os.Exit(code)
}
