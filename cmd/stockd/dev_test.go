package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/proc"
)

// devRun is one "stockd dev" process under test, with what it printed.
type devRun struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	nodes  map[string]devBannerNode
	leader string
	exited chan struct{}
}

type devBannerNode struct {
	pid                int
	httpAddr, raftAddr string
}

var bannerNode = regexp.MustCompile(`^\s+(n\d)\s+pid (\d+)\s+(\w+)\s+http://(\S+)\s+raft (\S+)`)

// startDev runs the built stockd's "dev" with args and reads its banner.
func startDev(t *testing.T, bin string, env []string, args ...string) *devRun {
	t.Helper()
	r := &devRun{stderr: &syncBuffer{}, nodes: map[string]devBannerNode{}, exited: make(chan struct{})}
	r.cmd = exec.Command(bin, append([]string{"dev"}, args...)...)
	r.cmd.Stderr = r.stderr
	r.cmd.Env = append(os.Environ(), env...)
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.exited
	})
	banner := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if m := bannerNode.FindStringSubmatch(sc.Text()); m != nil {
				pid, _ := strconv.Atoi(m[2])
				r.nodes[m[1]] = devBannerNode{pid: pid, httpAddr: m[4], raftAddr: m[5]}
				if m[3] == "leader" {
					r.leader = m[1]
				}
			}
			if strings.HasPrefix(sc.Text(), "Press Ctrl-C") && !sent {
				banner <- nil
				sent = true
			}
		}
		_ = r.cmd.Wait()
		if !sent {
			banner <- fmt.Errorf("stockd dev ended without a banner: %v\nstderr:\n%s", r.cmd.ProcessState, r.stderr.String())
		}
		close(r.exited)
	}()
	select {
	case err := <-banner:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("no banner within 90s; stderr:\n%s", r.stderr.String())
	}
	if len(r.nodes) == 0 || r.leader == "" {
		t.Fatalf("banner: nodes %v, leader %q", r.nodes, r.leader)
	}
	return r
}

// waitExit waits for stockd dev to exit and returns its exit code.
func (r *devRun) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-r.exited:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("stockd dev still running %v later; stderr:\n%s", within, r.stderr.String())
		return -1
	}
}

// TestDev_NodesAreProcessesThatSurviveALeaderKill is the README's story: each node of
// "stockd dev" is its own process with its PID in the banner, kill -9 of the leader leaves
// a cluster that elects another and takes writes, and Ctrl-C then stops the rest cleanly:
// exit 0, no ERROR line, no process left behind.
func TestDev_NodesAreProcessesThatSurviveALeaderKill(t *testing.T) {
	bin := buildStockd(t)
	base := t.TempDir()
	r := startDev(t, bin, nil, "--http-port", "0", "--raft-port", "0", "--base-dir", base, "--ready-timeout", "60s")
	if len(r.nodes) != 3 {
		t.Fatalf("banner: nodes %v, want 3", r.nodes)
	}
	pids := map[int]bool{r.cmd.Process.Pid: true}
	for id, n := range r.nodes {
		if pids[n.pid] {
			t.Fatalf("%s: pid %d is not a process of its own (%v)", id, n.pid, r.nodes)
		}
		pids[n.pid] = true
	}

	if err := syscall.Kill(r.nodes[r.leader].pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var survivor string
	for id := range r.nodes {
		if id != r.leader {
			survivor = r.nodes[id].httpAddr
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		code, err := devPut(ctx, survivor)
		if err == nil && code == http.StatusCreated {
			break
		}
		if pause(ctx, 100*time.Millisecond) != nil {
			t.Fatalf("no write through %s 30s after the leader was killed: %d %v\nstderr:\n%s", survivor, code, err, r.stderr.String())
		}
	}
	waitFor(t, 10*time.Second, "the kill reported", func() bool {
		return strings.Contains(r.stderr.String(), r.leader+" (pid "+strconv.Itoa(r.nodes[r.leader].pid)+") signal: killed")
	})

	// The survivors log errors about the node that is gone; from Ctrl-C on, nothing may.
	before := len(r.stderr.String())
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := r.waitExit(t, 60*time.Second); code != 0 {
		t.Errorf("exit code %d after Ctrl-C, want 0; stderr:\n%s", code, r.stderr.String())
	}
	// A survivor that leads goes on failing to reach the killed node until it stops, as
	// before Ctrl-C: those lines are not the stop's.
	after := r.stderr.String()[before:]
	var errs []string
	for _, l := range strings.Split(after, "\n") {
		if strings.Contains(l, "[ERROR]") && !strings.Contains(l, r.nodes[r.leader].raftAddr) {
			errs = append(errs, l)
		}
	}
	if len(errs) > 0 || !strings.Contains(after, "stopped cleanly") {
		t.Errorf("Ctrl-C did not end in a clean stop without ERROR lines:\n%s", after)
	}
	for id, n := range r.nodes {
		if alive(n.pid) {
			t.Errorf("%s (pid %d) still runs after stockd dev exited", id, n.pid)
		}
	}
	if _, err := os.Stat(filepath.Join(base, devMarkerName)); !os.IsNotExist(err) {
		t.Errorf("a clean exit left its marker: %v", err)
	}

	// The data holds the members' raft addresses: a restart on free ports could never
	// reach them, so it is refused; on fixed ports it may go ahead.
	o, err := parseDevOptions([]string{"--http-port", "0", "--raft-port", "0", "--base-dir", base})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := createBaseDir(o); err == nil || !strings.Contains(err.Error(), "holds a cluster") {
		t.Errorf("restart on free ports over a kept cluster: %v", err)
	}
	fixed := *o
	fixed.httpPort, fixed.raftPort = 4001, 5001
	if _, _, err := createBaseDir(&fixed); err != nil {
		t.Errorf("restart on fixed ports: %v", err)
	}
}

// TestDev_Groups: "stockd dev --groups 3" runs three nodes, n1 bootstrapped with the meta
// group and 3 data groups, the others joined: the banner comes only once every group has
// its three voters and a leader, the leaders are spread, and Ctrl-C stops it cleanly.
func TestDev_Groups(t *testing.T) {
	bin := buildStockd(t)
	r := startDev(t, bin, nil, "--groups", "3", "--http-port", "0", "--raft-port", "0", "--ready-timeout", "90s")
	if len(r.nodes) != 3 {
		t.Fatalf("banner: nodes %v, want 3", r.nodes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	view, err := proc.View(ctx, http.DefaultClient, r.nodes["n2"].httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	if len(view.Groups) != 4 || view.Groups[0].Kind != api.GroupMeta {
		t.Fatalf("no meta group and 3 data groups in /v1/cluster: %+v", view.Groups)
	}
	leaders := map[string]bool{}
	for _, g := range view.Groups[1:] {
		if len(g.Replicas) != 3 || g.Leader == "" {
			t.Fatalf("group %d at the banner: replicas %+v, leader %q; want 3 and a leader", g.ID, g.Replicas, g.Leader)
		}
		leaders[g.Leader] = true
	}
	if len(leaders) < 2 {
		t.Errorf("the data groups' leaders are not spread: %+v", view.Groups)
	}
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := r.waitExit(t, 60*time.Second); code != 0 {
		t.Errorf("exit code %d after Ctrl-C, want 0; stderr:\n%s", code, r.stderr.String())
	}
}

// TestDev_NodesDieWithTheParent: a "stockd dev" killed with SIGKILL cannot stop its nodes,
// so the kernel does (Pdeathsig); and the next "stockd dev" says where the data was left.
func TestDev_NodesDieWithTheParent(t *testing.T) {
	bin := buildStockd(t)
	tmp := t.TempDir()
	r := startDev(t, bin, []string{"TMPDIR=" + tmp}, "--http-port", "0", "--raft-port", "0", "--ready-timeout", "60s")
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	r.waitExit(t, 10*time.Second)
	for id, n := range r.nodes {
		waitFor(t, 30*time.Second, id+" exits with its parent", func() bool { return !alive(n.pid) })
	}
	var out bytes.Buffer
	reportAbandoned(&out, tmp)
	if !strings.Contains(out.String(), "did not exit cleanly") {
		t.Errorf("the next stockd dev would not mention the data left behind:\n%s", out.String())
	}
}

// TestReportAbandoned_SaysHowToBringTheDataBack: the temp base dir of a "stockd dev" that
// died uncleanly is named with the --base-dir command that restarts its cluster; a dir in
// use by a running one is not mentioned, and cannot be claimed.
func TestReportAbandoned_SaysHowToBringTheDataBack(t *testing.T) {
	tmp := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skipf("no true(1) to get a dead pid: %v", err)
	}
	write := func(name string, m devMarker) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		b := fmt.Sprintf(`{"pid":%d,"nodes":%d,"http_port":%d,"raft_port":%d,"temp":true}`, m.PID, m.Nodes, m.HTTPPort, m.RaftPort)
		if err := os.WriteFile(filepath.Join(dir, devMarkerName), []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dead := write("stockd-dev-1", devMarker{PID: gone.Process.Pid, Nodes: 3, HTTPPort: 4001, RaftPort: 5001})
	deadFree := write("stockd-dev-2", devMarker{PID: gone.Process.Pid, Nodes: 3})
	running := write("stockd-dev-3", devMarker{PID: os.Getpid(), Nodes: 3, HTTPPort: 4001, RaftPort: 5001})

	var out bytes.Buffer
	reportAbandoned(&out, tmp)
	for _, want := range []string{
		"stockd dev --base-dir " + dead + " --nodes 3",
		"free ports, so it cannot be restarted; remove it: rm -r " + deadFree,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), running) {
		t.Errorf("report names the dir of a running stockd dev:\n%s", out.String())
	}
	if _, err := claimBaseDir(io.Discard, running, &devOptions{nodes: 3}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("claiming a running stockd dev's dir: %v", err)
	}
	release, err := claimBaseDir(&out, dead, &devOptions{nodes: 3, baseDir: dead})
	if err != nil || !strings.Contains(out.String(), "did not stop cleanly last time") {
		t.Fatalf("claiming an abandoned dir: %v\n%s", err, out.String())
	}
	release()
	if _, ok := readDevMarker(dead); ok {
		t.Error("release left the marker")
	}
}

func TestCreateBaseDir_TempRemovedUnlessKept(t *testing.T) {
	for _, keep := range []bool{false, true} {
		dir, remove, err := createBaseDir(&devOptions{keep: keep})
		if err != nil {
			t.Fatal(err)
		}
		remove()
		_, statErr := os.Stat(dir)
		if exists := statErr == nil; exists != keep {
			t.Errorf("keep=%v: dir exists after remove = %v", keep, exists)
		}
		if keep {
			os.RemoveAll(dir)
		}
	}
}

// devPut creates a SKU with a fresh name through addr and returns the status.
func devPut(ctx context.Context, addr string) (int, error) {
	url := fmt.Sprintf("http://%s/v1/skus/after-kill-%d", addr, time.Now().UnixNano())
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(`{"stock":5}`))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// alive reports whether pid runs (a zombie, exited but not reaped, does not).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return runtime.GOOS != "linux" && processAlive(pid)
	}
	// pid (comm) state ...: comm may hold spaces, so read after its closing parenthesis.
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	f := strings.Fields(string(rest))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for !cond() {
		if pause(ctx, 50*time.Millisecond) != nil {
			t.Fatalf("%s: not within %v", what, within)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
