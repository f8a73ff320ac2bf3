package transport

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
)

// muxNode is one node process: one Mux, its Faults, and a raft member per
// group it hosts.
type muxNode struct {
	mux    *Mux
	faults *Faults
	addr   string
	groups map[uint64]*testNode
}

// startMuxNodes starts n nodes with a Mux each on loopback, over mutual TLS
// if ca is not nil, hosting no group yet.
func startMuxNodes(t *testing.T, n int, ca *testCA) []*muxNode {
	t.Helper()
	nodes := make([]*muxNode, n)
	for i := range nodes {
		f := NewFaults(nil)
		t.Cleanup(func() { f.Close() })
		cfg := Config{BindAddr: "127.0.0.1:0", Dial: f.Dial, WrapListener: f.WrapListener}
		if ca != nil {
			cfg.TLS, cfg.ClientTLS = ca.mutualTLS(t, fmt.Sprintf("n%d", i))
		}
		m := listenMux(t, MuxConfig{Config: cfg})
		nodes[i] = &muxNode{mux: m, faults: f, addr: m.Addr().String(), groups: make(map[uint64]*testNode)}
	}
	return nodes
}

// startGroup starts raft group id on every one of nodes and bootstraps it
// with them as its members.
func startGroup(t *testing.T, nodes []*muxNode, id uint64) []*testNode {
	t.Helper()
	members := make([]*testNode, len(nodes))
	for i, n := range nodes {
		member := &testNode{fsm: &testFSM{}, addr: n.addr, faults: n.faults}
		startRaft(t, member, openLayer(t, n.mux, id))
		n.groups[id] = member
		members[i] = member
	}
	bootstrap(t, members)
	return members
}

// members returns group id's raft member on each of nodes.
func members(nodes []*muxNode, id uint64) []*testNode {
	var out []*testNode
	for _, n := range nodes {
		out = append(out, n.groups[id])
	}
	return out
}

func without(nodes []*muxNode, skip *muxNode) []*muxNode {
	return slices.DeleteFunc(slices.Clone(nodes), func(n *muxNode) bool { return n == skip })
}

func TestMux_RaftGroupsReplicateIndependently(t *testing.T) {
	clusterSecurity(t, func(t *testing.T, ca *testCA) {
		nodes := startMuxNodes(t, 3, ca)
		groups := []uint64{LegacyGroup, 2, 3}
		for _, id := range groups {
			startGroup(t, nodes, id)
		}
		for _, id := range groups {
			apply(t, waitLeader(t, members(nodes, id)), fmt.Sprintf("deduct in group %d", id))
		}
		for _, id := range groups {
			waitApplied(t, members(nodes, id), fmt.Sprintf("deduct in group %d", id))
		}
	})
}

// A Block between two nodes cuts every group's traffic between them.
func TestMux_PartitionCutsEveryGroup(t *testing.T) {
	nodes := startMuxNodes(t, 3, nil)
	groups := []uint64{LegacyGroup, 2, 3}
	for _, id := range groups {
		startGroup(t, nodes, id)
		apply(t, waitLeader(t, members(nodes, id)), "a")
		waitApplied(t, members(nodes, id), "a")
	}

	cut, rest := nodes[0], without(nodes, nodes[0])
	for _, o := range rest {
		cut.faults.Block(o.addr)
		o.faults.Block(cut.addr)
	}
	for _, id := range groups {
		apply(t, waitLeader(t, members(rest, id)), "b")
		waitApplied(t, members(rest, id), "a", "b")
	}
	for _, id := range groups {
		waitFor(t, fmt.Sprintf("the cut node to lead no group %d", id), func() error {
			if cut.groups[id].raft.State() == raft.Leader {
				return errors.New("still leader")
			}
			return nil
		})
		if got := cut.groups[id].fsm.entries(); !slices.Equal(got, []string{"a"}) {
			t.Errorf("group %d on the cut node applied %q, want only a", id, got)
		}
	}

	for _, n := range nodes {
		n.faults.Heal()
	}
	for _, id := range groups {
		waitApplied(t, members(nodes, id), "a", "b")
	}
}

// A group's faults cut that group and leave the others on the same links.
func TestMux_GroupFaultsCutOneGroup(t *testing.T) {
	nodes := startMuxNodes(t, 3, nil)
	for _, id := range []uint64{2, 3} {
		startGroup(t, nodes, id)
		apply(t, waitLeader(t, members(nodes, id)), "a")
		waitApplied(t, members(nodes, id), "a")
	}

	cut, rest := nodes[0], without(nodes, nodes[0])
	for _, o := range rest {
		cut.faults.Group(2).Block(o.addr)
		o.faults.Group(2).Block(cut.addr)
	}
	leader2 := waitLeader(t, members(rest, 2))
	apply(t, leader2, "b")
	waitApplied(t, members(rest, 2), "a", "b")
	// Group 3 keeps every node: rounds it commits after group 2's "b" reach
	// the cut node, over the links group 2 cannot use.
	leader3 := waitLeader(t, members(nodes, 3))
	for i := range 5 {
		apply(t, leader3, fmt.Sprint("b", i))
	}
	waitApplied(t, members(nodes, 3), "a", "b0", "b1", "b2", "b3", "b4")
	if got := cut.groups[2].fsm.entries(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("group 2 on the cut node applied %q, want only a", got)
	}

	for _, n := range nodes {
		n.faults.Group(2).Heal()
	}
	waitApplied(t, members(nodes, 2), "a", "b")
}

// Groups come and go while the Muxes run.
func TestMux_RaftGroupAddedLaterJoinsAndDroppedGroupLeavesOthers(t *testing.T) {
	nodes := startMuxNodes(t, 3, nil)
	for _, id := range []uint64{LegacyGroup, 2} {
		startGroup(t, nodes, id)
		apply(t, waitLeader(t, members(nodes, id)), "a")
	}

	startGroup(t, nodes, 3)
	apply(t, waitLeader(t, members(nodes, 3)), "late")
	waitApplied(t, members(nodes, 3), "late")

	for _, n := range nodes {
		stopRaft(t, n.groups[2]) // closes group 2's layer on every Mux
	}
	for _, id := range []uint64{LegacyGroup, 3} {
		apply(t, waitLeader(t, members(nodes, id)), "after the drop")
	}
	waitApplied(t, members(nodes, LegacyGroup), "a", "after the drop")
	waitApplied(t, members(nodes, 3), "late", "after the drop")
}

// A group that exists on one node only sends votes the others refuse; their
// groups do not notice.
func TestMux_UnknownGroupIsRefusedWithoutDisturbingOthers(t *testing.T) {
	nodes := startMuxNodes(t, 3, nil)
	startGroup(t, nodes, 2)
	apply(t, waitLeader(t, members(nodes, 2)), "a")

	stray := &testNode{fsm: &testFSM{}, addr: nodes[0].addr, faults: nodes[0].faults}
	startRaft(t, stray, openLayer(t, nodes[0].mux, 9))
	var servers []raft.Server
	for _, n := range nodes {
		servers = append(servers, raft.Server{ID: raft.ServerID(n.addr), Address: raft.ServerAddress(n.addr)})
	}
	if err := stray.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		waitStats(t, n.mux, "group 9's streams refused", func(s MuxStats) bool { return s.UnknownGroup > 0 })
	}

	apply(t, waitLeader(t, members(nodes, 2)), "b")
	waitApplied(t, members(nodes, 2), "a", "b")
	if stray.raft.State() == raft.Leader {
		t.Error("group 9 elected a leader with one of its three members")
	}
}

// A rolling upgrade: one node still runs the single-group Layer, the others
// a Mux with the same group as LegacyGroup. Leadership visits every node, so
// every direction between old and new carries raft's rpcs.
func TestMux_RaftGroupSpansLayerAndMuxNodes(t *testing.T) {
	old := &testNode{fsm: &testFSM{}, faults: NewFaults(nil)}
	t.Cleanup(func() { old.faults.Close() })
	layer, err := Listen(Config{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	old.addr = layer.Addr().String()
	startRaft(t, old, layer)

	cluster := []*testNode{old}
	for _, n := range startMuxNodes(t, 2, nil) {
		member := &testNode{fsm: &testFSM{}, addr: n.addr, faults: n.faults}
		startRaft(t, member, openLayer(t, n.mux, LegacyGroup))
		cluster = append(cluster, member)
	}
	bootstrap(t, cluster)

	var want []string
	for _, next := range cluster {
		leader := waitLeader(t, cluster)
		if leader != next {
			if err := leader.raft.LeadershipTransferToServer(raft.ServerID(next.addr), raft.ServerAddress(next.addr)).Error(); err != nil {
				t.Fatalf("transfer leadership to %s: %v", next.addr, err)
			}
			if leader = waitLeader(t, cluster); leader != next {
				t.Fatalf("leader is %s after a transfer to %s", leader.addr, next.addr)
			}
		}
		entry := "led by " + next.addr
		apply(t, leader, entry)
		want = append(want, entry)
		waitApplied(t, cluster, want...)
	}
}
