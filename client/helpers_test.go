package client_test

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/client"
	"github.com/flashstock/flashstock/internal/testcluster"
	"github.com/flashstock/flashstock/node"
)

// cluster is real flashstock nodes in this process (internal/testcluster).
type cluster = testcluster.Cluster[node.Config, *node.Node]

// startCluster starts size nodes; hosts[i], when given, is node i's HTTP listen address.
func startCluster(t testing.TB, size int, hosts ...string) *cluster {
	t.Helper()
	return testcluster.Start(t, size, node.DefaultConfig, node.New, func(cfg *node.Config) {
		var i int
		if _, err := fmt.Sscanf(cfg.ID, "n%d", &i); err == nil && i <= len(hosts) {
			cfg.HTTPAddr = hosts[i-1]
		}
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

var eventually = testcluster.Eventually

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

// ownGoroutines counts the goroutines that belong to a client: those running the client
// package's code (health checks, re-resolution, the batcher, watches) and the HTTP
// transport's connection loops. It counts by stack, goleak's way, rather than every
// goroutine in the process, which also holds whatever else runs (TestMain's raft node) and
// changes at its own pace.
func ownGoroutines() (n int, stacks string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var ours []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/flashstock/flashstock/client.") || strings.Contains(g, "net/http.(*persistConn)") {
			ours = append(ours, g)
		}
	}
	return len(ours), strings.Join(ours, "\n\n")
}

// noLeakedGoroutines polls until ownGoroutines is back to before (the client's
// goroutines stop asynchronously after Close returns only for idle connections).
func noLeakedGoroutines(t testing.TB, before int) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		if n, stacks := ownGoroutines(); n > before {
			return fmt.Errorf("%d client goroutines, %d before:\n%s", n, before, stacks)
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

// TestMain starts the examples' node. An example cannot skip itself, so under -short
// (the unit tier, which starts no raft node) the examples are left out here instead.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		skip := "^Example"
		if s := flag.Lookup("test.skip").Value.String(); s != "" {
			skip = s + "|" + skip
		}
		if err := flag.Set("test.skip", skip); err != nil {
			panic(err)
		}
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "flashstock-client-example")
	if err != nil {
		panic(err)
	}
	cfg := node.DefaultConfig()
	cfg.ID, cfg.DataDir, cfg.Bootstrap = "ex1", dir, true
	cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = testcluster.HeartbeatTimeout, testcluster.ElectionTimeout
	cfg.LeaderLeaseTimeout = testcluster.LeaderLeaseTimeout
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
