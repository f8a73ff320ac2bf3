package placement

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flashstock/flashstock/api"
)

// StepKind is one raft operation on one group. A replica moves from node X to node Y in
// four kinds of step, each a single raft configuration change or leadership transfer, so a
// group never has fewer voters than it should while a replica moves:
//
//	AddNonvoter Y   (raft AddNonvoter: Y catches up on the log without counting for quorum)
//	Promote Y       (raft AddVoter on the caught-up nonvoter)
//	TransferLeader  (only if X leads or is the preferred leader: another voter takes over)
//	Remove X        (raft RemoveServer)
//
// The meta group (every node a member) moves a voter's role instead: AddNonvoter when a
// node joins, Promote Y, TransferLeader if X leads, Demote X (X stays a nonvoter and keeps
// reading the placement), and Remove X only once X is draining and hosts no data replica.
type StepKind string

// The steps.
const (
	AddNonvoter StepKind = "add_nonvoter"
	// Promote is planned as soon as the nonvoter exists; the caller carries it out once the
	// nonvoter has caught up with the leader's log, or the group would count on a voter
	// that cannot yet help form a quorum.
	Promote StepKind = "promote"
	// TransferLeader makes Node the group's preferred leader and asks raft to hand it the
	// leadership (a no-op when it already leads).
	TransferLeader StepKind = "transfer_leader"
	// Demote turns a voter of the meta group into a nonvoter (raft DemoteVoter). Only the
	// meta group demotes: a data group's replica leaves by Remove.
	Demote StepKind = "demote"
	Remove StepKind = "remove"
)

// Step is one operation the node that runs the planner performs on a group, then records
// with Apply. Steps are data so that plans can be logged, compared and replayed.
type Step struct {
	Group uint64   `json:"group"`
	Kind  StepKind `json:"kind"`
	Node  string   `json:"node"`
}

func (s Step) String() string { return fmt.Sprintf("group %d: %s %s", s.Group, s.Kind, s.Node) }

// Apply returns the placement after s: a copy of p, with its Version one higher unless s
// only moved live leadership. p is not changed. It refuses (ErrStep) a step that breaks a
// rule of moves: a nonvoter added to a data group that has one already or on a node that
// is not active, a promotion of anything but a nonvoter, a promotion that would give the
// meta group more than MetaVoters+1 voters, a leadership transfer to anything but a voter,
// a removal or demotion of the group's leader or preferred leader (which is also what
// keeps its last voter), a demotion in a data group, a removal of a meta voter (demote it
// first, so that the meta group's voters change one at a time and a leaving node goes on
// reading the placement until it hosts nothing else).
func Apply(p *api.Placement, s Step) (*api.Placement, error) {
	gi := slices.IndexFunc(p.Groups, func(g api.Group) bool { return g.ID == s.Group })
	if gi < 0 {
		return nil, broken(ErrUnknownGroup, "%s: no group %d", s, s.Group)
	}
	ni := slices.IndexFunc(p.Nodes, func(n api.PlacementNode) bool { return n.ID == s.Node })
	if ni < 0 {
		return nil, broken(ErrUnknownNode, "%s: no node %q", s, s.Node)
	}
	q := Clone(p)
	g := &q.Groups[gi]
	has := g.RoleOf(s.Node)
	refuse := func(why string) (*api.Placement, error) {
		return nil, broken(ErrStep, "%s: %s", s, why)
	}
	switch s.Kind {
	case AddNonvoter:
		switch {
		case has != "":
			return refuse("the node already hosts a replica of the group")
		case g.Kind == api.GroupData && nonvoter(*g) != "":
			return refuse("the group is moving a replica already")
		case q.Nodes[ni].State != api.NodeActive:
			return refuse("the node is " + q.Nodes[ni].State)
		}
		g.Replicas = append(g.Replicas, api.Replica{Node: s.Node, Role: api.Nonvoter})
		slices.SortFunc(g.Replicas, func(a, b api.Replica) int { return strings.Compare(a.Node, b.Node) })
	case Promote:
		switch {
		case has != api.Nonvoter:
			return refuse("the node is not a nonvoter of the group")
		case g.Kind == api.GroupMeta && len((*g).Voters()) > MetaVoters:
			return refuse("the meta group has as many voters as it may")
		}
		g.Replicas[slices.IndexFunc(g.Replicas, func(r api.Replica) bool { return r.Node == s.Node })].Role = api.Voter
	case TransferLeader:
		if has != api.Voter {
			return refuse("the node is not a voter of the group")
		}
		if g.PreferredLeader == s.Node {
			g.Leader = s.Node
			return q, nil // live state only: the placement is unchanged
		}
		g.PreferredLeader, g.Leader = s.Node, s.Node
	case Demote:
		switch {
		case g.Kind != api.GroupMeta:
			return refuse("only the meta group demotes: remove the replica")
		case has != api.Voter:
			return refuse("the node is not a voter of the group")
		case s.Node == g.Leader || s.Node == g.PreferredLeader:
			return refuse("the node leads the group: transfer leadership first")
		}
		g.Replicas[slices.IndexFunc(g.Replicas, func(r api.Replica) bool { return r.Node == s.Node })].Role = api.Nonvoter
	case Remove:
		switch {
		case has == "":
			return refuse("the node hosts no replica of the group")
		case has == api.Voter && g.Kind == api.GroupMeta:
			return refuse("the node is a voter of the meta group: demote it first")
		case has == api.Voter && (s.Node == g.Leader || s.Node == g.PreferredLeader):
			// A nonvoter never leads: a Leader naming one is stale.
			return refuse("the node leads the group: transfer leadership first")
		}
		g.Replicas = slices.DeleteFunc(g.Replicas, func(r api.Replica) bool { return r.Node == s.Node })
	default:
		return refuse("unknown step kind")
	}
	q.Version++
	return q, nil
}

// AddNode returns p with n added as an active node. The planner moves replicas onto it.
func AddNode(p *api.Placement, n api.PlacementNode) (*api.Placement, error) {
	if slices.ContainsFunc(p.Nodes, func(m api.PlacementNode) bool { return m.ID == n.ID }) {
		return nil, broken(ErrNodeExists, "node %q is listed", n.ID)
	}
	q := Clone(p)
	n.State = api.NodeActive
	q.Nodes = append(q.Nodes, n)
	slices.SortFunc(q.Nodes, func(a, b api.PlacementNode) int { return strings.Compare(a.ID, b.ID) })
	q.Version++
	return q, Validate(q)
}

// SetNodeState returns p with node id in state (api.NodeDraining: the planner moves its
// replicas off; api.NodeActive: it may host replicas again).
func SetNodeState(p *api.Placement, id, state string) (*api.Placement, error) {
	i := slices.IndexFunc(p.Nodes, func(n api.PlacementNode) bool { return n.ID == id })
	if i < 0 {
		return nil, broken(ErrUnknownNode, "no node %q", id)
	}
	q := Clone(p)
	if q.Nodes[i].State == state {
		return q, nil
	}
	q.Nodes[i].State = state
	q.Version++
	return q, Validate(q)
}

// RemoveNode returns p without node id, which must host no replica any more: drain it,
// let the planner move its replicas off, then remove it. Pins naming it go with it.
func RemoveNode(p *api.Placement, id string) (*api.Placement, error) {
	i := slices.IndexFunc(p.Nodes, func(n api.PlacementNode) bool { return n.ID == id })
	if i < 0 {
		return nil, broken(ErrUnknownNode, "no node %q", id)
	}
	for _, g := range p.Groups {
		if g.RoleOf(id) != "" {
			return nil, broken(ErrNodeInUse, "node %q hosts a replica of group %d", id, g.ID)
		}
	}
	q := Clone(p)
	q.Nodes = slices.Delete(q.Nodes, i, i+1)
	dropPins(q, id)
	q.Version++
	return q, nil
}

// Clone returns a deep copy of p: placements are values that the planner, Apply and the
// meta group's state machine never share.
func Clone(p *api.Placement) *api.Placement {
	q := *p
	q.Nodes = slices.Clone(p.Nodes)
	q.Groups = slices.Clone(p.Groups)
	for i := range q.Groups {
		q.Groups[i].Replicas = slices.Clone(q.Groups[i].Replicas)
		q.Groups[i].Slots = slices.Clone(q.Groups[i].Slots)
		q.Groups[i].PinnedReplicas = slices.Clone(q.Groups[i].PinnedReplicas)
	}
	return &q
}

// nonvoter is the group's nonvoter (the destination of the move in progress), or "".
func nonvoter(g api.Group) string {
	for _, r := range g.Replicas {
		if r.Role == api.Nonvoter {
			return r.Node
		}
	}
	return ""
}
