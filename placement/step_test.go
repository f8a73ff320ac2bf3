package placement

import (
	"errors"
	"testing"

	"github.com/flashstock/flashstock/api"
)

func TestApply_RefusesUnsafeSteps(t *testing.T) {
	// 4 nodes, one data group: the meta group and group 1 on n1..n3 (group 1 led by n1),
	// n4 empty.
	base := func(t *testing.T) *api.Placement {
		p := bootstrap(t, 3, 1)
		p = must(AddNode(p, api.PlacementNode{ID: "n4", RaftAddr: "r4", HTTPAddr: "h4"}))
		p.Groups[1].Leader = p.Groups[1].PreferredLeader
		return p
	}
	for _, tc := range []struct {
		name    string
		prepare []Step
		step    Step
		want    Rule
		code    api.Code
	}{
		{"unknown group", nil, Step{Group: 7, Kind: AddNonvoter, Node: "n4"}, ErrUnknownGroup, api.NotFound},
		{"unknown node", nil, Step{Group: 1, Kind: AddNonvoter, Node: "n9"}, ErrUnknownNode, api.NotFound},
		{"unknown kind", nil, Step{Group: 1, Kind: "split", Node: "n4"}, ErrStep, api.FailedPrecondition},
		{"add a member", nil, Step{Group: 1, Kind: AddNonvoter, Node: "n2"}, ErrStep, api.FailedPrecondition},
		{"promote a voter", nil, Step{Group: 1, Kind: Promote, Node: "n2"}, ErrStep, api.FailedPrecondition},
		{"promote a stranger", nil, Step{Group: 1, Kind: Promote, Node: "n4"}, ErrStep, api.FailedPrecondition},
		{"lead from a nonvoter", []Step{{1, AddNonvoter, "n4"}}, Step{Group: 1, Kind: TransferLeader, Node: "n4"}, ErrStep, api.FailedPrecondition},
		{"remove a stranger", nil, Step{Group: 1, Kind: Remove, Node: "n4"}, ErrStep, api.FailedPrecondition},
		{"remove the leader", nil, Step{Group: 1, Kind: Remove, Node: "n1"}, ErrStep, api.FailedPrecondition},
		{"remove the preferred leader", []Step{{1, TransferLeader, "n3"}, {1, TransferLeader, "n2"}}, Step{Group: 1, Kind: Remove, Node: "n2"}, ErrStep, api.FailedPrecondition},
		{"remove the live leader", nil, Step{Group: 1, Kind: Remove, Node: "n3"}, ErrStep, api.FailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base(t)
			if p.Groups[1].PreferredLeader != "n1" {
				t.Fatalf("bootstrap put group 1's leader on %s; the cases assume n1", p.Groups[1].PreferredLeader)
			}
			if tc.name == "remove the live leader" {
				p.Groups[1].Leader = "n3" // raft elected another voter than the preferred one
			}
			for _, s := range tc.prepare {
				p = must(Apply(p, s))
			}
			q, err := Apply(p, tc.step)
			if !errors.Is(err, tc.want) || q != nil {
				t.Fatalf("Apply(%v) = %v, %v; want rule %s", tc.step, q, err, tc.want)
			}
			if ae := (*api.Error)(nil); !errors.As(err, &ae) || ae.Code != tc.code {
				t.Errorf("travels as %v, want %s", ae, tc.code)
			}
		})
	}
}

// The meta group moves votes, not replicas: it takes nonvoters on many nodes at once,
// demotes a voter it does not lead (and no data group demotes), removes only nonvoters,
// and never holds more than one voter beyond MetaVoters.
func TestApply_MetaGroupMovesVotes(t *testing.T) {
	p := bootstrap(t, 7, 2) // the meta group: five voters, two nonvoters
	meta := p.Groups[0]
	var vs, nvs []string
	for _, r := range meta.Replicas {
		if r.Role == api.Voter {
			vs = append(vs, r.Node)
		} else {
			nvs = append(nvs, r.Node)
		}
	}
	if len(vs) != MetaVoters || len(nvs) != 2 {
		t.Fatalf("bootstrap of 7 nodes: meta voters %v, nonvoters %v", vs, nvs)
	}
	var follower string // a meta voter that does not lead the meta group
	for _, n := range vs {
		if n != meta.PreferredLeader {
			follower = n
			break
		}
	}
	for _, n := range []string{"n8", "n9"} {
		p = must(AddNode(p, api.PlacementNode{ID: n, RaftAddr: "r" + n, HTTPAddr: "h" + n}))
	}
	joined := must(Apply(must(Apply(p, Step{Group: 0, Kind: AddNonvoter, Node: "n8"})), Step{Group: 0, Kind: AddNonvoter, Node: "n9"}))
	if err := Validate(joined); err != nil {
		t.Errorf("meta nonvoters on four nodes: %v", err)
	}
	sixth := must(Apply(p, Step{Group: 0, Kind: Promote, Node: nvs[0]}))
	demoted := must(Apply(sixth, Step{Group: 0, Kind: Demote, Node: follower}))
	if demoted.Groups[0].RoleOf(follower) != api.Nonvoter || demoted.Version != sixth.Version+1 {
		t.Errorf("demote %s: role %q, version %d after %d", follower, demoted.Groups[0].RoleOf(follower), demoted.Version, sixth.Version)
	}
	if err := Validate(demoted); err != nil {
		t.Errorf("after a demotion: %v", err)
	}
	dataVoter := p.Groups[1].Replicas[0].Node
	if dataVoter == p.Groups[1].PreferredLeader {
		dataVoter = p.Groups[1].Replicas[1].Node
	}
	for _, tc := range []struct {
		name string
		p    *api.Placement
		step Step
	}{
		{"a seventh meta voter", sixth, Step{Group: 0, Kind: Promote, Node: nvs[1]}},
		{"demote in a data group", p, Step{Group: 1, Kind: Demote, Node: dataVoter}},
		{"demote the meta leader", p, Step{Group: 0, Kind: Demote, Node: meta.PreferredLeader}},
		{"demote a meta nonvoter", p, Step{Group: 0, Kind: Demote, Node: nvs[0]}},
		{"remove a meta voter", p, Step{Group: 0, Kind: Remove, Node: follower}},
	} {
		if q, err := Apply(tc.p, tc.step); !errors.Is(err, ErrStep) || q != nil {
			t.Errorf("%s: Apply(%v) = %v; want rule %s", tc.name, tc.step, err, ErrStep)
		}
	}
	if q, err := Apply(demoted, Step{Group: 0, Kind: Remove, Node: follower}); err != nil || q.Groups[0].RoleOf(follower) != "" {
		t.Errorf("remove a demoted meta voter: %v", err)
	}
}

// A second move cannot start while one is in progress, and no move starts onto a node
// that is draining.
func TestApply_OneMoveAtATimeOntoActiveNodes(t *testing.T) {
	p := bootstrap(t, 3, 1)
	for _, n := range []string{"n4", "n5"} {
		p = must(AddNode(p, api.PlacementNode{ID: n, RaftAddr: "r" + n, HTTPAddr: "h" + n}))
	}
	moving := must(Apply(p, Step{Group: 1, Kind: AddNonvoter, Node: "n4"}))
	if _, err := Apply(moving, Step{Group: 1, Kind: AddNonvoter, Node: "n5"}); !errors.Is(err, ErrStep) {
		t.Errorf("second nonvoter: %v, want %s", err, ErrStep)
	}
	drained := must(SetNodeState(p, "n5", api.NodeDraining))
	if _, err := Apply(drained, Step{Group: 1, Kind: AddNonvoter, Node: "n5"}); !errors.Is(err, ErrStep) {
		t.Errorf("nonvoter on a draining node: %v, want %s", err, ErrStep)
	}
}

func TestApply_VersionsPlacementChangesOnly(t *testing.T) {
	p := bootstrap(t, 3, 1)
	g := p.Groups[1]
	other := g.Replicas[1].Node
	if other == g.PreferredLeader {
		other = g.Replicas[2].Node
	}
	moved := must(Apply(p, Step{Group: 1, Kind: TransferLeader, Node: other}))
	if moved.Version != p.Version+1 || moved.Groups[1].PreferredLeader != other || moved.Groups[1].Leader != other {
		t.Errorf("transfer to a new preferred leader: version %d, preferred %s, leader %s", moved.Version, moved.Groups[1].PreferredLeader, moved.Groups[1].Leader)
	}
	back := must(Apply(moved, Step{Group: 1, Kind: TransferLeader, Node: other}))
	if back.Version != moved.Version {
		t.Errorf("a transfer that only moves live leadership changed the version: %d → %d", moved.Version, back.Version)
	}
	if p.Groups[1].PreferredLeader != g.PreferredLeader {
		t.Errorf("Apply changed its input")
	}
}

func TestNodes_AddDrainRemove(t *testing.T) {
	p := bootstrap(t, 3, 1)
	if _, err := AddNode(p, api.PlacementNode{ID: "n1", RaftAddr: "r", HTTPAddr: "h"}); !errors.Is(err, ErrNodeExists) {
		t.Errorf("AddNode of a listed id: %v", err)
	}
	if _, err := AddNode(p, api.PlacementNode{ID: "n4"}); !errors.Is(err, ErrNodeAddr) {
		t.Errorf("AddNode without addresses: %v", err)
	}
	if _, err := SetNodeState(p, "n4", api.NodeDraining); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("SetNodeState of an unknown node: %v", err)
	}
	if _, err := SetNodeState(p, "n1", "resting"); !errors.Is(err, ErrNodeState) {
		t.Errorf("SetNodeState to an unknown state: %v", err)
	}
	_, err := RemoveNode(p, "n2")
	if ae := (*api.Error)(nil); !errors.Is(err, ErrNodeInUse) || !errors.As(err, &ae) || ae.Code != api.FailedPrecondition {
		t.Errorf("RemoveNode of a node with replicas: %v", err)
	}
	q := must(AddNode(p, api.PlacementNode{ID: "n4", RaftAddr: "r", HTTPAddr: "h"}))
	if q.Version != p.Version+1 || q.Nodes[3].State != api.NodeActive {
		t.Errorf("AddNode: version %d, node %+v", q.Version, q.Nodes[3])
	}
	q = must(RemoveNode(q, "n4"))
	if q.Version != p.Version+2 || len(q.Nodes) != 3 {
		t.Errorf("RemoveNode of an empty node: version %d, nodes %v", q.Version, q.Nodes)
	}
}
