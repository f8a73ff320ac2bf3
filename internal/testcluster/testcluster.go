package testcluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/internal/proc"
	"github.com/flashstock/flashstock/transport"
)

// The timings of every in-process node: a leader is elected, and a dead one replaced, in
// well under a second; a request still has seconds on a loaded machine under -race.
const (
	HeartbeatTimeout   = 200 * time.Millisecond
	ElectionTimeout    = 200 * time.Millisecond
	LeaderLeaseTimeout = 100 * time.Millisecond
	RequestTimeout     = 5 * time.Second
	ExpireInterval     = 100 * time.Millisecond
)

// Member is what the cluster needs of a node (node.Node has it).
type Member interface {
	ID() string
	HTTPAddr() string
	RaftAddr() string
	IsLeader() bool
	// Done is closed once the node has stopped.
	Done() <-chan struct{}
	Kill()
}

// SkipShort skips t under -short: a test that starts raft nodes is tier 2, not a unit
// test. Config calls it, so every test that starts a node passes through here.
func SkipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("tier 2: starts raft nodes in this process; runs without -short")
	}
}

// Config is defaults() set up for node id of a test: its data dir under t.TempDir(), free
// loopback ports, the fast timings, logs to t.Log at warning level (shown only when the
// test fails), and a fatal error failing the test. Under -short it skips t.
func Config[C any](t testing.TB, id string, defaults func() C) C {
	t.Helper()
	SkipShort(t)
	cfg := defaults()
	set(t, &cfg, map[string]any{
		"ID":                 id,
		"DataDir":            filepath.Join(t.TempDir(), id),
		"HTTPAddr":           "127.0.0.1:0",
		"RaftAddr":           "127.0.0.1:0",
		"HeartbeatTimeout":   HeartbeatTimeout,
		"ElectionTimeout":    ElectionTimeout,
		"LeaderLeaseTimeout": LeaderLeaseTimeout,
		"RequestTimeout":     RequestTimeout,
		"ExpireInterval":     ExpireInterval,
		"Logger":             hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: LogWriter{t}}),
		"OnFatal":            func(err error) { t.Errorf("node %s fatal: %v", id, err) },
	})
	return cfg
}

// set assigns the fields of the struct cfg points to, by name (see the package doc).
func set(t testing.TB, cfg any, fields map[string]any) {
	t.Helper()
	v := reflect.ValueOf(cfg).Elem()
	for name, val := range fields {
		f := v.FieldByName(name)
		x := reflect.ValueOf(val)
		if !f.IsValid() || !f.CanSet() || !x.Type().AssignableTo(f.Type()) {
			t.Fatalf("testcluster: %s has no field %s of a type that takes %T", v.Type(), name, val)
		}
		f.Set(x)
	}
}

// LogWriter sends a node's logs to t.Log, so they show only for failing tests.
type LogWriter struct{ T testing.TB }

func (w LogWriter) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Eventually polls cond until it holds, or fails t with cond's last error once within has
// passed.
func Eventually(t testing.TB, within time.Duration, cond func() error) {
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

// Cluster is nodes of type N, built from configs of type C, in this process. Node i keeps
// its config (and so its data dir and ports) across restarts. Every node still running is
// killed when the test ends, before its data dir is removed.
type Cluster[C any, N Member] struct {
	t        testing.TB
	defaults func() C
	start    func(C) (N, error)
	// Ready says why the running nodes are not yet a cluster of size members in which
	// every node can serve, forwarding to the leader. The default asks each node's
	// GET /v1/cluster (proc.CheckReady); a test whose nodes cannot answer it plainly (auth,
	// a tiny rate limit) sets its own.
	Ready func(running []N, size int) error

	mu     sync.Mutex // guards the slices: load goroutines read them while a test restarts nodes
	nodes  []N
	cfgs   []C
	faults []*transport.Faults
	hc     *http.Client
}

// New is an empty cluster: Boot or Add start its nodes.
func New[C any, N Member](t testing.TB, defaults func() C, start func(C) (N, error)) *Cluster[C, N] {
	t.Helper()
	SkipShort(t)
	c := &Cluster[C, N]{t: t, defaults: defaults, start: start, hc: &http.Client{Timeout: 10 * time.Second}}
	c.Ready = c.readyOverHTTP
	t.Cleanup(c.hc.CloseIdleConnections)
	return c
}

// Start is New and Boot: size nodes, each config changed by tweak (when not nil) after
// Config's settings, up and ready.
func Start[C any, N Member](t testing.TB, size int, defaults func() C, start func(C) (N, error), tweak func(*C)) *Cluster[C, N] {
	t.Helper()
	c := New(t, defaults, start)
	c.Boot(size, tweak)
	return c
}

// Boot starts size nodes n1..n<size> as DESIGN.md's "Node start-up" says (n1 bootstraps,
// the others join through it) and waits until they are ready (Ready).
func (c *Cluster[C, N]) Boot(size int, tweak func(*C)) {
	c.t.Helper()
	for i := range size {
		cfg := c.NewConfig(fmt.Sprintf("n%d", i+1))
		if i == 0 {
			set(c.t, &cfg, map[string]any{"Bootstrap": true})
		} else {
			set(c.t, &cfg, map[string]any{"Join": []string{c.Node(0).HTTPAddr()}})
		}
		if tweak != nil {
			tweak(&cfg)
		}
		c.Add(cfg)
		if i == 0 {
			c.WaitLeader()
		}
	}
	c.WaitReady(size)
}

// NewConfig is Config(t, id, defaults) for this cluster's test: a node to Add.
func (c *Cluster[C, N]) NewConfig(id string) C { return Config(c.t, id, c.defaults) }

// Add starts a node with cfg, its raft links behind a Faults of its own, as the next node.
func (c *Cluster[C, N]) Add(cfg C) N {
	c.t.Helper()
	f := transport.NewFaults(nil)
	n, err := c.startWith(&cfg, f)
	if err != nil {
		c.t.Fatalf("start node: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = append(c.nodes, n)
	c.cfgs = append(c.cfgs, cfg)
	c.faults = append(c.faults, f)
	return n
}

// startWith starts a node from cfg with f on its raft links, and fixes cfg's addresses to
// the ports it took, so that a restart reuses them.
func (c *Cluster[C, N]) startWith(cfg *C, f *transport.Faults) (N, error) {
	set(c.t, cfg, map[string]any{"RaftDial": f.Dial, "RaftWrapListener": f.WrapListener})
	n, err := c.start(*cfg)
	if err != nil {
		return n, err
	}
	set(c.t, cfg, map[string]any{"HTTPAddr": n.HTTPAddr(), "RaftAddr": n.RaftAddr()})
	// Registered after cfg's data dir (Config's t.TempDir), so it runs first: a node must
	// not outlive its files.
	c.t.Cleanup(n.Kill)
	return n, nil
}

// Restart starts node i again from its config and data dir, with healed links. The node
// must have stopped.
func (c *Cluster[C, N]) Restart(i int) N {
	c.t.Helper()
	f := transport.NewFaults(nil)
	cfg := *c.Config(i)
	var n N
	Eventually(c.t, 10*time.Second, func() error { // the old listener's port may linger briefly
		var err error
		n, err = c.startWith(&cfg, f)
		return err
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[i], c.faults[i] = n, f
	return n
}

// Node is node i (running or not).
func (c *Cluster[C, N]) Node(i int) N {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Config is node i's config, which Restart starts it with; a test may change it first.
func (c *Cluster[C, N]) Config(i int) *C {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &c.cfgs[i]
}

// Faults is the fault injector on node i's raft links.
func (c *Cluster[C, N]) Faults(i int) *transport.Faults {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faults[i]
}

// Size is how many nodes were ever started (running or not).
func (c *Cluster[C, N]) Size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes)
}

// Nodes lists every node started, running or not, by index.
func (c *Cluster[C, N]) Nodes() []N {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]N(nil), c.nodes...)
}

// Running lists the nodes that have not stopped.
func (c *Cluster[C, N]) Running() []N {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []N
	for _, n := range c.nodes {
		if !stopped(n) {
			out = append(out, n)
		}
	}
	return out
}

func stopped(n Member) bool {
	select {
	case <-n.Done():
		return true
	default:
		return false
	}
}

// Addrs lists every node's HTTP address, running or not.
func (c *Cluster[C, N]) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.HTTPAddr()
	}
	return out
}

// AnyAddr is a running node's HTTP address, picked at random.
func (c *Cluster[C, N]) AnyAddr() string {
	r := c.Running()
	return r[rand.IntN(len(r))].HTTPAddr()
}

// LeaderAddr is the leader's HTTP address, or any running node's if there is none.
func (c *Cluster[C, N]) LeaderAddr() string {
	if i, l := c.Leader(); i >= 0 {
		return l.HTTPAddr()
	}
	return c.AnyAddr()
}

// Leader is the index of a running node that believes it leads and the node, or -1.
func (c *Cluster[C, N]) Leader() (int, N) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if !stopped(n) && n.IsLeader() {
			return i, n
		}
	}
	var none N
	return -1, none
}

// WaitLeader waits up to 15s for a leader.
func (c *Cluster[C, N]) WaitLeader() (int, N) {
	c.t.Helper()
	var i int
	var n N
	Eventually(c.t, 15*time.Second, func() error {
		if i, n = c.Leader(); i < 0 {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	return i, n
}

// WaitReady waits up to 20s until Ready holds for size members.
func (c *Cluster[C, N]) WaitReady(size int) {
	c.t.Helper()
	Eventually(c.t, 20*time.Second, func() error { return c.Ready(c.Running(), size) })
}

// readyOverHTTP is the default Ready: each running node's view passes proc.Ready, the
// launcher's rule for a cluster of processes.
func (c *Cluster[C, N]) readyOverHTTP(running []N, size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range running {
		view, err := proc.View(ctx, c.hc, n.HTTPAddr())
		if err == nil {
			err = proc.Ready(view, size)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", n.ID(), err)
		}
	}
	return nil
}

// Isolate cuts node i's raft links both ways; Heal restores every link. All nodes share
// 127.0.0.1 and accepted connections are known only by the peer's host, so the cut is made
// on i's side for everything it accepts, and on every side for what is dialed to or from i.
func (c *Cluster[C, N]) Isolate(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	host, _, _ := net.SplitHostPort(c.nodes[i].RaftAddr())
	c.faults[i].Block(host)
	for j, n := range c.nodes {
		if j == i {
			continue
		}
		c.faults[i].Block(n.RaftAddr())
		c.faults[j].Block(c.nodes[i].RaftAddr())
	}
}

// Heal restores every node's raft links.
func (c *Cluster[C, N]) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.faults {
		f.Heal()
	}
}
