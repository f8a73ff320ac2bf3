package placement

import (
	"slices"

	"github.com/flashstock/flashstock/api"
)

// MoveReplica returns p with data group id pinned to the voters it is steered to, from
// replaced by to: the pinned replicas if it has a pin, else its voters now. The planner
// then moves the replica in its usual single steps. It checks what the placement alone
// can tell (the meta group's state machine applies it on every replica alike); CheckLive
// adds what only the live cluster can, before the move is proposed.
//
// Asking again for a move already asked for (to among the pinned voters, from not) pins
// the same voters and changes nothing, so that a retried request is not refused.
func MoveReplica(p *api.Placement, id uint64, from, to string) (*api.Placement, error) {
	gi, err := pinnable(p, id, from, to)
	if err != nil {
		return nil, err
	}
	g := p.Groups[gi]
	want := pinTarget(g)
	has := func(n string) bool { return slices.Contains(want, n) }
	switch {
	case has(to) && !has(from):
		// Asked before (or the group is there already): hold it there.
	case has(to):
		return nil, broken(ErrAlreadyReplica, "group %d: %q is one of its voters already", id, to)
	case !has(from):
		return nil, broken(ErrNotReplica, "group %d: %q is not one of its voters (%v)", id, from, want)
	case from == g.PinnedLeader:
		return nil, broken(ErrPinnedLeader, "group %d: its leadership is pinned to %q: pin it to another voter first", id, from)
	default:
		want[slices.Index(want, from)] = to
	}
	if err := active(p, to); err != nil {
		return nil, err
	}
	slices.Sort(want)
	return pin(p, gi, want, g.PinnedLeader)
}

// PinLeader returns p with data group id's leadership pinned to node, which must be one
// of the voters the group is steered to (a move's destination may be pinned before it
// arrives: the leadership follows once it has). The group's voters are pinned with it, as
// they are now unless pinned already: a leader pin on a replica the balance rule then
// moved away would hold nothing. The planner then makes node the group's preferred
// leader. Pinning the leader a group is pinned to already changes nothing.
func PinLeader(p *api.Placement, id uint64, node string) (*api.Placement, error) {
	gi, err := pinnable(p, id, node)
	if err != nil {
		return nil, err
	}
	g := p.Groups[gi]
	if want := pinTarget(g); !slices.Contains(want, node) {
		return nil, broken(ErrNotReplica, "group %d: %q is not one of its voters (%v)", id, node, want)
	}
	if err := active(p, node); err != nil {
		return nil, err
	}
	want := pinTarget(g)
	slices.Sort(want)
	return pin(p, gi, want, node)
}

// Unpin returns p with no pin on any group: the planner balances every group again. A
// placement without pins is returned unchanged, at its version.
func Unpin(p *api.Placement) *api.Placement {
	q := Clone(p)
	changed := false
	for i := range q.Groups {
		g := &q.Groups[i]
		if len(g.PinnedReplicas) > 0 || g.PinnedLeader != "" {
			g.PinnedReplicas, g.PinnedLeader, changed = nil, "", true
		}
	}
	if changed {
		q.Version++
	}
	return q
}

// CheckLive refuses an operator's change to group id of q (the placement MoveReplica or
// PinLeader returned) that the live nodes cannot carry out: node (the move's destination
// or the leader asked for) is down, or the group's live voters are not a majority now, or
// would not be at any step of the move (its voters now and the destination, then the
// voters it is steered to). It is separate from MoveReplica and PinLeader because
// liveness is not the placement's: the meta group's state machine must decide the same
// on every replica, so it checks only what the document says.
func CheckLive(q *api.Placement, live []string, id uint64, node string) error {
	gi := slices.IndexFunc(q.Groups, func(g api.Group) bool { return g.ID == id })
	if gi < 0 {
		return broken(ErrUnknownGroup, "no group %d", id)
	}
	if !slices.Contains(live, node) {
		return broken(ErrNodeDown, "node %q does not answer", node)
	}
	v := newView(q, live)
	g := q.Groups[gi]
	now := g.Voters()
	during := now
	if !slices.Contains(now, node) {
		during = append(slices.Clone(now), node)
	}
	for _, set := range [][]string{now, during, pinTarget(g)} {
		if !v.quorateSet(set) {
			return broken(ErrNoQuorum, "group %d: of voters %v only %d are live: no membership change can commit", id, set, v.liveCount(set))
		}
	}
	return nil
}

// Forecast plays the planner forward from p with the live nodes as they are: Plan, every
// step applied as if it succeeded, Plan again, until Plan returns nothing or rounds run
// out. It is what an operator's dry run prints; the controller's real steps may differ
// once nodes come and go, or a step fails and is planned again.
func Forecast(p *api.Placement, live []string, rounds int) ([]Step, error) {
	var all []Step
	for range rounds {
		steps, err := Plan(p, live)
		if err != nil || len(steps) == 0 {
			return all, err
		}
		for _, s := range steps {
			if p, err = Apply(p, s); err != nil {
				return all, err
			}
		}
		all = append(all, steps...)
	}
	return all, nil
}

// pinnable finds data group id in p and checks that nodes are listed and that the voters
// it is steered to are settled; it returns the group's index.
func pinnable(p *api.Placement, id uint64, nodes ...string) (int, error) {
	gi := slices.IndexFunc(p.Groups, func(g api.Group) bool { return g.ID == id })
	if gi < 0 {
		return 0, broken(ErrUnknownGroup, "no group %d", id)
	}
	g := p.Groups[gi]
	if g.Kind != api.GroupData {
		return 0, broken(ErrMetaPin, "group %d is the meta group: its replicas are on every node and the planner places its voters and leader", id)
	}
	if len(g.PinnedReplicas) == 0 {
		// Pinning the voters of a group the planner is moving would pin its source or
		// miss its destination.
		if n := nonvoter(g); n != "" {
			return 0, broken(ErrGroupMoving, "group %d is moving a replica onto %q; ask again once it is done", id, n)
		}
		if r := min(ReplicasPerGroup, activeCount(p)); len(g.Voters()) > r {
			return 0, broken(ErrGroupMoving, "group %d has %d voters and is shedding to %d; ask again once it is done", id, len(g.Voters()), r)
		}
	}
	for _, n := range nodes {
		if !slices.ContainsFunc(p.Nodes, func(m api.PlacementNode) bool { return m.ID == n }) {
			return 0, broken(ErrUnknownNode, "no node %q", n)
		}
	}
	return gi, nil
}

// active refuses a node that is draining as a destination.
func active(p *api.Placement, n string) error {
	i := slices.IndexFunc(p.Nodes, func(m api.PlacementNode) bool { return m.ID == n })
	if p.Nodes[i].State != api.NodeActive {
		return broken(ErrNodeDraining, "node %q is %s: it gets no new replicas or leaderships", n, p.Nodes[i].State)
	}
	return nil
}

// pin returns p with group gi's pins set, its version one higher if they changed.
func pin(p *api.Placement, gi int, replicas []string, leader string) (*api.Placement, error) {
	q := Clone(p)
	g := &q.Groups[gi]
	if slices.Equal(g.PinnedReplicas, replicas) && g.PinnedLeader == leader {
		return q, nil
	}
	g.PinnedReplicas, g.PinnedLeader = slices.Clone(replicas), leader
	q.Version++
	return q, Validate(q)
}

// pinTarget is the voters g is steered to by an operator: its pinned replicas if it has
// a pin, else its voters now. It is a new slice.
func pinTarget(g api.Group) []string {
	if len(g.PinnedReplicas) > 0 {
		return slices.Clone(g.PinnedReplicas)
	}
	return g.Voters()
}

// dropPins removes node from every pin of q: a node leaving the placement takes the
// operator's wishes about it along.
func dropPins(q *api.Placement, node string) {
	for i := range q.Groups {
		g := &q.Groups[i]
		g.PinnedReplicas = slices.DeleteFunc(g.PinnedReplicas, func(n string) bool { return n == node })
		if len(g.PinnedReplicas) == 0 {
			g.PinnedReplicas = nil
		}
		if g.PinnedLeader == node {
			g.PinnedLeader = ""
		}
	}
}

// activeCount is the number of active nodes in p.
func activeCount(p *api.Placement) int {
	c := 0
	for _, n := range p.Nodes {
		if n.State == api.NodeActive {
			c++
		}
	}
	return c
}
