package proc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
)

// Member is where one member of a loopback cluster lives: its id, addresses and data dir
// never change across restarts.
type Member struct {
	ID       string
	HTTPAddr string
	RaftAddr string
	DataDir  string
}

// Members lays out len(httpPorts) members on 127.0.0.1, n1 first, each with its data dir
// under dir.
func Members(dir string, httpPorts, raftPorts []int) []Member {
	ms := make([]Member, len(httpPorts))
	for i := range ms {
		id := "n" + strconv.Itoa(i+1)
		ms[i] = Member{ID: id, DataDir: filepath.Join(dir, id),
			HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPorts[i])),
			RaftAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(raftPorts[i]))}
	}
	return ms
}

// Args is m's stockd command line without a way into a cluster: a member that starts with
// it waits until one adds it.
func (m Member) Args() []string {
	return []string{"--id", m.ID, "--data-dir", m.DataDir, "--http-addr", m.HTTPAddr, "--raft-addr", m.RaftAddr}
}

// JoinArgs is m's command line as DESIGN.md's "Node start-up" says: the first member
// bootstraps, every other joins through it. Both are ignored by a node that finds its
// state, so the line is the same on a restart.
func (m Member) JoinArgs(first Member) []string {
	if m.ID == first.ID {
		return append(m.Args(), "--bootstrap")
	}
	return append(m.Args(), "--join", first.HTTPAddr)
}

// ReservePorts asks the kernel for n distinct free loopback ports and holds them until
// release is called, so that the caller can take others meanwhile without a clash.
func ReservePorts(n int) (ports []int, release func(), err error) {
	var lns []net.Listener
	release = func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, release, nil
}

// FreePorts is n distinct ports free on loopback a moment ago.
func FreePorts(n int) ([]int, error) {
	ports, release, err := ReservePorts(n)
	if err != nil {
		return nil, err
	}
	release()
	return ports, nil
}

// Ready says why view, one member's GET /v1/cluster, is not yet a cluster of want members
// that serves: no leader, a member missing, or a member that is not a settled voter (not
// answering, in an election, or its HTTP address not yet replicated, so that requests
// cannot be forwarded to it).
func Ready(view *api.Cluster, want int) error {
	if view.Leader == "" {
		return errors.New("no leader yet")
	}
	if len(view.Nodes) != want {
		return fmt.Errorf("%d of %d nodes are members", len(view.Nodes), want)
	}
	for _, m := range view.Nodes {
		if m.Role != api.RoleLeader && m.Role != api.RoleFollower {
			return fmt.Errorf("member %s does not answer as leader or follower yet (%q)", m.ID, m.Role)
		}
		if m.HTTPAddr == "" {
			return fmt.Errorf("member %s has no HTTP address yet", m.ID)
		}
	}
	return settled(view)
}

// settled says why a multi-group cluster is still moving: PlacementSettled, then a
// leadership the controller has yet to spread (placement.BalanceLeaders). A load started
// before then would measure the moves. A node shows the leader only of the groups it hosts
// a replica of, so that every group has one is CheckReady's to check, over every view.
func settled(view *api.Cluster) error {
	if view.PlacementVersion == 0 {
		return nil // a single-group cluster: Ready's members are its replicas
	}
	p, live, err := PlacementSettled(view)
	if err != nil {
		return err
	}
	steps, err := placement.BalanceLeaders(p, live)
	switch {
	case err != nil:
		return fmt.Errorf("placement version %d: %w", view.PlacementVersion, err)
	case len(steps) > 0:
		return fmt.Errorf("placement version %d: leadership still moving: next %s", view.PlacementVersion, steps[0])
	}
	return nil
}

// PlacementSettled says why a multi-group cluster's replicas are still moving, as
// placement's own planner sees view (one member's GET /v1/cluster, every listed node
// taken as active and live): a step the placement controller has yet to take (a replica
// to add, promote or remove). A fault injected before then would hit a group with fewer
// voters than it will have. Who leads is the caller's to check: a node shows no leader for
// a group it hosts no replica of. It returns the placement it judged and its nodes.
func PlacementSettled(view *api.Cluster) (*api.Placement, []string, error) {
	p := &api.Placement{Version: view.PlacementVersion, SlotCount: api.SlotCount}
	var live []string
	add := func(n api.PlacementNode) {
		if !slices.Contains(live, n.ID) {
			p.Nodes = append(p.Nodes, n)
			live = append(live, n.ID)
		}
	}
	for _, n := range view.Nodes {
		add(api.PlacementNode{ID: n.ID, RaftAddr: n.RaftAddr, HTTPAddr: n.HTTPAddr, State: api.NodeActive})
	}
	// The nodes of a multi-group cluster are the placement's; a view that lists only the
	// members of one group's raft configuration still names every node among the replicas
	// (the meta group is on every node).
	for _, g := range view.Groups {
		for _, r := range g.Replicas {
			// The planner does not dial; the placement's rules only want an address.
			unknown := "(" + r.Node + ": not in this view)"
			add(api.PlacementNode{ID: r.Node, RaftAddr: unknown, HTTPAddr: unknown, State: api.NodeActive})
		}
	}
	// A group the answering node hosts no replica of shows no leader; the planner, which
	// hands leadership away before it removes a leader's replica, takes it to be where it
	// is steered, as the controller does (node.balanceLeaders).
	p.Groups = slices.Clone(view.Groups)
	for i := range p.Groups {
		if p.Groups[i].Leader == "" {
			p.Groups[i].Leader = p.Groups[i].PreferredLeader
		}
	}
	steps, err := placement.Plan(p, live)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("placement version %d: %w", view.PlacementVersion, err)
	case len(steps) > 0:
		return nil, nil, fmt.Errorf("placement version %d is still moving: next %s", view.PlacementVersion, steps[0])
	}
	return p, live, nil
}

// View reads GET /v1/cluster from addr.
func View(ctx context.Context, hc *http.Client, addr string) (*api.Cluster, error) {
	url := "http://" + addr + "/v1/cluster"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var view api.Cluster
	if err := json.NewDecoder(resp.Body).Decode(&view); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return &view, nil
}

// CheckReady asks every address for its view once: all must be Ready for len(addrs)
// members and name the same leader. It returns the first view, or why the cluster is not
// ready.
func CheckReady(ctx context.Context, hc *http.Client, addrs []string) (*api.Cluster, error) {
	var first *api.Cluster
	led := map[uint64]bool{}
	for _, addr := range addrs {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		view, err := View(ctx, hc, addr)
		cancel()
		if err == nil {
			err = Ready(view, len(addrs))
		}
		if err == nil && first != nil && view.Leader != first.Leader {
			err = fmt.Errorf("it sees leader %q, %s sees %q", view.Leader, addrs[0], first.Leader)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		if first == nil {
			first = view
		}
		for _, g := range view.Groups {
			if g.Leader != "" {
				led[g.ID] = true
			}
		}
	}
	for _, g := range first.Groups {
		if !led[g.ID] {
			return nil, fmt.Errorf("group %d has no leader yet (no node reports one)", g.ID)
		}
	}
	return first, nil
}

// WaitReady polls CheckReady until the cluster is ready, ctx ends, or one of procs exits
// (its port taken, say: it would never be ready).
func WaitReady(ctx context.Context, hc *http.Client, addrs []string, procs ...*Process) (*api.Cluster, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, p := range procs {
			if !p.Running() {
				return nil, fmt.Errorf("%s (pid %d) exited during start-up: %v", p.Name, p.PID(), p.Err())
			}
		}
		view, err := CheckReady(ctx, hc, addrs)
		if err == nil {
			return view, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster not ready: %w", err)
		case <-tick.C:
		}
	}
}

// Tail is the last n lines of the file at path (or why it could not be read).
func Tail(path string, n int) string {
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

// CopyLogs copies each process's log file into dir (created if missing) as <name>.log.
func CopyLogs(dir string, procs ...*Process) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range procs {
		data, err := os.ReadFile(p.LogPath)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, p.Name+".log"), data, 0o644)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
