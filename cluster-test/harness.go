package clustertest

import (
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/proc"
)

// heartbeatTimeout is the members' --heartbeat-timeout: a follower that has heard nothing
// from its leader for this long may start an election.
const heartbeatTimeout = 300 * time.Millisecond

// fastTiming makes failover take about a second.
var fastTiming = []string{"--heartbeat-timeout", heartbeatTimeout.String(), "--election-timeout", "300ms", "--leader-lease-timeout", "150ms"}

// requestTimeout is the nodes' bound on a request (--request-timeout); clients wait a
// little longer for each attempt.
const requestTimeout = 2 * time.Second

// buildStockd compiles cmd/stockd into dir, with the faults build tag (the clock nemesis
// needs --fault-addr; without those flags the binary behaves as the normal build), and
// returns the binary's path. With race, the nodes run under the race detector.
func buildStockd(dir string, race bool) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	flags := []string{"-tags", "faults"}
	if race {
		flags = append(flags, "-race")
	}
	return proc.Build(ctx, dir, "github.com/flashstock/flashstock/cmd/stockd", flags...)
}

// ClusterConfig shapes a cluster of stockd processes.
type ClusterConfig struct {
	// Slots is how many members may ever exist; each gets ports, a data dir and proxies
	// on its links from the start, so members added later are reachable through proxies
	// too.
	Slots int
	// Start lists the slots started at once, by index; default: all. The first bootstraps,
	// the others join through it.
	Start []int
	// Standby lists slots that start without --join: they wait until a member adds them
	// (the membership scenario adds them through the API).
	Standby []int
	// Machines gives each member a simulated machine: a disk that can lose its un-fsynced
	// writes and a boot id of its own (powerloss.go). Needs FUSE and root.
	Machines bool
	// Extra flags for every node, after the defaults (a later flag wins).
	Extra []string
	// FaultControl gives every member a control listener of the faults build
	// (--fault-addr), through which SetClockOffset shifts its wall clock.
	FaultControl bool
	// Groups, above 1, makes a multi-group cluster: the first member bootstraps with
	// --groups G (the meta group and G data groups); the others join without it, taking
	// their replicas from the placement, as stockd requires.
	Groups int
}

// Member is one stockd slot: its addresses and data never change across restarts.
type Member struct {
	ID       string
	HTTPAddr string
	RaftAddr string
	DataDir  string
	LogPath  string
	// FaultAddr is the faults build's control listener ("" without ClusterConfig.FaultControl).
	FaultAddr string
	proc      *proc.Process // its command line, the same on every start

	mu      sync.Mutex
	stopped bool // SIGSTOPped and not continued
	// clockOffset is the wall-clock shift given to the member, kept across restarts.
	clockOffset time.Duration
}

// Running reports whether the member's process is alive (stopped counts as alive).
func (m *Member) Running() bool { return m.proc.Running() }

// Cluster is a set of stockd processes with a proxy on every directed raft link.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string
	Members []*Member
	Net     *Net
	hc      *http.Client
	events  *eventLog
	// machines are the members' simulated machines (ClusterConfig.Machines, powerloss.go).
	machines map[*Member]*machine
}

// NewCluster allocates ports, proxies and data dirs for cfg.Slots members and starts
// cfg.Start of them. Everything is stopped in t.Cleanup.
func NewCluster(t testing.TB, bin string, cfg ClusterConfig, seed int64, events *eventLog) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: bin, dir: t.TempDir(), hc: newHTTPClient(), events: events}
	t.Cleanup(c.close)
	perSlot := 2
	if cfg.FaultControl {
		perSlot = 3
	}
	ports, release, err := proc.ReservePorts(perSlot * cfg.Slots)
	if err != nil {
		t.Fatal(err)
	}
	slots := proc.Members(c.dir, ports[:cfg.Slots], ports[cfg.Slots:2*cfg.Slots])
	for i, pm := range slots {
		m := &Member{ID: pm.ID, HTTPAddr: pm.HTTPAddr, RaftAddr: pm.RaftAddr, DataDir: pm.DataDir,
			LogPath: filepath.Join(c.dir, pm.ID+".log")}
		if cfg.FaultControl {
			m.FaultAddr = fmt.Sprintf("127.0.0.1:%d", ports[2*cfg.Slots+i])
		}
		c.Members = append(c.Members, m)
	}
	c.Net, err = newNet(c.Members, seed) // while the members' ports are held, so no proxy takes one
	release()
	if err != nil {
		t.Fatalf("proxies: %v", err)
	}
	start := cfg.Start
	if start == nil {
		for i := range cfg.Slots {
			start = append(start, i)
		}
	}
	first := slots[start[0]]
	for i, m := range c.Members {
		args := slots[i].JoinArgs(first)
		if slices.Contains(cfg.Standby, i) {
			args = slots[i].Args()
		}
		args = append(args, fastTiming...)
		args = append(args, "--request-timeout", requestTimeout.String(), "--expire-interval", "1h",
			"--raft-dial-rewrite", c.Net.rewrites(m.ID))
		if m.FaultAddr != "" {
			args = append(args, "--fault-addr", m.FaultAddr)
		}
		if cfg.Groups > 1 && m.ID == first.ID {
			args = append(args, "--groups", strconv.Itoa(cfg.Groups))
		}
		m.proc = &proc.Process{Name: m.ID, Path: bin, Args: append(args, cfg.Extra...), LogPath: m.LogPath,
			Prepare: func(cmd *exec.Cmd) { c.onMachine(m, cmd) }}
	}
	if cfg.Machines {
		c.mountMachines()
	}
	for _, i := range start {
		c.Start(c.Members[i])
	}
	return c
}

// Member returns the member with this id.
func (c *Cluster) Member(id string) *Member {
	for _, m := range c.Members {
		if m.ID == id {
			return m
		}
	}
	c.t.Fatalf("no member %q", id)
	return nil
}

// Start runs m's command line (the same on every start), appending to its log.
func (c *Cluster) Start(m *Member) {
	c.t.Helper()
	m.mu.Lock()
	var extra []string
	if m.clockOffset != 0 {
		extra = []string{"--fault-clock-offset", m.clockOffset.String()}
	}
	m.stopped = false
	m.mu.Unlock()
	if err := m.proc.Start(extra...); err != nil {
		c.t.Fatal(err)
	}
	c.events.add("start %s (pid %d)", m.ID, m.proc.PID())
}

// signal sends sig to m's process; false if it is not running.
func (c *Cluster) signal(m *Member, sig syscall.Signal) bool {
	sent, err := m.proc.Signal(sig)
	if err != nil {
		c.t.Error(err)
	}
	return sent
}

// waitExit waits up to d for m's current run to be reaped.
func (m *Member) waitExit(d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return m.proc.Wait(ctx) == nil
}

// Kill sends SIGKILL and waits until the process is reaped.
func (c *Cluster) Kill(m *Member) {
	c.t.Helper()
	if !m.Running() {
		return
	}
	if err := m.proc.Kill(); err != nil {
		c.t.Error(err)
	}
	m.mu.Lock()
	m.stopped = false
	m.mu.Unlock()
	c.events.add("SIGKILL %s", m.ID)
}

// Pause sends SIGSTOP; Resume sends SIGCONT.
func (c *Cluster) Pause(m *Member) {
	if c.signal(m, syscall.SIGSTOP) {
		m.mu.Lock()
		m.stopped = true
		m.mu.Unlock()
		c.events.add("SIGSTOP %s", m.ID)
	}
}

// Resume continues a paused member.
func (c *Cluster) Resume(m *Member) {
	m.mu.Lock()
	stopped := m.stopped
	m.mu.Unlock()
	if stopped && c.signal(m, syscall.SIGCONT) {
		m.mu.Lock()
		m.stopped = false
		m.mu.Unlock()
		c.events.add("SIGCONT %s", m.ID)
	}
}

// Terminate sends SIGTERM and waits for a graceful exit, then SIGKILL past d.
func (c *Cluster) Terminate(m *Member, d time.Duration) {
	c.t.Helper()
	if !c.signal(m, syscall.SIGTERM) {
		return
	}
	c.events.add("SIGTERM %s", m.ID)
	if !m.waitExit(d) {
		c.t.Errorf("%s still running %v after SIGTERM; killing it", m.ID, d)
		c.Kill(m)
	}
}

// SetClockOffset shifts m's wall clock by d from now on, through its fault control
// listener while it runs and by flag on its next starts: a clock nemesis's bump.
func (c *Cluster) SetClockOffset(ctx context.Context, m *Member, d time.Duration) error {
	if m.FaultAddr == "" {
		return fmt.Errorf("%s has no fault control listener (ClusterConfig.FaultControl)", m.ID)
	}
	m.mu.Lock()
	m.clockOffset = d
	m.mu.Unlock()
	if !m.Running() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+m.FaultAddr+"/clock-offset", strings.NewReader(d.String()))
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("set %s's clock offset: %w (is stockd built with -tags faults?)", m.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("set %s's clock offset: HTTP %d %s", m.ID, resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

// Wipe deletes a stopped member's data dir.
func (c *Cluster) Wipe(m *Member) {
	c.t.Helper()
	if m.Running() {
		c.t.Fatalf("wipe %s: still running", m.ID)
	}
	if err := os.RemoveAll(m.DataDir); err != nil {
		c.t.Fatal(err)
	}
	c.events.add("wipe %s", m.ID)
}

// close resumes and kills every process and stops the proxies.
func (c *Cluster) close() {
	for _, m := range c.Members {
		_ = m.proc.Kill()
	}
	c.unmountMachines()
	c.Net.Close()
	c.hc.CloseIdleConnections()
}

// Running lists the members whose process is alive and not paused.
func (c *Cluster) Running() []*Member {
	var out []*Member
	for _, m := range c.Members {
		m.mu.Lock()
		stopped := m.stopped
		m.mu.Unlock()
		if m.Running() && !stopped {
			out = append(out, m)
		}
	}
	return out
}

// HTTPAddrs lists the HTTP addresses of the members in ids (all slots when none given).
func (c *Cluster) HTTPAddrs(ids ...string) []string {
	var out []string
	for _, m := range c.Members {
		if len(ids) == 0 || slices.Contains(ids, m.ID) {
			out = append(out, m.HTTPAddr)
		}
	}
	return out
}

// getJSON GETs path from addr into out, bounded by 2s.
func (c *Cluster) getJSON(ctx context.Context, addr, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s%s: %d %s", addr, path, resp.StatusCode, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, out)
}

// View is one member's GET /v1/cluster.
func (c *Cluster) View(ctx context.Context, m *Member) (api.Cluster, error) {
	var v api.Cluster
	err := c.getJSON(ctx, m.HTTPAddr, "/v1/cluster", &v)
	return v, err
}

// WaitLeader polls the members in ids until each is up and they all name the same leader
// whose configuration lists exactly ids; it returns the leader's id.
func (c *Cluster) WaitLeader(ctx context.Context, ids ...string) (string, error) {
	var why string
	for {
		leader, w := c.agreedLeader(ctx, ids)
		if w == "" {
			return leader, nil
		}
		why = w
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return "", fmt.Errorf("no agreed leader among %v: %s", ids, why)
		}
	}
}

func (c *Cluster) agreedLeader(ctx context.Context, ids []string) (leader, why string) {
	for _, id := range ids {
		v, err := c.View(ctx, c.Member(id))
		if err != nil {
			return "", fmt.Sprintf("%s: %v", id, err)
		}
		if v.Leader == "" || leader != "" && v.Leader != leader {
			return "", fmt.Sprintf("%s sees leader %q, others %q", id, v.Leader, leader)
		}
		leader = v.Leader
		var got []string
		for _, n := range v.Nodes {
			got = append(got, n.ID)
		}
		slices.Sort(got)
		want := slices.Clone(ids)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			return "", fmt.Sprintf("%s lists members %v, want %v", id, got, want)
		}
	}
	return leader, ""
}

// Leader returns the id of the member a majority of the running members names as leader,
// waiting for one up to ctx.
func (c *Cluster) Leader(ctx context.Context) (string, error) {
	for {
		count := map[string]int{}
		running := c.Running()
		for _, m := range running {
			if v, err := c.View(ctx, m); err == nil && v.Leader != "" {
				count[v.Leader]++
			}
		}
		for id, k := range count {
			if 2*k > len(running) {
				return id, nil
			}
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return "", errors.New("no leader named by a majority of the running members")
		}
	}
}

// Voters returns the leader's configuration (member ids), as a running member sees it.
func (c *Cluster) Voters(ctx context.Context) ([]string, error) {
	leader, err := c.Leader(ctx)
	if err != nil {
		return nil, err
	}
	v, err := c.View(ctx, c.Member(leader))
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, n := range v.Nodes {
		ids = append(ids, n.ID)
	}
	return ids, nil
}

// DebugState reads GET /v1/debug/state of m.
func (c *Cluster) DebugState(ctx context.Context, m *Member) (api.DebugState, error) {
	var s api.DebugState
	err := c.getJSON(ctx, m.HTTPAddr, "/v1/debug/state", &s)
	return s, err
}

// Ledger reads a SKU's movements from m's own state (a stale read: this replica's ledger).
func (c *Cluster) Ledger(ctx context.Context, m *Member, sku string) ([]api.Movement, error) {
	var h api.History
	err := c.getJSON(ctx, m.HTTPAddr, "/v1/skus/"+sku+"/history?limit=1000&consistency=stale", &h)
	return h.Movements, err
}

// LocalSKU reads a SKU from m's own state.
func (c *Cluster) LocalSKU(ctx context.Context, m *Member, sku string) (api.SKU, error) {
	var s api.SKU
	err := c.getJSON(ctx, m.HTTPAddr, "/v1/skus/"+sku+"?consistency=stale", &s)
	return s, err
}

// newHTTPClient is the harness's own client for status and debug reads.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     10 * time.Second,
	}}
}

// pause waits d or until ctx ends.
var pause = proc.Sleep

// eventLog is the timeline of injected faults and harness actions of one scenario.
type eventLog struct {
	mu     sync.Mutex
	start  time.Time
	lines  []string
	faults int
}

func newEventLog(start time.Time) *eventLog { return &eventLog{start: start} }

func (e *eventLog) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lines = append(e.lines, fmt.Sprintf("%8.3fs %s", time.Since(e.start).Seconds(), fmt.Sprintf(format, args...)))
}

// fault records an injected fault (counted in the summary).
func (e *eventLog) fault(format string, args ...any) {
	e.add("FAULT "+format, args...)
	e.mu.Lock()
	e.faults++
	e.mu.Unlock()
}

// addFaults records n faults injected by the workload itself (dropped answers).
func (e *eventLog) addFaults(n int, format string, args ...any) {
	e.add("FAULT "+format, args...)
	e.mu.Lock()
	e.faults += n
	e.mu.Unlock()
}

func (e *eventLog) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.lines, "\n")
}

func (e *eventLog) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.faults
}
