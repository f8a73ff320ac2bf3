package main

// A harness of real stockd processes for the end-to-end tests: build the binary, start
// members exactly as DESIGN.md's "Node start-up" says, kill -9 and restart them, and read
// the cluster over HTTP. Every process is killed by PID when the test ends, and on failure
// the end of each node's log is printed; FLASHSTOCK_KEEP_LOGS=dir keeps the whole logs.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/proc"
	"github.com/flashstock/flashstock/internal/proc/proctest"
)

// shortTiming makes failover fast enough for a test; elections follow within about a
// second of a leader's death.
var shortTiming = []string{"--heartbeat-timeout", "300ms", "--election-timeout", "300ms", "--leader-lease-timeout", "150ms"}

// buildStockd compiles this package into a temp dir once per test; under -short it skips
// the test (tier 3).
func buildStockd(t *testing.T) string {
	t.Helper()
	return proctest.Build(t, ".")
}

// process is one stockd member, started by internal/proc; its command line never changes
// across restarts.
type process struct {
	*proc.Process
	id       string
	httpAddr string
}

// procCluster is a set of stockd processes and an HTTP client to talk to them.
type procCluster struct {
	t     *testing.T
	procs []*process
	hc    *http.Client
}

// startProcCluster starts n members on free loopback ports: n1 with --bootstrap, the
// others with --join n1, each with timing flags extra, logging to files in a temp dir.
func startProcCluster(t *testing.T, n int, extra []string) *procCluster {
	t.Helper()
	bin := buildStockd(t)
	c := &procCluster{t: t, hc: newHTTPClient()}
	dir := t.TempDir()
	t.Cleanup(c.cleanup) // registered after TempDir, so it runs before the dir is removed

	ports := freePorts(t, 2*n)
	members := proc.Members(dir, ports[:n], ports[n:])
	for _, m := range members {
		c.procs = append(c.procs, &process{id: m.ID, httpAddr: m.HTTPAddr, Process: &proc.Process{
			Name: m.ID, Path: bin, Args: append(m.JoinArgs(members[0]), extra...), LogPath: filepath.Join(dir, m.ID+".log")}})
	}
	for _, p := range c.procs {
		c.start(p)
	}
	return c
}

// start runs p's command line, appending to its log file.
func (c *procCluster) start(p *process) {
	c.t.Helper()
	if err := p.Start(); err != nil {
		c.t.Fatal(err)
	}
}

// kill sends SIGKILL to p's PID and waits until the process is reaped.
func (c *procCluster) kill(p *process) {
	c.t.Helper()
	if err := p.Kill(); err != nil {
		c.t.Error(err)
	}
}

// waitExit waits up to d for p to exit and returns its exit code.
func (c *procCluster) waitExit(p *process, d time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		return 0, err
	}
	return p.ExitCode(), nil
}

// cleanup kills every process still running and, if the test failed, prints the logs.
func (c *procCluster) cleanup() {
	for _, p := range c.procs {
		c.kill(p)
	}
	c.hc.CloseIdleConnections()
	if dir := os.Getenv("FLASHSTOCK_KEEP_LOGS"); dir != "" {
		dst := filepath.Join(dir, strings.ReplaceAll(c.t.Name(), "/", "_"))
		if err := proc.CopyLogs(dst, c.processes()...); err != nil {
			c.t.Errorf("FLASHSTOCK_KEEP_LOGS: %v", err)
		} else {
			c.t.Logf("node logs kept in %s", dst)
		}
	}
	if !c.t.Failed() {
		return
	}
	for _, p := range c.procs {
		c.t.Logf("---- last lines of %s (%s) ----\n%s", p.id, p.LogPath, proc.Tail(p.LogPath, 150))
	}
}

func (c *procCluster) processes() []*proc.Process {
	out := make([]*proc.Process, len(c.procs))
	for i, p := range c.procs {
		out[i] = p.Process
	}
	return out
}

// byID finds a member by id.
func (c *procCluster) byID(id string) *process {
	for _, p := range c.procs {
		if p.id == id {
			return p
		}
	}
	return nil
}

// waitReady polls every member until the cluster is ready (proc.Ready: the same leader
// seen by all, every member listed and answering) and returns the leader's id.
func (c *procCluster) waitReady(ctx context.Context) (string, error) {
	addrs := make([]string, len(c.procs))
	for i, p := range c.procs {
		addrs[i] = p.httpAddr
	}
	view, err := proc.WaitReady(ctx, c.hc, addrs, c.processes()...)
	if err != nil {
		return "", err
	}
	return view.Leader, nil
}

// cluster reads GET /v1/cluster from p, bounded by 2s.
func (c *procCluster) cluster(ctx context.Context, p *process) (*api.Cluster, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return proc.View(ctx, c.hc, p.httpAddr)
}

// readSKU reads a SKU from p at the given consistency.
func (c *procCluster) readSKU(ctx context.Context, p *process, sku, consistency string) (*api.SKU, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := c.do(ctx, http.MethodGet, p, "/v1/skus/"+sku+"?consistency="+consistency, nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, fmt.Errorf("GET %s from %s: %d %s", sku, p.id, r.status, bytes.TrimSpace(r.body))
	}
	var s api.SKU
	if err := json.Unmarshal(r.body, &s); err != nil {
		return nil, fmt.Errorf("GET %s from %s: %w", sku, p.id, err)
	}
	return &s, nil
}

// reply is one HTTP answer, read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request with an optional JSON body.
func (c *procCluster) do(ctx context.Context, method string, p *process, path string, in any) (reply, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return reply{}, err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.httpAddr+path, body)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: data}, err
}

// newHTTPClient keeps connections alive to every node, enough for hundreds of buyers.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 15 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// freePorts asks the kernel for n distinct free loopback ports.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := proc.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// pause waits d or until ctx ends.
var pause = proc.Sleep
