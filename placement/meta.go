package placement

import (
	"cmp"
	"slices"

	"github.com/flashstock/flashstock/api"
)

// metaStep is the next configuration step of the meta group g. Its membership is every
// active node, so unlike a data group's it changes by roles, one step at a time, in this
// order:
//
//  1. An active node that does not host g gets a nonvoter, so that it reads the placement
//     before it hosts anything else (Plan holds a data group's move onto it back until
//     then). Nonvoters cost no quorum, so this never waits for a voter change.
//  2. With fewer voters than it should have, or a voter on a node that should not vote,
//     g promotes the good nonvoter it wants: the voters grow before they shrink, so a
//     replaced voter is never missed (m+1 voters for one step).
//  3. With more voters than it should have, g demotes one it does not want (handing its
//     leadership away first): a dead node's first, then a draining node's.
//  4. A draining node that hosts no data replica any more leaves g, last of all its
//     groups; RemoveNode then forgets it.
func (v *view) metaStep(g api.Group) (Step, bool) {
	step := func(k StepKind, n string) (Step, bool) { return Step{Group: g.ID, Kind: k, Node: n}, true }
	for _, n := range v.p.Nodes {
		if n.State == api.NodeActive && g.RoleOf(n.ID) == "" {
			return step(AddNonvoter, n.ID)
		}
	}
	vs := g.Voters()
	want := v.metaVoters(g)
	if len(vs) <= v.m {
		for _, n := range want {
			if g.RoleOf(n) == api.Nonvoter {
				return step(Promote, n)
			}
		}
	}
	if len(vs) > v.m {
		return v.shrink(g, vs, want, Demote)
	}
	for _, r := range g.Replicas {
		if r.Role == api.Nonvoter && !v.active(r.Node) && !v.hostsData(r.Node) {
			return step(Remove, r.Node)
		}
	}
	return Step{}, false
}

// metaVoters is the meta group's voters to be, v.m of them as far as the nodes allow,
// best first: its good voters (its preferred leader first, so that shrinking needs no
// transfer), then its good nonvoters, then its voters on nodes that are not good (a dead
// or draining voter keeps its vote while no good node can take it: the group never drops
// below its count to shed it), live ones before dead ones. Among good nodes the lighter
// go first (metaLighter), so that meta votes and data leaderships spread over different
// nodes rather than piling onto the lowest ids.
func (v *view) metaVoters(g api.Group) []string {
	rank := func(n string) int {
		switch {
		case v.good[n] && n == g.PreferredLeader:
			return 0
		case v.good[n] && g.RoleOf(n) == api.Voter:
			return 1
		case v.good[n]:
			return 2
		case v.live[n]:
			return 3
		}
		return 4
	}
	var cands []string
	for _, r := range g.Replicas {
		if v.good[r.Node] || r.Role == api.Voter {
			cands = append(cands, r.Node)
		}
	}
	load := v.dataLoad()
	slices.SortFunc(cands, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), load.compare(a, b))
	})
	return cands[:min(v.m, len(cands))]
}

// dataLoads counts, per node, the data groups it prefers to lead and those it votes in.
type dataLoads struct{ leads, votes map[string]int }

// dataLoad is the data groups' load on each node now.
func (v *view) dataLoad() dataLoads {
	l := dataLoads{leads: map[string]int{}, votes: map[string]int{}}
	for _, g := range v.p.Groups {
		if g.Kind != api.GroupData {
			continue
		}
		l.leads[g.PreferredLeader]++
		for _, n := range g.Voters() {
			l.votes[n]++
		}
	}
	return l
}

// compare orders the lighter node first: fewer data leaderships (a leader does a group's
// work: the meta leader, among the meta voters, runs the controller too), then fewer data
// votes, then the lower id.
func (l dataLoads) compare(a, b string) int {
	return cmp.Or(cmp.Compare(l.leads[a], l.leads[b]), cmp.Compare(l.votes[a], l.votes[b]), cmp.Compare(a, b))
}

// active reports whether node n is listed and active.
func (v *view) active(n string) bool {
	return slices.ContainsFunc(v.p.Nodes, func(m api.PlacementNode) bool { return m.ID == n && m.State == api.NodeActive })
}

// hostsData reports whether node n hosts a replica of any data group.
func (v *view) hostsData(n string) bool {
	return slices.ContainsFunc(v.p.Groups, func(g api.Group) bool { return g.Kind == api.GroupData && g.RoleOf(n) != "" })
}

// hostsMeta reports whether node n hosts a replica of the meta group: a data group waits
// for it before moving a replica onto n.
func (v *view) hostsMeta(n string) bool {
	return slices.ContainsFunc(v.p.Groups, func(g api.Group) bool { return g.Kind == api.GroupMeta && g.RoleOf(n) != "" })
}
