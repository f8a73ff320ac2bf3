package placement

import (
	"github.com/flashstock/flashstock/api"
)

// Validate checks every rule of a placement document and returns the first one broken,
// as an *Error. It reads nothing but p, so a node can check a placement before proposing
// it and the meta group's fsm can check whatever reached its log with the same code. The
// Leader fields are live state and are not checked.
func Validate(p *api.Placement) error {
	if p.Version == 0 {
		return broken(ErrVersion, "version 0: the first placement is version 1")
	}
	if p.SlotCount != api.SlotCount {
		return broken(ErrSlotCount, "slot_count %d, this build routes by %d slots", p.SlotCount, api.SlotCount)
	}
	nodes, err := validateNodes(p.Nodes)
	if err != nil {
		return err
	}
	var owner [api.SlotCount]int // 1 + index of the owning group, 0 if none
	groups := make(map[uint64]bool, len(p.Groups))
	metas, datas := 0, 0
	for gi, g := range p.Groups {
		if groups[g.ID] {
			return broken(ErrGroupTwice, "group %d is listed twice", g.ID)
		}
		groups[g.ID] = true
		switch {
		case g.Kind == api.GroupMeta && g.ID == api.MetaGroupID:
			metas++
		case g.Kind == api.GroupData && g.ID != api.MetaGroupID:
			datas++
		default:
			return broken(ErrGroupKind, "group %d has kind %q", g.ID, g.Kind)
		}
		if err := validateReplicas(g, nodes); err != nil {
			return err
		}
		if g.Kind == api.GroupMeta && len(g.Slots) > 0 {
			return broken(ErrMetaSlots, "the meta group owns slots")
		}
		for _, r := range g.Slots {
			if r.From < 0 || r.From >= r.To || r.To > api.SlotCount {
				return broken(ErrSlotRange, "group %d owns [%d, %d)", g.ID, r.From, r.To)
			}
			for s := r.From; s < r.To; s++ {
				if owner[s] != 0 {
					return broken(ErrSlotOwnedTwice, "slot %d is owned by groups %d and %d", s, p.Groups[owner[s]-1].ID, g.ID)
				}
				owner[s] = gi + 1
			}
		}
	}
	if metas != 1 {
		return broken(ErrMetaGroup, "%d meta groups, want 1", metas)
	}
	if datas == 0 {
		return broken(ErrNoDataGroup, "no data group")
	}
	for s, o := range owner {
		if o == 0 {
			return broken(ErrSlotUnowned, "slot %d has no group", s)
		}
	}
	return nil
}

// validateNodes checks the rules of the node list and returns the set of node ids.
func validateNodes(ns []api.PlacementNode) (map[string]bool, error) {
	nodes := make(map[string]bool, len(ns))
	for _, n := range ns {
		switch {
		case n.ID == "":
			return nil, broken(ErrNodeID, "a node without an id")
		case n.RaftAddr == "" || n.HTTPAddr == "":
			return nil, broken(ErrNodeAddr, "node %q lacks its raft or HTTP address", n.ID)
		case n.State != api.NodeActive && n.State != api.NodeDraining:
			return nil, broken(ErrNodeState, "node %q has state %q", n.ID, n.State)
		case nodes[n.ID]:
			return nil, broken(ErrNodeTwice, "node %q is listed twice", n.ID)
		}
		nodes[n.ID] = true
	}
	return nodes, nil
}

func validateReplicas(g api.Group, nodes map[string]bool) error {
	seen := make(map[string]bool, len(g.Replicas))
	voters, nonvoters := 0, 0
	for _, r := range g.Replicas {
		switch {
		case !nodes[r.Node]:
			return broken(ErrReplicaNode, "group %d has a replica on unknown node %q", g.ID, r.Node)
		case seen[r.Node]:
			return broken(ErrReplicaTwice, "group %d has node %q twice", g.ID, r.Node)
		case r.Role == api.Voter:
			voters++
		case r.Role == api.Nonvoter:
			nonvoters++
		default:
			return broken(ErrReplicaRole, "group %d: replica %q has role %q", g.ID, r.Node, r.Role)
		}
		seen[r.Node] = true
	}
	if voters == 0 {
		return broken(ErrNoVoter, "group %d has no voter", g.ID)
	}
	// A data group's nonvoter is the destination of its one move in progress. The meta
	// group has a nonvoter on every node that does not vote, and moves a vote by promoting
	// one before it demotes another, so it has one voter beyond its count at most.
	if g.Kind == api.GroupData && nonvoters > 1 {
		return broken(ErrTwoMoves, "group %d has %d nonvoters: one replica moves at a time", g.ID, nonvoters)
	}
	if g.Kind == api.GroupMeta && voters > MetaVoters+1 {
		return broken(ErrMetaVoters, "the meta group has %d voters, at most %d", voters, MetaVoters+1)
	}
	if err := validatePins(g, nodes); err != nil {
		return err
	}
	if g.RoleOf(g.PreferredLeader) != api.Voter {
		return broken(ErrPreferred, "group %d prefers %q, not one of its voters", g.ID, g.PreferredLeader)
	}
	return nil
}

// validatePins checks an operator's pins on g: only a data group has them, they name
// listed nodes once each, and a pinned leader is one of the pinned replicas (PinLeader
// pins both). A pinned node need not host a replica yet: the pin is where the planner
// steers the group.
func validatePins(g api.Group, nodes map[string]bool) error {
	if len(g.PinnedReplicas) == 0 && g.PinnedLeader == "" {
		return nil
	}
	if g.Kind != api.GroupData {
		return broken(ErrPin, "group %d is the meta group and has pins", g.ID)
	}
	seen := make(map[string]bool, len(g.PinnedReplicas))
	for _, n := range g.PinnedReplicas {
		if !nodes[n] || seen[n] {
			return broken(ErrPin, "group %d pins %q, unknown or twice", g.ID, n)
		}
		seen[n] = true
	}
	if g.PinnedLeader != "" && !seen[g.PinnedLeader] {
		return broken(ErrPin, "group %d pins its leader to %q, not one of its pinned replicas %v", g.ID, g.PinnedLeader, g.PinnedReplicas)
	}
	return nil
}
