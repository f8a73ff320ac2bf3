package placement

import (
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// A new cluster starts where the planner would take it: nothing to do, slots in even
// contiguous ranges, every SKU in the group that owns its slot, the meta group on every
// node with its voters on the nodes that lead the fewest data groups.
func TestBootstrap_IsAFixpoint(t *testing.T) {
	for nodes := 1; nodes <= 7; nodes++ {
		for groups := 1; groups <= 16; groups++ {
			p := bootstrap(t, nodes, groups)
			live := ids(p)
			if steps, err := Plan(p, live); err != nil || len(steps) > 0 {
				t.Errorf("%d nodes, %d groups: Plan = %v, %v; want nothing to do", nodes, groups, steps, err)
			}
			meta := p.Groups[0]
			if len(meta.Replicas) != nodes || len(meta.Voters()) != metaVotersFor(nodes) {
				t.Errorf("%d nodes: meta group %v, want every node, %d voters", nodes, meta.Replicas, metaVotersFor(nodes))
			}
			leads := map[string]int{}
			for _, g := range p.Groups[1:] {
				leads[g.PreferredLeader]++
			}
			for _, v := range meta.Voters() {
				for _, r := range meta.Replicas {
					if r.Role == api.Nonvoter && leads[r.Node] < leads[v] {
						t.Errorf("%d nodes, %d groups: meta voter %s leads %d data groups, nonvoter %s %d", nodes, groups, v, leads[v], r.Node, leads[r.Node])
					}
				}
			}
			next := 0
			for _, g := range p.Groups[1:] {
				size := g.Slots[0].To - g.Slots[0].From
				if len(g.Slots) != 1 || g.Slots[0].From != next || size < api.SlotCount/groups || size > api.SlotCount/groups+1 {
					t.Errorf("%d groups: group %d owns %v", groups, g.ID, g.Slots)
				}
				next = g.Slots[0].To
			}
		}
	}
}

func TestBootstrap_Refuses(t *testing.T) {
	for _, tc := range []struct {
		nodes  []api.PlacementNode
		groups int
		want   Rule
	}{
		{nil, 1, ErrBootstrap},
		{testNodes(3), 0, ErrBootstrap},
		{testNodes(3), api.SlotCount + 1, ErrBootstrap},
		{append(testNodes(3), testNodes(1)...), 1, ErrNodeTwice},
		{append(testNodes(1), testNodes(1)...), 1, ErrNodeTwice}, // the planner looped on it
		{append(testNodes(2), testNodes(2)...), 3, ErrNodeTwice},
	} {
		if _, err := Bootstrap(tc.nodes, tc.groups); !errors.Is(err, tc.want) {
			t.Errorf("Bootstrap(%d nodes, %d groups) = %v, want %s", len(tc.nodes), tc.groups, err, tc.want)
		}
	}
}

// The planner's answers, round by round, every step of a round carried out: golden, to be
// read as the specification of each scenario.
func TestPlan_Scenarios(t *testing.T) {
	for _, tc := range []struct {
		name   string
		nodes  int
		groups int
		change func(p *api.Placement, live []string) (*api.Placement, []string)
		want   []string // one line per round
	}{
		{
			name: "a node joins three: it joins the meta group first, then gets its share",
			// 2 data groups x 3 replicas on 4 nodes: 2,2,1,1; the meta group on all four.
			nodes: 3, groups: 2,
			change: func(p *api.Placement, live []string) (*api.Placement, []string) {
				return must(AddNode(p, api.PlacementNode{ID: "n4", RaftAddr: "r4", HTTPAddr: "h4"})), append(live, "n4")
			},
			want: []string{
				"group 0: add_nonvoter n4",
				"group 2: add_nonvoter n4",
				"group 2: promote n4",
				"group 2: remove n1",
			},
		},
		{
			name:  "a node drains: add, promote, hand leadership over, remove",
			nodes: 4, groups: 1,
			change: func(p *api.Placement, live []string) (*api.Placement, []string) {
				return must(SetNodeState(p, "n1", api.NodeDraining)), live
			},
			want: []string{
				"group 1: add_nonvoter n4",
				"group 1: promote n4",
				"group 1: transfer_leader n3",
				"group 1: remove n1",
				"group 0: remove n1",
			},
		},
		{
			name:  "a node dies: its replicas move to the survivors, leadership spreads again",
			nodes: 4, groups: 3,
			change: func(p *api.Placement, live []string) (*api.Placement, []string) {
				return p, slices.DeleteFunc(live, func(n string) bool { return n == "n2" })
			},
			want: []string{
				"group 0: promote n1 | group 2: add_nonvoter n3 | group 3: add_nonvoter n4",
				"group 0: demote n2 | group 2: promote n3 | group 3: promote n4",
				"group 2: transfer_leader n1 | group 3: remove n2",
				"group 2: remove n2",
			},
		},
		{
			name:  "one of three dies: nowhere to move its replicas, only its leadership moves",
			nodes: 3, groups: 2,
			change: func(p *api.Placement, live []string) (*api.Placement, []string) {
				return p, []string{"n1", "n2"}
			},
			want: []string{
				"group 0: transfer_leader n1",
			},
		},
		{
			name:  "one of three dies, then is drained: data groups shrink to two voters, the meta group to one",
			nodes: 3, groups: 1,
			change: func(p *api.Placement, live []string) (*api.Placement, []string) {
				return must(SetNodeState(p, "n3", api.NodeDraining)), []string{"n1", "n2"}
			},
			want: []string{
				"group 0: demote n3 | group 1: remove n3", // n3 leads neither
				"group 0: demote n1",
				"group 0: remove n3", // last, once it hosts no data
			},
		},
		{
			name:  "one of three dies, a fourth joins: the dead one's replicas move there",
			nodes: 3, groups: 1,
			change: func(p *api.Placement, live []string) (*api.Placement, []string) {
				return must(AddNode(p, api.PlacementNode{ID: "n4", RaftAddr: "r4", HTTPAddr: "h4"})), []string{"n1", "n2", "n4"}
			},
			want: []string{
				"group 0: add_nonvoter n4", // group 1's move onto n4 waits for it
				"group 0: promote n4 | group 1: add_nonvoter n4",
				"group 0: demote n3 | group 1: promote n4", // n3 stays a (dead) meta nonvoter: it is active
				"group 1: remove n3",
			},
		},
		{
			name:  "one node grows to three: groups grow to three voters",
			nodes: 1, groups: 2,
			change: func(p *api.Placement, live []string) (*api.Placement, []string) {
				for _, n := range []string{"n2", "n3"} {
					p = must(AddNode(p, api.PlacementNode{ID: n, RaftAddr: "r" + n, HTTPAddr: "h" + n}))
				}
				return p, append(live, "n2", "n3")
			},
			want: []string{
				"group 0: add_nonvoter n2",
				"group 0: add_nonvoter n3 | group 1: add_nonvoter n2 | group 2: add_nonvoter n2",
				"group 0: promote n2 | group 1: promote n2 | group 2: promote n2",
				"group 0: promote n3 | group 1: add_nonvoter n3 | group 2: add_nonvoter n3",
				"group 1: promote n3 | group 2: promote n3",
				"group 0: transfer_leader n2 | group 1: transfer_leader n3",
			},
		},
		{
			name:  "three shrink to two: data groups to two voters, the meta group to one, nothing added",
			nodes: 3, groups: 1,
			change: func(p *api.Placement, live []string) (*api.Placement, []string) {
				return must(SetNodeState(p, "n3", api.NodeDraining)), live
			},
			want: []string{
				"group 0: demote n3 | group 1: remove n3",
				"group 0: demote n1",
				"group 0: remove n3",
			},
		},
		{
			name:  "the destination of a move drains: the move is abandoned",
			nodes: 3, groups: 1,
			change: func(p *api.Placement, live []string) (*api.Placement, []string) {
				p = must(AddNode(p, api.PlacementNode{ID: "n4", RaftAddr: "r4", HTTPAddr: "h4"}))
				p = must(Apply(p, Step{Group: 1, Kind: AddNonvoter, Node: "n4"}))
				return must(SetNodeState(p, "n4", api.NodeDraining)), append(live, "n4")
			},
			want: []string{
				"group 1: remove n4",
			},
		},
		{
			name:  "two of three voters down: the group cannot change, the others do",
			nodes: 5, groups: 3,
			change: func(p *api.Placement, live []string) (*api.Placement, []string) {
				return p, []string{"n1", "n3", "n5"}
			},
			want: []string{
				// group 1 (n1, n2, n4) waits for n2 or n4; the meta group (3 of 5 voters
				// live) keeps its voters and moves its leadership off n4.
				"group 2: add_nonvoter n1 | group 3: add_nonvoter n5",
				"group 2: promote n1 | group 3: promote n5",
				"group 2: transfer_leader n5 | group 3: remove n4",
				"group 2: remove n2",
				"group 0: transfer_leader n1",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := bootstrap(t, tc.nodes, tc.groups)
			for i := range p.Groups {
				p.Groups[i].Leader = p.Groups[i].PreferredLeader
			}
			p, live := tc.change(p, ids(p))
			got, _ := settleAll(t, p, live)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("rounds:\n%s\nwant:\n%s\nstarting from:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"), describe(p))
			}
		})
	}
}

// settleAll plans and carries out every step until Plan has nothing left, and returns
// the rounds.
func settleAll(t *testing.T, p *api.Placement, live []string) ([]string, *api.Placement) {
	t.Helper()
	var rounds []string
	for range 50 {
		steps, err := Plan(p, live)
		if err != nil {
			t.Fatalf("plan: %v", err)
		}
		if len(steps) == 0 {
			return rounds, p
		}
		var line []string
		for _, s := range steps {
			p = must(Apply(p, s))
			line = append(line, s.String())
		}
		rounds = append(rounds, strings.Join(line, " | "))
	}
	t.Fatalf("no fixpoint after 50 rounds: %s", strings.Join(rounds, "\n"))
	return nil, nil
}

func describe(p *api.Placement) string {
	var b strings.Builder
	for _, g := range p.Groups {
		fmt.Fprintf(&b, "group %d: leader %s, replicas %v\n", g.ID, g.PreferredLeader, g.Replicas)
	}
	return b.String()
}

func ids(p *api.Placement) []string {
	var l []string
	for _, n := range p.Nodes {
		l = append(l, n.ID)
	}
	return l
}

// After a failure raft elects whom it elects; once the preferred leader is back,
// leadership returns to it, and not before.
func TestBalanceLeaders_ReturnsLeadershipToPreferredLeaders(t *testing.T) {
	p := bootstrap(t, 3, 2)
	for i := range p.Groups {
		p.Groups[i].Leader = p.Groups[i].PreferredLeader
	}
	if steps := must2(BalanceLeaders(p, ids(p))); len(steps) != 0 {
		t.Fatalf("balanced cluster: %v", steps)
	}
	// n1 fails; raft moves its groups' leadership to n3.
	var lost []uint64
	for i, g := range p.Groups {
		if g.PreferredLeader == "n1" {
			p.Groups[i].Leader = "n3"
			lost = append(lost, g.ID)
		}
	}
	if len(lost) == 0 {
		t.Fatal("n1 leads no group")
	}
	if steps := must2(BalanceLeaders(p, []string{"n2", "n3"})); len(steps) != 0 {
		t.Errorf("while n1 is down: %v, want nothing (raft's choice stands)", steps)
	}
	steps := must2(BalanceLeaders(p, []string{"n1", "n2", "n3"}))
	var want []Step
	for _, g := range lost {
		want = append(want, Step{Group: g, Kind: TransferLeader, Node: "n1"})
	}
	if !slices.Equal(steps, want) {
		t.Errorf("n1 back: %v, want %v", steps, want)
	}
}

func must2[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// spread reaches balance through chains: here the only way to give n3 a group is to move
// group 0 from n1 to n2 and group 1 from n2 to n3.
func TestSpread_ShiftsAlongChains(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	candidates := [][]string{{"n1", "n2"}, {"n2", "n3"}, {"n1"}, {"n1"}}
	start := []string{"n1", "n2", "n1", "n1"}
	got := spread(nodes, candidates, start, nil)
	want := []string{"n2", "n3", "n1", "n1"}
	if !slices.Equal(got, want) {
		t.Errorf("spread = %v, want %v", got, want)
	}
}

// Adding a node to a balanced cluster moves exactly the replicas the new node ends up
// with, however the moves interleave: no replica moves between the old nodes.
func TestPlan_AddingANodeMovesOnlyItsShare(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	for nodes := 1; nodes <= 7; nodes++ {
		for groups := 1; groups <= 16; groups++ {
			for try := range 10 {
				p := bootstrap(t, nodes, groups)
				p = must(AddNode(p, api.PlacementNode{ID: "new", RaftAddr: "r", HTTPAddr: "h"}))
				p, moves := settleRandomly(t, rnd, p, ids(p))
				share := 0
				for _, g := range p.Groups {
					if g.RoleOf("new") != "" {
						share++
					}
				}
				if moves != share {
					t.Errorf("%d nodes, %d groups, try %d: %d replicas moved, the new node holds %d", nodes, groups, try, moves, share)
				}
			}
		}
	}
}

// Draining a node moves only its data replicas, whenever the groups it leaves can take
// good nodes that end balanced (checked by trying every choice); its meta replica moves
// nowhere (the meta group is on every node). The layouts are bootstrap's
// after a node was added and settled.
func TestPlan_DrainingMovesOnlyTheDrainedReplicas(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	possible := 0
	for nodes := 3; nodes <= 6; nodes++ {
		for groups := 1; groups <= 10; groups++ {
			for try := range 8 {
				p := bootstrap(t, nodes, groups)
				p = must(AddNode(p, api.PlacementNode{ID: "new", RaftAddr: "r", HTTPAddr: "h"}))
				p, _ = settleRandomly(t, rnd, p, ids(p))
				drained := p.Nodes[rnd.Intn(len(p.Nodes))].ID
				if !balanceableWithout(p, drained) {
					continue
				}
				possible++
				held := 0
				for _, g := range p.Groups[1:] { // the meta group's replica stays, as a nonvoter
					if g.RoleOf(drained) != "" {
						held++
					}
				}
				p = must(SetNodeState(p, drained, api.NodeDraining))
				if _, moves := settleRandomly(t, rnd, p, ids(p)); moves != held {
					t.Errorf("%d+1 nodes, %d groups, try %d: draining %s moved %d replicas, it held %d", nodes, groups, try, drained, moves, held)
				}
			}
		}
	}
	if possible < 100 {
		t.Errorf("only %d drains could be balanced: the test checks too little", possible)
	}
}

// balanceableWithout reports whether the groups that lose their replica on node drained
// can each take a node they lack so that the other nodes' loads end within one.
func balanceableWithout(p *api.Placement, drained string) bool {
	load := map[string]int{}
	var others []string
	for _, n := range p.Nodes {
		if n.ID != drained {
			others = append(others, n.ID)
			load[n.ID] = 0
		}
	}
	var choices [][]string
	for _, g := range p.Groups[1:] {
		for _, r := range g.Replicas {
			if r.Node != drained {
				load[r.Node]++
			}
		}
		if g.RoleOf(drained) != "" {
			var c []string
			for _, n := range others {
				if g.RoleOf(n) == "" {
					c = append(c, n)
				}
			}
			choices = append(choices, c)
		}
	}
	var try func(i int) bool
	try = func(i int) bool {
		if i == len(choices) {
			lo, hi := load[others[0]], load[others[0]]
			for _, n := range others {
				lo, hi = min(lo, load[n]), max(hi, load[n])
			}
			return hi-lo <= 1
		}
		for _, n := range choices[i] {
			load[n]++
			ok := try(i + 1)
			load[n]--
			if ok {
				return true
			}
		}
		return false
	}
	return try(0)
}

// settleRandomly carries out a random subset of the planned steps, in random order, until
// Plan has nothing left; it returns the placement and the number of replicas moved.
func settleRandomly(t *testing.T, rnd *rand.Rand, p *api.Placement, live []string) (*api.Placement, int) {
	t.Helper()
	moves := 0
	for range 100 {
		steps := must2(Plan(p, live))
		if len(steps) == 0 {
			return p, moves
		}
		rnd.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })
		for _, s := range steps[:1+rnd.Intn(len(steps))] {
			if s.Kind == AddNonvoter {
				moves++
			}
			p = must(Apply(p, s))
		}
	}
	t.Fatalf("no fixpoint after 100 rounds:\n%s", describe(p))
	return nil, 0
}

// The meta group through a cluster's life, golden: every node joins it as a nonvoter
// before any data replica moves onto it, its voters grow 1, 3, 5 (never to an even
// count at a fixpoint, one voter change per round), a sixth node stays a nonvoter, a
// draining node's vote moves to another node (promoted first) and it leaves the meta
// group only after its last data replica, and the voters shrink to 3 with 3 nodes left.
func TestPlan_MetaGroupScenarios(t *testing.T) {
	add := func(ids ...string) func(p *api.Placement, live []string) (*api.Placement, []string) {
		return func(p *api.Placement, live []string) (*api.Placement, []string) {
			for _, n := range ids {
				p = must(AddNode(p, api.PlacementNode{ID: n, RaftAddr: "r" + n, HTTPAddr: "h" + n}))
			}
			return p, append(live, ids...)
		}
	}
	drain := func(ids ...string) func(p *api.Placement, live []string) (*api.Placement, []string) {
		return func(p *api.Placement, live []string) (*api.Placement, []string) {
			for _, n := range ids {
				p = must(SetNodeState(p, n, api.NodeDraining))
			}
			return p, live
		}
	}
	type stage struct {
		change func(p *api.Placement, live []string) (*api.Placement, []string)
		want   []string // one line per round
		voters string   // the meta group's voters at the fixpoint
	}
	for _, tc := range []struct {
		name   string
		nodes  int
		groups int
		stages []stage
	}{
		{
			name: "one node grows to three, five, six", nodes: 1, groups: 2,
			stages: []stage{
				{change: add("n2", "n3"), want: []string{
					"group 0: add_nonvoter n2",
					"group 0: add_nonvoter n3 | group 1: add_nonvoter n2 | group 2: add_nonvoter n2",
					"group 0: promote n2 | group 1: promote n2 | group 2: promote n2",
					"group 0: promote n3 | group 1: add_nonvoter n3 | group 2: add_nonvoter n3",
					"group 1: promote n3 | group 2: promote n3",
					"group 0: transfer_leader n2 | group 1: transfer_leader n3",
				}, voters: "n1 n2 n3"},
				{change: add("n4", "n5"), want: []string{
					"group 0: add_nonvoter n4",
					"group 0: add_nonvoter n5 | group 1: add_nonvoter n4",
					"group 0: promote n4 | group 1: promote n4",
					"group 0: promote n5 | group 1: remove n1",
					"group 1: add_nonvoter n5",
					"group 1: promote n5",
					"group 1: remove n2",
				}, voters: "n1 n2 n3 n4 n5"},
				{change: add("n6"), want: []string{
					"group 0: add_nonvoter n6",
					"group 2: add_nonvoter n6",
					"group 2: promote n6",
					"group 2: remove n3",
				}, voters: "n1 n2 n3 n4 n5"},
			},
		},
		{
			name: "a node joins five: a meta nonvoter first, then its share of data", nodes: 5, groups: 4,
			stages: []stage{{change: add("n6"), want: []string{
				"group 0: add_nonvoter n6",
				"group 2: add_nonvoter n6 | group 3: add_nonvoter n6",
				"group 2: promote n6 | group 3: promote n6",
				"group 2: remove n1 | group 3: remove n2",
			}, voters: "n1 n2 n3 n4 n5"}},
		},
		{
			name: "a meta voter drains: another is promoted, it is demoted, leaves the meta group last", nodes: 6, groups: 3,
			stages: []stage{{change: drain("n1"), want: []string{
				"group 0: promote n2 | group 1: add_nonvoter n3 | group 2: add_nonvoter n6",
				"group 0: demote n1 | group 1: promote n3 | group 2: promote n6",
				"group 1: transfer_leader n2 | group 2: remove n1",
				"group 1: remove n1",
				"group 0: remove n1",
				"group 2: transfer_leader n5",
			}, voters: "n2 n3 n4 n5 n6"}},
		},
		{
			name: "five shrink to three: the meta group to three voters, one at a time", nodes: 5, groups: 2,
			stages: []stage{{change: drain("n4", "n5"), want: []string{
				"group 0: demote n4 | group 1: add_nonvoter n2 | group 2: add_nonvoter n3",
				"group 0: demote n5 | group 1: promote n2 | group 2: promote n3",
				"group 1: remove n5 | group 2: remove n4",
				"group 0: remove n4",
				"group 0: remove n5",
			}, voters: "n1 n2 n3"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := bootstrap(t, tc.nodes, tc.groups)
			for i := range p.Groups {
				p.Groups[i].Leader = p.Groups[i].PreferredLeader
			}
			live := ids(p)
			for i, st := range tc.stages {
				before := p
				p, live = st.change(p, live)
				var got []string
				got, p = settleAll(t, p, live)
				if strings.Join(got, "\n") != strings.Join(st.want, "\n") {
					t.Errorf("stage %d rounds:\n%s\nwant:\n%s\nstarting from:\n%s", i, strings.Join(got, "\n"), strings.Join(st.want, "\n"), describe(before))
				}
				if vs := strings.Join(p.Groups[0].Voters(), " "); vs != st.voters {
					t.Errorf("stage %d: meta voters %s, want %s", i, vs, st.voters)
				}
			}
		})
	}
}
