package main

// A harness of real stockd processes for the end-to-end tests: build the binary, start
// members exactly as DESIGN.md's "Node start-up" says, kill -9 and restart them, and read
// the cluster over HTTP. Every process is killed by PID when the test ends, and on failure
// the end of each node's log is printed; FLASHSTOCK_KEEP_LOGS=dir keeps the whole logs.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

// shortTiming makes failover fast enough for a test; elections follow within about a
// second of a leader's death.
var shortTiming = []string{"--heartbeat-timeout", "300ms", "--election-timeout", "300ms", "--leader-lease-timeout", "150ms"}

// buildStockd compiles this package into a temp dir once per test.
func buildStockd(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build stockd: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "stockd")
	start := time.Now()
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build stockd: %v\n%s", err, out)
	}
	t.Logf("built stockd in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// process is one stockd member; its command line never changes across restarts.
type process struct {
	id       string
	httpAddr string
	args     []string
	logPath  string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current run has been reaped
	exitCode int           // of the last run, once exited is closed; -1 if killed by a signal
}

// procCluster is a set of stockd processes and an HTTP client to talk to them.
type procCluster struct {
	t     *testing.T
	bin   string
	procs []*process
	hc    *http.Client
}

// startProcCluster starts n members on free loopback ports: n1 with --bootstrap, the
// others with --join n1, each with timing flags extra, logging to files in a temp dir.
func startProcCluster(t *testing.T, n int, extra []string) *procCluster {
	t.Helper()
	c := &procCluster{t: t, bin: buildStockd(t), hc: newHTTPClient()}
	dir := t.TempDir()
	t.Cleanup(c.cleanup) // registered after TempDir, so it runs before the dir is removed

	ports := freePorts(t, 2*n)
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		p := &process{
			id:       id,
			httpAddr: fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			logPath:  filepath.Join(dir, id+".log"),
		}
		p.args = []string{"--id", id, "--data-dir", filepath.Join(dir, id),
			"--http-addr", p.httpAddr, "--raft-addr", fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])}
		if i == 0 {
			p.args = append(p.args, "--bootstrap")
		} else {
			p.args = append(p.args, "--join", c.procs[0].httpAddr)
		}
		p.args = append(p.args, extra...)
		c.procs = append(c.procs, p)
	}
	for _, p := range c.procs {
		c.start(p)
	}
	return c
}

// start runs p's command line, appending to its log file.
func (c *procCluster) start(p *process) {
	c.t.Helper()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(f, "=== %s: stockd %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(p.args, " "))
	cmd := exec.Command(c.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		c.t.Fatalf("start %s: %v", p.id, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.exitCode = cmd.ProcessState.ExitCode()
		p.mu.Unlock()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
}

// kill sends SIGKILL to p's PID and waits until the process is reaped.
func (c *procCluster) kill(p *process) {
	c.t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		c.t.Errorf("kill -9 %s (pid %d): %v", p.id, cmd.Process.Pid, err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		c.t.Errorf("%s (pid %d) not reaped 10s after SIGKILL", p.id, cmd.Process.Pid)
	}
}

// waitExit waits up to d for p to exit and returns its exit code.
func (c *procCluster) waitExit(p *process, d time.Duration) (int, error) {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.exitCode, nil
	case <-time.After(d):
		return 0, fmt.Errorf("%s still running %v later", p.id, d)
	}
}

// cleanup kills every process still running and, if the test failed, prints the logs.
func (c *procCluster) cleanup() {
	for _, p := range c.procs {
		c.kill(p)
	}
	c.hc.CloseIdleConnections()
	if dir := os.Getenv("FLASHSTOCK_KEEP_LOGS"); dir != "" {
		c.keepLogs(dir)
	}
	if !c.t.Failed() {
		return
	}
	for _, p := range c.procs {
		c.t.Logf("---- last lines of %s (%s) ----\n%s", p.id, p.logPath, tail(p.logPath, 150))
	}
}

// keepLogs copies the node logs to dir/<test name>/ (FLASHSTOCK_KEEP_LOGS=dir).
func (c *procCluster) keepLogs(dir string) {
	dst := filepath.Join(dir, strings.ReplaceAll(c.t.Name(), "/", "_"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		c.t.Errorf("FLASHSTOCK_KEEP_LOGS: %v", err)
		return
	}
	for _, p := range c.procs {
		data, err := os.ReadFile(p.logPath)
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, p.id+".log"), data, 0o644)
		}
		if err != nil {
			c.t.Errorf("FLASHSTOCK_KEEP_LOGS: %v", err)
		}
	}
	c.t.Logf("node logs kept in %s", dst)
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

// waitReady polls every member until each answers GET /v1/cluster with the same leader,
// all members listed, and every member's role known (it is up and answering). It returns
// the leader's id.
func (c *procCluster) waitReady(ctx context.Context) (string, error) {
	var last string
	for {
		leader, why := c.readyLeader(ctx)
		if why == "" {
			return leader, nil
		}
		last = why
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return "", fmt.Errorf("cluster not ready: %s", last)
		}
	}
}

// readyLeader returns the leader, or why the cluster is not ready yet.
func (c *procCluster) readyLeader(ctx context.Context) (leader, why string) {
	for _, p := range c.procs {
		view, err := c.cluster(ctx, p)
		if err != nil {
			return "", fmt.Sprintf("%s: %v", p.id, err)
		}
		if view.Leader == "" || leader != "" && view.Leader != leader {
			return "", fmt.Sprintf("%s sees leader %q, others %q", p.id, view.Leader, leader)
		}
		leader = view.Leader
		if len(view.Nodes) != len(c.procs) {
			return "", fmt.Sprintf("%s lists %d members, want %d", p.id, len(view.Nodes), len(c.procs))
		}
		for _, m := range view.Nodes {
			if m.Role == api.RoleUnknown || m.Role == "" {
				return "", fmt.Sprintf("%s: member %s has role %q", p.id, m.ID, m.Role)
			}
		}
	}
	return leader, ""
}

// cluster reads GET /v1/cluster from p, bounded by a second.
func (c *procCluster) cluster(ctx context.Context, p *process) (*api.Cluster, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return getCluster(ctx, c.hc, "http://"+p.httpAddr+"/v1/cluster")
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
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
