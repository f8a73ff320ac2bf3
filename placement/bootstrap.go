package placement

import (
	"slices"
	"strings"

	"github.com/flashstock/flashstock/api"
)

// Bootstrap returns the first placement (version 1) of a cluster of nodes with dataGroups
// data groups and the meta group: data group i (from 1) owns the i-th of dataGroups
// contiguous, even ranges of slots, and every group's replicas and preferred leader are
// placed as Plan would place them, so a new cluster starts balanced: the meta group on
// every node, voting on the lightest of them.
func Bootstrap(nodes []api.PlacementNode, dataGroups int) (*api.Placement, error) {
	if len(nodes) == 0 {
		return nil, broken(ErrBootstrap, "no nodes")
	}
	if dataGroups < 1 || dataGroups > api.SlotCount {
		return nil, broken(ErrBootstrap, "%d data groups, want 1..%d", dataGroups, api.SlotCount)
	}
	p := &api.Placement{Version: 1, SlotCount: api.SlotCount, Nodes: slices.Clone(nodes)}
	live := make([]string, len(nodes))
	for i := range p.Nodes {
		p.Nodes[i].State = api.NodeActive
		live[i] = p.Nodes[i].ID
	}
	slices.SortFunc(p.Nodes, func(a, b api.PlacementNode) int { return strings.Compare(a.ID, b.ID) })
	// The planner assumes a valid node list (one id, one node): check it before placing.
	if _, err := validateNodes(p.Nodes); err != nil {
		return nil, err
	}
	p.Groups = append(p.Groups, api.Group{ID: api.MetaGroupID, Kind: api.GroupMeta})
	for i := range dataGroups {
		p.Groups = append(p.Groups, api.Group{
			ID:    uint64(i + 1),
			Kind:  api.GroupData,
			Slots: []api.SlotRange{{From: i * api.SlotCount / dataGroups, To: (i + 1) * api.SlotCount / dataGroups}},
		})
	}
	v := newView(p, live)
	for gi, want := range v.targets() {
		for _, n := range want {
			p.Groups[gi].Replicas = append(p.Groups[gi].Replicas, api.Replica{Node: n, Role: api.Voter})
		}
	}
	lead := func() {
		for _, s := range v.leaderSteps() {
			p.Groups[s.Group].PreferredLeader = s.Node // group ids are their indexes here
		}
	}
	// The data groups' leaders first (the meta group, with no voter yet, is skipped), so
	// that the meta group votes on the nodes that lead the fewest data groups; then its
	// leader among those, the other leaders kept where they are as far as balance allows.
	lead()
	meta := &p.Groups[0]
	for _, n := range p.Nodes {
		meta.Replicas = append(meta.Replicas, api.Replica{Node: n.ID, Role: api.Nonvoter})
	}
	for _, n := range v.metaVoters(*meta) {
		meta.Replicas[slices.IndexFunc(meta.Replicas, func(r api.Replica) bool { return r.Node == n })].Role = api.Voter
	}
	lead()
	if err := Validate(p); err != nil {
		return nil, err
	}
	return p, nil
}
