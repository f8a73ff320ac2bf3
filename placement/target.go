package placement

import (
	"slices"

	"github.com/flashstock/flashstock/api"
)

// ReplicasPerGroup is the number of voters every group is steered to when that many
// nodes can host one: three survive the loss of any one node.
const ReplicasPerGroup = 3

// MetaVoters is the most voters the meta group is steered to. Every node hosts the meta
// group, but each voter slows its commits (a quorum of more acknowledgements) and adds
// nothing once the group survives two failures; the other nodes are nonvoters.
const MetaVoters = 5

// metaVoterCount is the number of voters the meta group should have with active nodes:
// min(MetaVoters, active) rounded down to odd, so 1, 1, 3, 3, 5, 5... An even count
// survives no more failures than the odd count below it (4 voters need 3, and lose
// quorum on the second failure, as 3 do) and needs one more acknowledgement per commit;
// with two nodes, one voter stops on the loss of one node, two voters on the loss of
// either.
func metaVoterCount(active int) int {
	m := min(MetaVoters, active)
	if m > 0 && m%2 == 0 {
		m--
	}
	return m
}

// view is a placement read against the set of live nodes: which nodes may host replicas
// (good: active and live) and how many voters each group should have.
type view struct {
	p    *api.Placement
	live map[string]bool
	good map[string]bool
	// goods lists the good nodes by id: every choice among nodes breaks ties by id.
	goods []string
	// r is the number of voters a group should have: min(3, active nodes), live or not. A
	// node that is down is not a reason to shrink a group, only to move its replica when
	// there is a good node to move it to: with fewer good nodes than r, a group keeps its
	// replica on the dead node, which catches up by itself when the node returns. To give
	// up on a node, drain it.
	r int
	// m is the number of voters the meta group should have: metaVoterCount(active), and
	// like r counted over active nodes, live or not.
	m int
}

func newView(p *api.Placement, live []string) *view {
	v := &view{p: p, live: make(map[string]bool, len(live)), good: make(map[string]bool, len(live))}
	for _, id := range live {
		v.live[id] = true
	}
	for _, n := range p.Nodes {
		if n.State == api.NodeActive && v.live[n.ID] {
			v.good[n.ID] = true
			v.goods = append(v.goods, n.ID)
		}
	}
	slices.Sort(v.goods)
	active := activeCount(p)
	v.r = min(ReplicasPerGroup, active)
	v.m = metaVoterCount(active)
	return v
}

// targets returns, for each data group (by index in p.Groups; nil for the meta group,
// which metaStep places), the good nodes it should end with: r of them (all the good
// nodes if there are fewer), replica counts per good node within one of each other, and
// as few replicas moved as that allows. A move in progress (a good nonvoter) is kept, so the
// target of the next round agrees with the step already taken; its source, still
// counted, is among the replicas the group sheds. A group an operator pinned ends on its
// good pinned nodes, topped up like any group if some are not good, and is never chosen
// to even the others out: they are balanced around it.
func (v *view) targets() [][]string {
	load := make(map[string]int, len(v.goods))
	sets := make([][]string, len(v.p.Groups))
	incoming := make([]string, len(v.p.Groups))
	fixed := make([]bool, len(v.p.Groups))
	for gi, g := range v.p.Groups {
		if g.Kind == api.GroupMeta {
			continue
		}
		if len(g.PinnedReplicas) > 0 {
			fixed[gi] = true
			for _, n := range g.PinnedReplicas {
				if v.good[n] {
					sets[gi] = append(sets[gi], n)
					load[n]++
				}
			}
			continue
		}
		for _, r := range g.Replicas {
			if v.good[r.Node] {
				sets[gi] = append(sets[gi], r.Node)
				load[r.Node]++
			}
		}
		if n := nonvoter(g); v.good[n] {
			incoming[gi] = n
		}
	}
	// Too many: a finished move's source, or fewer good nodes than before. Each group
	// sheds one replica at a time from the most loaded nodes: spread, which weighs every
	// group's choice against the others', so that the sources of the moves in progress are
	// shed whatever order they were started in.
	for {
		shed := make([][]string, len(sets))
		more := false
		for gi, s := range sets {
			if len(s) > v.r {
				shed[gi] = v.sheddable(gi, s, incoming[gi])
				more = true
			}
		}
		if !more {
			break
		}
		base := make(map[string]int, len(load))
		for n, l := range load {
			base[n] = -l
		}
		for gi, n := range spread(v.goods, shed, make([]string, len(sets)), base) {
			if n != "" {
				sets[gi] = slices.DeleteFunc(sets[gi], func(m string) bool { return m == n })
				load[n]--
			}
		}
	}
	// Too few: a new group, a replica lost to a draining or dead node, or more good nodes
	// than before. Each group takes one good node it lacks at a time, the least loaded
	// ones: spread again, so that one group's choice does not leave another only loaded
	// nodes to choose from.
	for {
		lacking := make([][]string, len(sets))
		more := false
		for gi, s := range sets {
			if len(s) < min(v.r, len(v.goods)) && v.p.Groups[gi].Kind == api.GroupData {
				for _, n := range v.goods {
					if !slices.Contains(s, n) {
						lacking[gi] = append(lacking[gi], n)
					}
				}
				more = true
			}
		}
		if !more {
			break
		}
		for gi, n := range spread(v.goods, lacking, make([]string, len(sets)), load) {
			if n != "" {
				sets[gi] = append(sets[gi], n)
				load[n]++
			}
		}
	}
	// Even out: while the most loaded good node has two more replicas than the least
	// loaded, move one of the first's replicas to the second. At least two groups hold
	// the first and not the second, so a candidate exists unless each is a move in
	// progress (then the next round, with the moves done, goes on) or pinned (then the
	// pins are what keeps the loads apart). Each move lowers the sum of squared loads, so
	// the loop ends.
	for len(v.goods) > 0 {
		hi, lo := v.goods[0], v.goods[0]
		for _, n := range v.goods {
			if load[n] > load[hi] {
				hi = n
			}
			if load[n] < load[lo] {
				lo = n
			}
		}
		if load[hi]-load[lo] <= 1 {
			break
		}
		gi := v.groupToMove(sets, incoming, fixed, hi, lo)
		if gi < 0 {
			break
		}
		i := slices.Index(sets[gi], hi)
		sets[gi][i] = lo
		load[hi]--
		load[lo]++
	}
	for _, s := range sets {
		slices.Sort(s)
	}
	return sets
}

// sheddable lists the replicas group gi may shed from set, in order of preference: never
// the destination of its move in progress, its preferred leader last (shedding it costs a
// leadership transfer), then by id.
func (v *view) sheddable(gi int, set []string, incoming string) []string {
	leader := v.p.Groups[gi].PreferredLeader
	var c []string
	for _, n := range set {
		if n != incoming && n != leader {
			c = append(c, n)
		}
	}
	slices.Sort(c)
	if slices.Contains(set, leader) && leader != incoming {
		c = append(c, leader)
	}
	return c
}

// groupToMove picks the group that gives a replica from node hi to node lo: one that has
// hi and not lo, is not moving hi in and is not pinned; among those, first one that has a
// replica on lo now (the move only undoes a trim: nothing moves), then one hi does not
// lead (no leadership transfer needed), then the lowest index.
func (v *view) groupToMove(sets [][]string, incoming []string, fixed []bool, hi, lo string) int {
	best, bestRank := -1, 0
	for gi, s := range sets {
		if fixed[gi] || !slices.Contains(s, hi) || slices.Contains(s, lo) || incoming[gi] == hi {
			continue
		}
		g := v.p.Groups[gi]
		rank := 1
		switch {
		case g.RoleOf(lo) != "":
			rank = 3
		case g.PreferredLeader != hi:
			rank = 2
		}
		if rank > bestRank {
			best, bestRank = gi, rank
		}
	}
	return best
}
