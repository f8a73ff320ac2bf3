package placement

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// groupSteps is the steps of group id among steps, as strings.
func groupSteps(steps []Step, id uint64) []string {
	var out []string
	for _, s := range steps {
		if s.Group == id {
			out = append(out, string(s.Kind)+" "+s.Node)
		}
	}
	return out
}

func replicaLoads(p *api.Placement) map[string]int {
	load := map[string]int{}
	for _, n := range p.Nodes {
		load[n.ID] = 0
	}
	for _, g := range p.Groups {
		if g.Kind == api.GroupData {
			for _, n := range g.Voters() {
				load[n]++
			}
		}
	}
	return load
}

// Every move an operator can ask for in a 4-node, 3-group cluster is carried out in the
// usual single steps (learner, promotion, leadership away if the source leads, removal),
// and held there: the planner has nothing left although the loads now differ by two,
// which unpinned it would even out. Unpin hands the group back to the balance rule.
func TestMoveReplica_PlannerCarriesItOutAndHoldsIt(t *testing.T) {
	base := bootstrap(t, 4, 3)
	live := ids(base)
	moves := 0
	for _, g := range base.Groups[1:] {
		for _, from := range g.Voters() {
			for _, to := range live {
				if g.RoleOf(to) != "" {
					continue
				}
				moves++
				p, err := MoveReplica(base, g.ID, from, to)
				if err != nil {
					t.Fatalf("move group %d %s->%s: %v", g.ID, from, to, err)
				}
				if p.Version != base.Version+1 {
					t.Errorf("move group %d %s->%s: version %d, want %d", g.ID, from, to, p.Version, base.Version+1)
				}
				steps, err := Forecast(p, live, 50)
				if err != nil {
					t.Fatal(err)
				}
				want := []string{"add_nonvoter " + to, "promote " + to}
				if from == g.PreferredLeader {
					want = append(want, "transfer_leader ")
				}
				want = append(want, "remove "+from)
				got := groupSteps(steps, g.ID)
				if len(got) != len(want) || !slices.EqualFunc(got, want, strings.HasPrefix) {
					t.Errorf("move group %d %s->%s: steps %v, want %v", g.ID, from, to, got, want)
				}
				end := p
				for _, s := range steps {
					end = must(Apply(end, s))
				}
				wantVoters := slices.Sorted(slices.Values(append(slices.DeleteFunc(g.Voters(), func(n string) bool { return n == from }), to)))
				if got := end.Groups[g.ID].Voters(); !slices.Equal(got, wantVoters) {
					t.Errorf("move group %d %s->%s: ends on %v, want %v\n%s", g.ID, from, to, got, wantVoters, describe(end))
				}
				if again := must2(Plan(end, live)); len(again) > 0 {
					t.Errorf("move group %d %s->%s: the planner undoes the pinned move: %v", g.ID, from, to, again)
				}
				// Unpinned, the balance rule takes over again.
				free := Unpin(end)
				if free.Version != end.Version+1 {
					t.Errorf("unpin: version %d, want %d", free.Version, end.Version+1)
				}
				_, free = settleAll(t, free, live)
				if err := withinOne("replicas", replicaLoads(free)); err != nil {
					t.Errorf("move group %d %s->%s, then unpin: %v", g.ID, from, to, err)
				}
			}
		}
	}
	if moves != 3*3 {
		t.Errorf("tried %d moves, want 9", moves)
	}
}

// A leader pin makes the node the group's preferred leader and holds it there, the other
// groups' leaders spread around it; the group's voters are held with it.
func TestPinLeader_PlannerCarriesItOutAndHoldsIt(t *testing.T) {
	base := bootstrap(t, 4, 3)
	live := ids(base)
	for _, g := range base.Groups[1:] {
		for _, n := range g.Voters() {
			p, err := PinLeader(base, g.ID, n)
			if err != nil {
				t.Fatalf("pin group %d on %s: %v", g.ID, n, err)
			}
			if pg := p.Groups[g.ID]; pg.PinnedLeader != n || !slices.Equal(pg.PinnedReplicas, g.Voters()) {
				t.Errorf("pin group %d on %s: pins %v %q", g.ID, n, pg.PinnedReplicas, pg.PinnedLeader)
			}
			_, end := settleAll(t, p, live)
			if end.Groups[g.ID].PreferredLeader != n {
				t.Errorf("pin group %d on %s: preferred leader %s", g.ID, n, end.Groups[g.ID].PreferredLeader)
			}
			if n == g.PreferredLeader && end.Version != p.Version {
				t.Errorf("pin group %d on its leader %s moved things: version %d -> %d", g.ID, n, p.Version, end.Version)
			}
			leads := map[string]int{}
			for _, h := range end.Groups {
				leads[h.PreferredLeader]++
			}
			if err := withinOne("leaderships", leads); err != nil {
				t.Errorf("pin group %d on %s: %v", g.ID, n, err)
			}
		}
	}
	// A move's destination may be pinned as leader before it arrives.
	p := must(MoveReplica(base, 1, "n3", "n2"))
	p = must(PinLeader(p, 1, "n2"))
	_, end := settleAll(t, p, live)
	if g := end.Groups[1]; g.PreferredLeader != "n2" || !slices.Equal(g.Voters(), []string{"n1", "n2", "n4"}) {
		t.Errorf("move then pin leader: %+v", g)
	}
}

func TestPins_Refusals(t *testing.T) {
	base := bootstrap(t, 4, 3) // group 1 on n1 n3 n4, leader n1
	drained := must(SetNodeState(base, "n2", api.NodeDraining))
	pinned := must(PinLeader(base, 1, "n3"))
	joining := must(Apply(base, Step{Group: 1, Kind: AddNonvoter, Node: "n2"}))
	shedding := must(Apply(joining, Step{Group: 1, Kind: Promote, Node: "n2"}))
	for _, tc := range []struct {
		name string
		do   func() (*api.Placement, error)
		want Rule
		code api.Code
	}{
		{"unknown group", func() (*api.Placement, error) { return MoveReplica(base, 9, "n1", "n2") }, ErrUnknownGroup, api.NotFound},
		{"unknown source", func() (*api.Placement, error) { return MoveReplica(base, 1, "n9", "n2") }, ErrUnknownNode, api.NotFound},
		{"unknown destination", func() (*api.Placement, error) { return MoveReplica(base, 1, "n1", "n9") }, ErrUnknownNode, api.NotFound},
		{"the meta group", func() (*api.Placement, error) { return MoveReplica(base, 0, "n2", "n1") }, ErrMetaPin, api.InvalidArgument},
		{"destination a voter", func() (*api.Placement, error) { return MoveReplica(base, 1, "n1", "n3") }, ErrAlreadyReplica, api.FailedPrecondition},
		{"source not a voter", func() (*api.Placement, error) { return MoveReplica(base, 1, "n2", "n2") }, ErrNotReplica, api.FailedPrecondition},
		{"destination draining", func() (*api.Placement, error) { return MoveReplica(drained, 1, "n3", "n2") }, ErrNodeDraining, api.FailedPrecondition},
		{"source the pinned leader", func() (*api.Placement, error) { return MoveReplica(pinned, 1, "n3", "n2") }, ErrPinnedLeader, api.FailedPrecondition},
		{"a move of the planner's joining", func() (*api.Placement, error) { return MoveReplica(joining, 1, "n3", "n2") }, ErrGroupMoving, api.FailedPrecondition},
		{"a move of the planner's shedding", func() (*api.Placement, error) { return PinLeader(shedding, 1, "n3") }, ErrGroupMoving, api.FailedPrecondition},
		{"leader of an unknown group", func() (*api.Placement, error) { return PinLeader(base, 9, "n1") }, ErrUnknownGroup, api.NotFound},
		{"leader unknown", func() (*api.Placement, error) { return PinLeader(base, 1, "n9") }, ErrUnknownNode, api.NotFound},
		{"leader of the meta group", func() (*api.Placement, error) { return PinLeader(base, 0, "n2") }, ErrMetaPin, api.InvalidArgument},
		{"leader not a voter", func() (*api.Placement, error) { return PinLeader(base, 1, "n2") }, ErrNotReplica, api.FailedPrecondition},
		{"leader draining", func() (*api.Placement, error) {
			return PinLeader(must(SetNodeState(base, "n3", api.NodeDraining)), 1, "n3")
		}, ErrNodeDraining, api.FailedPrecondition},
	} {
		p, err := tc.do()
		if !errors.Is(err, tc.want) || !errors.Is(err, &api.Error{Code: tc.code}) {
			t.Errorf("%s: %v, %v; want %s (%s)", tc.name, p, err, tc.want, tc.code)
		}
	}
}

// Asking again for a move or leader already asked for changes nothing and is not refused:
// a retried request after a lost answer is the same wish.
func TestPins_AskingAgainChangesNothing(t *testing.T) {
	base := bootstrap(t, 4, 3)
	moved := must(MoveReplica(base, 1, "n3", "n2"))
	if again, err := MoveReplica(moved, 1, "n3", "n2"); err != nil || again.Version != moved.Version {
		t.Errorf("the move again: version %d, %v; want %d", again.Version, err, moved.Version)
	}
	led := must(PinLeader(moved, 1, "n2"))
	if again, err := PinLeader(led, 1, "n2"); err != nil || again.Version != led.Version {
		t.Errorf("the leader again: version %d, %v; want %d", again.Version, err, led.Version)
	}
	if free := Unpin(base); free.Version != base.Version {
		t.Errorf("unpin without pins: version %d, want %d", free.Version, base.Version)
	}
}

// CheckLive refuses what the live cluster cannot carry out: a destination that does not
// answer, a group whose live voters are not a majority now or during the move.
func TestCheckLive(t *testing.T) {
	base := bootstrap(t, 4, 3) // group 1 on n1 n3 n4
	moved := must(MoveReplica(base, 1, "n3", "n2"))
	for _, tc := range []struct {
		name string
		live []string
		node string
		want Rule
	}{
		{"all live", []string{"n1", "n2", "n3", "n4"}, "n2", ""},
		{"the source down", []string{"n1", "n2", "n4"}, "n2", ""},
		{"one voter down", []string{"n1", "n2", "n3"}, "n2", ""},
		{"the destination down", []string{"n1", "n3", "n4"}, "n2", ErrNodeDown},
		{"two voters down", []string{"n1", "n2"}, "n2", ErrNoQuorum},
		{"two voters down, the destination a voter", []string{"n3", "n2"}, "n3", ErrNoQuorum},
	} {
		err := CheckLive(moved, tc.live, 1, tc.node)
		if tc.want == "" && err != nil || tc.want != "" && (!errors.Is(err, tc.want) || !errors.Is(err, &api.Error{Code: api.FailedPrecondition})) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := CheckLive(moved, ids(moved), 9, "n2"); !errors.Is(err, ErrUnknownGroup) {
		t.Errorf("unknown group: %v", err)
	}
}

// A pin yields to safety: a pinned node that drains is left (the group is topped up on
// another good node), the group comes back to it once undrained, and a node that leaves
// the placement takes its pins along.
func TestPins_YieldToDrainingAndLeaveWithTheNode(t *testing.T) {
	base := bootstrap(t, 4, 3)
	live := ids(base)
	p := must(MoveReplica(base, 1, "n3", "n2"))
	p = must(PinLeader(p, 1, "n2"))
	_, p = settleAll(t, p, live)
	p = must(SetNodeState(p, "n2", api.NodeDraining))
	_, drained := settleAll(t, p, live)
	if g := drained.Groups[1]; g.RoleOf("n2") != "" || len(g.Voters()) != 3 || g.PreferredLeader == "n2" {
		t.Errorf("drained n2: group 1 %+v, want three voters off n2", g)
	}
	back := must(SetNodeState(drained, "n2", api.NodeActive))
	_, back = settleAll(t, back, live)
	if g := back.Groups[1]; !slices.Equal(g.Voters(), []string{"n1", "n2", "n4"}) || g.PreferredLeader != "n2" {
		t.Errorf("undrained n2: group 1 %+v, want the pins again", g)
	}
	for _, h := range drained.Groups {
		for _, r := range h.Replicas {
			if r.Node == "n2" {
				drained = must(Apply(drained, Step{Group: h.ID, Kind: Demote, Node: "n2"}))
				drained = must(Apply(drained, Step{Group: h.ID, Kind: Remove, Node: "n2"}))
			}
		}
	}
	gone, err := RemoveNode(drained, "n2")
	if err != nil {
		t.Fatalf("remove n2: %v\n%s", err, describe(drained))
	}
	if g := gone.Groups[1]; slices.Contains(g.PinnedReplicas, "n2") || g.PinnedLeader != "" {
		t.Errorf("removed n2: group 1 still pins it: %v %q", g.PinnedReplicas, g.PinnedLeader)
	}
	if err := Validate(gone); err != nil {
		t.Error(err)
	}
}

func TestValidate_Pins(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(p *api.Placement)
	}{
		{"a pin on the meta group", func(p *api.Placement) { p.Groups[0].PinnedReplicas = []string{"n1"} }},
		{"a leader pin on the meta group", func(p *api.Placement) { p.Groups[0].PinnedLeader = "n1" }},
		{"an unknown node", func(p *api.Placement) { p.Groups[1].PinnedReplicas = []string{"n1", "n9"} }},
		{"a node twice", func(p *api.Placement) { p.Groups[1].PinnedReplicas = []string{"n1", "n1"} }},
		{"a leader outside the pinned replicas", func(p *api.Placement) {
			p.Groups[1].PinnedReplicas, p.Groups[1].PinnedLeader = []string{"n1", "n3", "n4"}, "n2"
		}},
		{"a leader without pinned replicas", func(p *api.Placement) { p.Groups[1].PinnedLeader = "n1" }},
	} {
		p := bootstrap(t, 4, 3)
		tc.change(p)
		if err := Validate(p); !errors.Is(err, ErrPin) {
			t.Errorf("%s: %v, want pin", tc.name, err)
		}
	}
}
