package clustertest

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/proc"
)

// Layout is a multi-group cluster as its members report it: the placement (which nodes
// host a replica of which group, and which slots each data group owns) and the leader of
// each group.
type Layout struct {
	Version uint64
	Groups  []api.Group // the meta group first, then data groups by id; Leader filled in
	// Leftover lists, by member, the replicas it still runs that the placement no longer
	// puts on it (a replica moved away: stockd does not delete those yet). They follow,
	// never lead, and the checks read only placed replicas.
	Leftover map[string][]uint64
}

// Data is the layout's data groups, by id.
func (l Layout) Data() []api.Group {
	return slices.DeleteFunc(slices.Clone(l.Groups), func(g api.Group) bool { return g.Kind != api.GroupData })
}

// Group is group id of the layout, or nil.
func (l Layout) Group(id uint64) *api.Group {
	for i := range l.Groups {
		if l.Groups[i].ID == id {
			return &l.Groups[i]
		}
	}
	return nil
}

// GroupOf is the data group that owns sku's slot.
func (l Layout) GroupOf(sku string) uint64 {
	p := api.Placement{Groups: l.Groups}
	if g := p.GroupOf(sku); g != nil {
		return g.ID
	}
	return 0
}

// Hosts lists the nodes holding a replica of group id, voters and nonvoters.
func (l Layout) Hosts(id uint64) []string {
	var out []string
	if g := l.Group(id); g != nil {
		for _, r := range g.Replicas {
			out = append(out, r.Node)
		}
	}
	slices.Sort(out)
	return out
}

// Leaders maps each data group to its leader ("" when none is known).
func (l Layout) Leaders() map[uint64]string {
	out := map[uint64]string{}
	for _, g := range l.Data() {
		out[g.ID] = g.Leader
	}
	return out
}

// LeadCounts is how many data groups each of ids leads.
func (l Layout) LeadCounts(ids []string) map[string]int {
	out := map[string]int{}
	for _, id := range ids {
		out[id] = 0
	}
	for _, g := range l.Data() {
		if g.Leader != "" {
			out[g.Leader]++
		}
	}
	return out
}

// TopLeader is the member of ids leading the most data groups (the lowest id on a tie, so
// a seed replays the same choice when the leaders are the same).
func (l Layout) TopLeader(ids []string) string {
	counts := l.LeadCounts(ids)
	best := ""
	for _, id := range slices.Sorted(maps.Keys(counts)) {
		if best == "" || counts[id] > counts[best] {
			best = id
		}
	}
	return best
}

// String shows each group's leader and replicas, as the timeline and the log print them:
// "g1 n2 [n1 n2 n3]"; a nonvoter is marked with "~", the meta group is g0.
func (l Layout) String() string {
	var parts []string
	for _, g := range l.Groups {
		var reps []string
		for _, r := range g.Replicas {
			if r.Role == api.Nonvoter {
				reps = append(reps, "~"+r.Node)
			} else {
				reps = append(reps, r.Node)
			}
		}
		slices.Sort(reps)
		leader := g.Leader
		if leader == "" {
			leader = "-"
		}
		parts = append(parts, fmt.Sprintf("g%d %s [%s]", g.ID, leader, strings.Join(reps, " ")))
	}
	out := fmt.Sprintf("v%d: %s", l.Version, strings.Join(parts, ", "))
	if len(l.Leftover) > 0 {
		out += fmt.Sprintf("; leftover replicas %v", l.Leftover)
	}
	return out
}

// Self reads m's own report, GET /v1/cluster/self: its role in each group it hosts.
func (c *Cluster) Self(ctx context.Context, m *Member) (api.Node, error) {
	var n api.Node
	err := c.getJSON(ctx, m.HTTPAddr, "/v1/cluster/self", &n)
	return n, err
}

// GroupState reads m's replica of data group g (GET /v1/debug/state?group=g). An answer
// about another group (a build without the parameter ignores it) is an error, not a
// state to compare.
func (c *Cluster) GroupState(ctx context.Context, m *Member, g uint64) (api.DebugState, error) {
	var s api.DebugState
	if err := c.getJSON(ctx, m.HTTPAddr, fmt.Sprintf("/v1/debug/state?group=%d", g), &s); err != nil {
		return s, err
	}
	if s.Group != g {
		return s, fmt.Errorf("%s answered about group %d when asked for group %d", m.ID, s.Group, g)
	}
	return s, nil
}

// Settled reads the layout once and says why it is not yet the settled layout of a
// cluster of exactly ids with dataGroups data groups: every member on the same placement
// version, listing exactly ids; nothing left for the placement controller to move, as
// placement's own planner judges it (proc.PlacementSettled: the meta group on every node,
// each data group at its voter count, no nonvoter left); every member hosting the replicas placed on it, none
// failed (one it hosts beyond those is a Leftover); and each group with exactly one
// replica that says it leads, the others following. Leaders need not be the preferred
// ones.
func (c *Cluster) Settled(ctx context.Context, ids []string, dataGroups int) (Layout, string) {
	var lay Layout
	var first string
	for _, id := range ids {
		v, err := c.View(ctx, c.Member(id))
		if err != nil {
			return lay, fmt.Sprintf("%s: %v", id, err)
		}
		if v.PlacementVersion == 0 {
			return lay, fmt.Sprintf("%s has no placement yet", id)
		}
		if first == "" {
			p, _, err := proc.PlacementSettled(&v)
			if err != nil {
				return lay, fmt.Sprintf("%s: %v", id, err)
			}
			var nodes []string
			for _, n := range p.Nodes {
				nodes = append(nodes, n.ID)
			}
			if want := slices.Sorted(slices.Values(ids)); !slices.Equal(slices.Sorted(slices.Values(nodes)), want) {
				return lay, fmt.Sprintf("%s places the nodes %v, want %v", id, nodes, want)
			}
			first, lay.Version, lay.Groups = id, v.PlacementVersion, v.Groups
		} else if v.PlacementVersion != lay.Version {
			return lay, fmt.Sprintf("%s is at placement version %d, %s at %d", id, v.PlacementVersion, first, lay.Version)
		}
	}
	for i := range lay.Groups {
		lay.Groups[i].Leader = "" // filled from the members' own reports below
	}
	slices.SortFunc(lay.Groups, func(a, b api.Group) int { return cmp.Compare(a.ID, b.ID) })
	if len(lay.Data()) != dataGroups || lay.Group(api.MetaGroupID) == nil {
		return lay, fmt.Sprintf("placement v%d has %d data groups and meta %v, want %d and a meta group", lay.Version, len(lay.Data()), lay.Group(api.MetaGroupID) != nil, dataGroups)
	}
	placed := map[string][]uint64{}
	for _, g := range lay.Groups {
		for _, r := range g.Replicas {
			if !slices.Contains(ids, r.Node) {
				return lay, fmt.Sprintf("group %d has a replica on %s, not a member", g.ID, r.Node)
			}
			placed[r.Node] = append(placed[r.Node], g.ID)
		}
	}
	for _, id := range ids {
		self, err := c.Self(ctx, c.Member(id))
		if err != nil {
			return lay, fmt.Sprintf("%s: %v", id, err)
		}
		var hosted []uint64
		for _, ng := range self.Groups {
			hosted = append(hosted, ng.ID)
			if ng.Failed != "" {
				return lay, fmt.Sprintf("%s's replica of group %d failed: %s", id, ng.ID, ng.Failed)
			}
			g := lay.Group(ng.ID)
			switch {
			case g == nil:
				return lay, fmt.Sprintf("%s hosts group %d, which the placement does not have", id, ng.ID)
			case ng.Role == api.RoleLeader && !slices.Contains(placed[id], ng.ID):
				return lay, fmt.Sprintf("%s leads group %d, which the placement does not put on it", id, ng.ID)
			case ng.Role == api.RoleLeader && g.Leader != "":
				return lay, fmt.Sprintf("group %d: both %s and %s say they lead", ng.ID, g.Leader, id)
			case ng.Role == api.RoleLeader:
				g.Leader = id
			case ng.Role != api.RoleFollower:
				return lay, fmt.Sprintf("%s's replica of group %d is %q", id, ng.ID, ng.Role)
			}
		}
		for _, g := range placed[id] {
			if !slices.Contains(hosted, g) {
				return lay, fmt.Sprintf("%s hosts groups %v, the placement puts %v on it", id, hosted, placed[id])
			}
		}
		for _, g := range hosted {
			if !slices.Contains(placed[id], g) {
				if lay.Leftover == nil {
					lay.Leftover = map[string][]uint64{}
				}
				lay.Leftover[id] = append(lay.Leftover[id], g)
			}
		}
	}
	for _, g := range lay.Groups {
		if g.Leader == "" {
			return lay, fmt.Sprintf("group %d has no leader", g.ID)
		}
	}
	return lay, ""
}

// WaitSettled polls Settled until the layout settles or ctx ends.
func (c *Cluster) WaitSettled(ctx context.Context, ids []string, dataGroups int) (Layout, error) {
	for {
		lay, why := c.Settled(ctx, ids, dataGroups)
		if why == "" {
			return lay, nil
		}
		// /v1/cluster asks every member for its report: a slower poll than the
		// single-group wait, so the cluster spends its two cores on settling.
		if err := pause(ctx, 200*time.Millisecond); err != nil {
			return lay, fmt.Errorf("the %d-node, %d-group layout did not settle: %s", len(ids), dataGroups, why)
		}
	}
}

// GroupLeaders is who leads each group as the running members say: the one member
// claiming each group's leadership, "" for a group none or several claim (an election, or
// a deposed leader not yet told).
func (c *Cluster) GroupLeaders(ctx context.Context) map[uint64]string {
	claims := map[uint64][]string{}
	for _, m := range c.Running() {
		self, err := c.Self(ctx, m)
		if err != nil {
			continue
		}
		for _, ng := range self.Groups {
			if _, ok := claims[ng.ID]; !ok {
				claims[ng.ID] = nil
			}
			if ng.Role == api.RoleLeader && ng.Failed == "" {
				claims[ng.ID] = append(claims[ng.ID], m.ID)
			}
		}
	}
	out := map[uint64]string{}
	for id, ms := range claims {
		out[id] = ""
		if len(ms) == 1 {
			out[id] = ms[0]
		}
	}
	return out
}

// spreadProblem says why lay's leaderships are not spread over ids: preferred leaders
// (every group's, the meta group's included) more than one apart between two members, or
// a group not led by its preferred leader.
func spreadProblem(lay Layout, ids []string) string {
	preferred := map[string]int{}
	for _, id := range ids {
		preferred[id] = 0
	}
	for _, g := range lay.Groups {
		preferred[g.PreferredLeader]++
		if g.Leader != g.PreferredLeader {
			return fmt.Sprintf("group %d led by %q, preferred %q", g.ID, g.Leader, g.PreferredLeader)
		}
	}
	lo, hi := len(lay.Groups), 0
	for _, id := range ids {
		lo, hi = min(lo, preferred[id]), max(hi, preferred[id])
	}
	if hi-lo > 1 {
		return fmt.Sprintf("preferred leaderships per node %v", preferred)
	}
	return ""
}

// skusPerGroup names perGroup SKUs for each data group of the layout, the first ones of
// "mg-000", "mg-001", ... that each group owns: the names are fixed by the placement, so
// a seed replays the same workload on a cluster bootstrapped alike.
func skusPerGroup(lay Layout, perGroup int) ([]string, error) {
	data := lay.Data()
	need := map[uint64]int{}
	for _, g := range data {
		need[g.ID] = perGroup
	}
	var out []string
	for i, left := 0, perGroup*len(data); left > 0; i++ {
		if i == 100_000 {
			return nil, fmt.Errorf("placement %s: no %d SKUs per group among the first 100000 names", lay, perGroup)
		}
		sku := fmt.Sprintf("mg-%03d", i)
		if g := lay.GroupOf(sku); need[g] > 0 {
			need[g]--
			left--
			out = append(out, sku)
		}
	}
	return out, nil
}
