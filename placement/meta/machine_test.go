package meta_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

func group(p api.Placement, id uint64) api.Group {
	i := slices.IndexFunc(p.Groups, func(g api.Group) bool { return g.ID == id })
	return p.Groups[i]
}

func state(p api.Placement, id string) string {
	i := slices.IndexFunc(p.Nodes, func(n api.PlacementNode) bool { return n.ID == id })
	if i < 0 {
		return ""
	}
	return p.Nodes[i].State
}

func step(from, g uint64, k placement.StepKind, n string) meta.Command {
	return meta.Command{Kind: meta.RecordStep, From: from, Step: &placement.Step{Group: g, Kind: k, Node: n}}
}

// Each command's effect on the placement, and each refusal: a refused command answers its
// rule, keeps the version and changes nothing but the applied index.
func TestApply_CommandsAndRefusals(t *testing.T) {
	addN4 := meta.Command{Kind: meta.AddNode, From: 1, Node: &api.PlacementNode{ID: "n4", RaftAddr: "n4:7000", HTTPAddr: "n4:8000"}}
	tests := []struct {
		name  string
		empty bool           // start from a machine with no placement, not from bootstrapped's
		setup []meta.Command // applied first, each must apply
		cmd   meta.Command
		want  placement.Rule // "" if the command applies
		ver   uint64         // the version after it
		check func(t *testing.T, p api.Placement)
	}{
		{name: "bootstrap", empty: true, cmd: meta.Command{Kind: meta.Bootstrap, Nodes: nodes("n2", "n1", "n3"), DataGroups: 3}, ver: 1,
			check: func(t *testing.T, p api.Placement) {
				if len(p.Nodes) != 3 || len(p.Groups) != 4 || state(p, "n1") != api.NodeActive {
					t.Errorf("placement %+v: want 3 active nodes, meta group and 3 data groups", p)
				}
			}},
		{name: "bootstrap twice", cmd: meta.Command{Kind: meta.Bootstrap, Nodes: nodes("n9"), DataGroups: 1}, want: placement.ErrStale, ver: 1},
		{name: "bootstrap of no group", empty: true, cmd: meta.Command{Kind: meta.Bootstrap, Nodes: nodes("n1"), DataGroups: -1}, want: placement.ErrBootstrap},
		{name: "bootstrap of a node twice", empty: true, cmd: meta.Command{Kind: meta.Bootstrap, Nodes: nodes("n1", "n1"), DataGroups: 1}, want: placement.ErrNodeTwice},
		{name: "add node before bootstrap", empty: true, cmd: addN4, want: placement.ErrStale},
		{name: "add node", cmd: addN4, ver: 2,
			check: func(t *testing.T, p api.Placement) {
				if state(p, "n4") != api.NodeActive {
					t.Errorf("n4 is %q, want active", state(p, "n4"))
				}
			}},
		{name: "add a listed node", cmd: meta.Command{Kind: meta.AddNode, From: 1, Node: &api.PlacementNode{ID: "n2", RaftAddr: "x", HTTPAddr: "y"}}, want: placement.ErrNodeExists, ver: 1},
		{name: "add a node without address", cmd: meta.Command{Kind: meta.AddNode, From: 1, Node: &api.PlacementNode{ID: "n4", RaftAddr: "n4:7000"}}, want: placement.ErrNodeAddr, ver: 1},
		{name: "add node planned from an older version", setup: []meta.Command{addN4},
			cmd: meta.Command{Kind: meta.AddNode, From: 1, Node: &api.PlacementNode{ID: "n5", RaftAddr: "n5:7000", HTTPAddr: "n5:8000"}}, want: placement.ErrStale, ver: 2},
		{name: "add node planned from a newer version", cmd: meta.Command{Kind: meta.AddNode, From: 2, Node: addN4.Node}, want: placement.ErrStale, ver: 1},
		{name: "drain", cmd: meta.Command{Kind: meta.SetNodeState, From: 1, NodeID: "n1", State: api.NodeDraining}, ver: 2,
			check: func(t *testing.T, p api.Placement) {
				if state(p, "n1") != api.NodeDraining {
					t.Errorf("n1 is %q, want draining", state(p, "n1"))
				}
			}},
		{name: "undrain", setup: []meta.Command{{Kind: meta.SetNodeState, From: 1, NodeID: "n1", State: api.NodeDraining}},
			cmd: meta.Command{Kind: meta.SetNodeState, From: 2, NodeID: "n1", State: api.NodeActive}, ver: 3,
			check: func(t *testing.T, p api.Placement) {
				if state(p, "n1") != api.NodeActive {
					t.Errorf("n1 is %q, want active", state(p, "n1"))
				}
			}},
		{name: "set the state a node has", cmd: meta.Command{Kind: meta.SetNodeState, From: 1, NodeID: "n1", State: api.NodeActive}, ver: 1},
		{name: "drain an unknown node", cmd: meta.Command{Kind: meta.SetNodeState, From: 1, NodeID: "n9", State: api.NodeDraining}, want: placement.ErrUnknownNode, ver: 1},
		{name: "remove a node that hosts replicas", cmd: meta.Command{Kind: meta.RemoveNode, From: 1, NodeID: "n1"}, want: placement.ErrNodeInUse, ver: 1},
		{name: "remove an unknown node", cmd: meta.Command{Kind: meta.RemoveNode, From: 1, NodeID: "n9"}, want: placement.ErrUnknownNode, ver: 1},
		{name: "remove node", setup: []meta.Command{addN4}, cmd: meta.Command{Kind: meta.RemoveNode, From: 2, NodeID: "n4"}, ver: 3,
			check: func(t *testing.T, p api.Placement) {
				if state(p, "n4") != "" {
					t.Errorf("n4 is still listed")
				}
			}},
		{name: "step: add nonvoter", setup: []meta.Command{addN4}, cmd: step(2, 1, placement.AddNonvoter, "n4"), ver: 3,
			check: func(t *testing.T, p api.Placement) {
				if !slices.Contains(group(p, 1).Replicas, api.Replica{Node: "n4", Role: api.Nonvoter}) {
					t.Errorf("group 1 replicas %v, want n4 a nonvoter", group(p, 1).Replicas)
				}
			}},
		{name: "step: promote", setup: []meta.Command{addN4, step(2, 1, placement.AddNonvoter, "n4")}, cmd: step(3, 1, placement.Promote, "n4"), ver: 4,
			check: func(t *testing.T, p api.Placement) {
				if !slices.Contains(group(p, 1).Replicas, api.Replica{Node: "n4", Role: api.Voter}) {
					t.Errorf("group 1 replicas %v, want n4 a voter", group(p, 1).Replicas)
				}
			}},
		{name: "step: promote a voter", cmd: step(1, 1, placement.Promote, "n1"), want: placement.ErrStep, ver: 1},
		{name: "step: transfer leadership", cmd: step(1, 1, placement.TransferLeader, "n3"), ver: 2,
			check: func(t *testing.T, p api.Placement) {
				if g := group(p, 1); g.PreferredLeader != "n3" || g.Leader != "" {
					t.Errorf("group 1 prefers %q, leader %q: want n3 preferred and no live leader recorded", g.PreferredLeader, g.Leader)
				}
			}},
		{name: "step: transfer leadership where it is steered", setup: []meta.Command{step(1, 1, placement.TransferLeader, "n3")},
			cmd: step(2, 1, placement.TransferLeader, "n3"), ver: 2},
		{name: "step: remove the preferred leader", setup: []meta.Command{step(1, 1, placement.TransferLeader, "n3")},
			cmd: step(2, 1, placement.Remove, "n3"), want: placement.ErrStep, ver: 2},
		{name: "step: unknown group", cmd: step(1, 9, placement.Promote, "n1"), want: placement.ErrUnknownGroup, ver: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := meta.New()
			if !tc.empty {
				m = bootstrapped(t)
			}
			for _, c := range tc.setup {
				apply(t, m, c)
			}
			before, idx := m.Placement(), m.Applied()
			res := m.Apply(idx+1, encode(t, tc.cmd))
			if got := rule(t, res.Err); got != tc.want {
				t.Fatalf("%s: error %v, want rule %q", tc.cmd.Kind, res.Err, tc.want)
			}
			after := m.Placement()
			if res.Version != tc.ver || after.Version != tc.ver {
				t.Errorf("version %d (result %d), want %d", after.Version, res.Version, tc.ver)
			}
			if m.Applied() != idx+1 {
				t.Errorf("applied index %d, want %d", m.Applied(), idx+1)
			}
			if m.Err() != nil {
				t.Errorf("the machine stopped: %v", m.Err())
			}
			if tc.want != "" || tc.ver == before.Version {
				if !reflect.DeepEqual(before, after) {
					t.Errorf("a command that changed nothing changed the placement:\nbefore %+v\nafter  %+v", before, after)
				}
				return
			}
			if err := placement.Validate(&after); err != nil {
				t.Errorf("the placement it made is invalid: %v", err)
			}
			if tc.check != nil {
				tc.check(t, after)
			}
		})
	}
}

// Two controllers plan from the same version (one of them after losing the meta group's
// leadership); whichever commits first applies and the other is refused as stale, so a
// placement never takes both plans.
func TestApply_CompareAndSetLetsOneOfTwoRacersApply(t *testing.T) {
	m := bootstrapped(t)
	apply(t, m, meta.Command{Kind: meta.AddNode, From: 1, Node: &api.PlacementNode{ID: "n4", RaftAddr: "n4:7000", HTTPAddr: "n4:8000"}})
	from := m.Version()
	racers := []meta.Command{
		step(from, 1, placement.AddNonvoter, "n4"),
		step(from, 2, placement.AddNonvoter, "n4"),
		{Kind: meta.SetNodeState, From: from, NodeID: "n4", State: api.NodeDraining},
	}
	for i, first := range racers {
		for j, second := range racers {
			if i == j {
				continue
			}
			m := meta.New()
			if err := m.Restore(snapshot(t, bootstrappedPlusN4(t))); err != nil {
				t.Fatal(err)
			}
			r1 := m.Apply(m.Applied()+1, encode(t, first))
			r2 := m.Apply(m.Applied()+1, encode(t, second))
			if r1.Err != nil || r1.Version != from+1 {
				t.Errorf("first %+v: %v, version %d: want it applied at %d", first, r1.Err, r1.Version, from+1)
			}
			if rule(t, r2.Err) != placement.ErrStale || r2.Version != from+1 {
				t.Errorf("second %+v after %+v: %v, version %d: want stale at %d", second, first, r2.Err, r2.Version, from+1)
			}
			if !errors.Is(r2.Err, &api.Error{Code: api.FailedPrecondition}) {
				t.Errorf("stale travels as %v, want failed_precondition", r2.Err)
			}
		}
	}
}

func bootstrappedPlusN4(t *testing.T) *meta.Machine {
	m := bootstrapped(t)
	apply(t, m, meta.Command{Kind: meta.AddNode, From: 1, Node: &api.PlacementNode{ID: "n4", RaftAddr: "n4:7000", HTTPAddr: "n4:8000"}})
	// At this build's level, so that the pins apply (level.go).
	apply(t, m, meta.Command{Kind: meta.SetLevel, Level: meta.ApplyLevel})
	return m
}

// An entry this build cannot read stops the machine where it is: the entry is not applied,
// nor is any after it, and no snapshot is taken that would skip it on another replica.
func TestApply_UnknownEntryStopsTheMachine(t *testing.T) {
	m := bootstrapped(t)
	before := snapshot(t, m)
	res := m.Apply(2, []byte(`{"v":1,"kind":"split_group","from":1}`))
	if rule(t, res.Err) != placement.ErrUnknownCommand {
		t.Fatalf("unknown kind: %v, want unknown_command", res.Err)
	}
	if !errors.Is(m.Err(), placement.ErrUnknownCommand) {
		t.Fatalf("Err() = %v, want unknown_command", m.Err())
	}
	next := m.Apply(3, encode(t, meta.Command{Kind: meta.SetNodeState, From: 1, NodeID: "n1", State: api.NodeDraining}))
	if !errors.Is(next.Err, placement.ErrUnknownCommand) || m.Version() != 1 || m.Applied() != 1 {
		t.Errorf("after stopping: %v, version %d, applied %d: want the stop error, version 1, applied 1", next.Err, m.Version(), m.Applied())
	}
	if _, err := m.Snapshot(); !errors.Is(err, placement.ErrUnknownCommand) {
		t.Errorf("snapshot of a stopped machine: %v, want the stop error", err)
	}
	if err := m.Restore(before); !errors.Is(err, placement.ErrUnknownCommand) {
		t.Errorf("restore into a stopped machine: %v, want the stop error", err)
	}
	if _, err := m.WaitVersion(context.Background(), 2); !errors.Is(err, placement.ErrUnknownCommand) {
		t.Errorf("wait on a stopped machine: %v, want the stop error", err)
	}
}

// The log replayed over a restored snapshot: entries the snapshot covers are skipped.
func TestApply_SkipsEntriesAtOrBelowTheAppliedIndex(t *testing.T) {
	m := bootstrapped(t)
	drain := encode(t, meta.Command{Kind: meta.SetNodeState, From: 1, NodeID: "n1", State: api.NodeDraining})
	if res := m.Apply(2, drain); res.Err != nil || res.Version != 2 {
		t.Fatalf("drain: %v, version %d", res.Err, res.Version)
	}
	snap := snapshot(t, m)
	for _, i := range []uint64{1, 2} {
		if res := m.Apply(i, drain); res.Err != nil || res.Version != 2 {
			t.Errorf("replay of entry %d: %v, version %d: want skipped at version 2", i, res.Err, res.Version)
		}
	}
	if got := snapshot(t, m); string(got) != string(snap) {
		t.Errorf("replayed entries changed the state")
	}
}

// A reader waiting for a version is woken by the entry that makes it, not before.
// synctest.Wait returns once the waiter is blocked, so each check sees it waiting.
func TestWaitVersion_ReturnsOnceTheVersionIsApplied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := bootstrapped(t)
		type got struct {
			p   api.Placement
			err error
		}
		done := make(chan got, 1)
		go func() {
			p, err := m.WaitVersion(context.Background(), 3)
			done <- got{p, err}
		}()
		waiting := func(after string) {
			synctest.Wait()
			select {
			case g := <-done:
				t.Fatalf("returned at version %d (%v) after %s, before version 3 was applied", g.p.Version, g.err, after)
			default:
			}
		}
		waiting("nothing")
		apply(t, m, meta.Command{Kind: meta.SetNodeState, From: 1, NodeID: "n1", State: api.NodeDraining})
		waiting("version 2")
		m.Apply(m.Applied()+1, encode(t, meta.Command{Kind: meta.RemoveNode, From: 1, NodeID: "n1"}))
		waiting("a refused command")
		apply(t, m, meta.Command{Kind: meta.SetNodeState, From: 2, NodeID: "n1", State: api.NodeDraining})
		waiting("a command that changed nothing")
		apply(t, m, meta.Command{Kind: meta.SetNodeState, From: 2, NodeID: "n1", State: api.NodeActive})
		g := <-done
		if g.err != nil || g.p.Version != 3 || state(g.p, "n1") != api.NodeActive {
			t.Errorf("got version %d, n1 %q, %v: want version 3 with n1 active", g.p.Version, state(g.p, "n1"), g.err)
		}
	})
}

// A restore wakes the readers too: a replica catching up by snapshot jumps versions.
func TestWaitVersion_WokenByRestore(t *testing.T) {
	ahead := snapshot(t, bootstrappedPlusN4(t))
	synctest.Test(t, func(t *testing.T) {
		m := bootstrapped(t)
		done := make(chan uint64, 1)
		go func() {
			p, _ := m.WaitVersion(context.Background(), 2)
			done <- p.Version
		}()
		synctest.Wait()
		if err := m.Restore(ahead); err != nil {
			t.Fatal(err)
		}
		if v := <-done; v != 2 {
			t.Errorf("woken at version %d, want 2", v)
		}
	})
}

func TestWaitVersion_ReturnsAtOnceOrOnCancel(t *testing.T) {
	m := bootstrapped(t)
	if p, err := m.WaitVersion(context.Background(), 1); err != nil || p.Version != 1 {
		t.Errorf("wait for the version it is at: %d, %v", p.Version, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.WaitVersion(ctx, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a canceled context: %v, want context.Canceled", err)
	}
}

// Placement hands out copies: a reader that changes what it got changes nothing else.
func TestPlacement_IsACopy(t *testing.T) {
	m := bootstrapped(t)
	p := m.Placement()
	p.Nodes[0].State = api.NodeDraining
	p.Groups[1].Replicas[0].Role = api.Nonvoter
	p.Groups[1].Slots[0].To = 1
	if q := m.Placement(); reflect.DeepEqual(p, q) || placement.Validate(&q) != nil {
		t.Errorf("changing a copy changed the machine's placement")
	}
}

// An operator's move, leader pin and unpin go through the log like the controller's
// steps: guarded by the version they were checked against, refused alike on every
// replica when a rule of the placement forbids them, and carried in snapshots.
func TestApply_OperatorPins(t *testing.T) {
	m := bootstrappedPlusN4(t) // version 2: n1..n4, two data groups of three
	p := m.Placement()
	g := p.Groups[1]
	var from, to string
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		switch {
		case slices.ContainsFunc(g.Replicas, func(r api.Replica) bool { return r.Node == n }) && n != g.PreferredLeader && from == "":
			from = n
		case !slices.ContainsFunc(g.Replicas, func(r api.Replica) bool { return r.Node == n }):
			to = n
		}
	}
	move := meta.Command{Kind: meta.MoveReplica, From: 2, Move: &meta.Move{Group: g.ID, From: from, To: to}}
	if res := apply(t, m, move); res.Version != 3 {
		t.Fatalf("move: version %d, want 3", res.Version)
	}
	// A second operator who checked the same version is ordered after the first: stale.
	if res := m.Apply(m.Applied()+1, encode(t, meta.Command{Kind: meta.PinLeader, From: 2, Lead: &meta.Lead{Group: g.ID, Node: to}})); rule(t, res.Err) != placement.ErrStale {
		t.Errorf("a pin checked against version 2 at version 3: %v, want stale", res.Err)
	}
	if res := apply(t, m, meta.Command{Kind: meta.PinLeader, From: 3, Lead: &meta.Lead{Group: g.ID, Node: to}}); res.Version != 4 {
		t.Errorf("pin leader: version %d, want 4", res.Version)
	}
	got := m.Placement().Groups[1]
	if got.PinnedLeader != to || slices.Contains(got.PinnedReplicas, from) || !slices.Contains(got.PinnedReplicas, to) {
		t.Errorf("pins %v %q, want %s in place of %s, led by it", got.PinnedReplicas, got.PinnedLeader, to, from)
	}
	// A rule of the placement refuses the same way everywhere and changes nothing.
	before := m.Placement()
	if res := m.Apply(m.Applied()+1, encode(t, meta.Command{Kind: meta.MoveReplica, From: 4, Move: &meta.Move{Group: g.ID, From: to, To: from}})); rule(t, res.Err) != placement.ErrPinnedLeader || res.Version != 4 {
		t.Errorf("a move off the pinned leader: %v, version %d", res.Err, res.Version)
	}
	if res := m.Apply(m.Applied()+1, encode(t, meta.Command{Kind: meta.MoveReplica, From: 4, Move: &meta.Move{Group: 0, From: "n1", To: "n4"}})); rule(t, res.Err) != placement.ErrMetaPin {
		t.Errorf("a move in the meta group: %v", res.Err)
	}
	if after := m.Placement(); !reflect.DeepEqual(after, before) {
		t.Errorf("the refused commands changed the placement")
	}
	// The pins survive a snapshot.
	r := meta.New()
	if err := r.Restore(snapshot(t, m)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Placement(), m.Placement()) {
		t.Errorf("restored %+v, want %+v", r.Placement().Groups[1], m.Placement().Groups[1])
	}
	if res := apply(t, m, meta.Command{Kind: meta.Unpin, From: 4}); res.Version != 5 {
		t.Errorf("unpin: version %d, want 5", res.Version)
	}
	if res := apply(t, m, meta.Command{Kind: meta.Unpin, From: 5}); res.Version != 5 {
		t.Errorf("unpin without pins: version %d, want 5 (nothing changed)", res.Version)
	}
	for _, g := range m.Placement().Groups {
		if len(g.PinnedReplicas) > 0 || g.PinnedLeader != "" {
			t.Errorf("unpinned: group %d still pins %v %q", g.ID, g.PinnedReplicas, g.PinnedLeader)
		}
	}
}
