package placement

import (
	"slices"

	"github.com/flashstock/flashstock/api"
)

// Plan returns the next steps from p toward the placement the live nodes call for: every
// data group with min(3, active nodes) voters, on good nodes (active and live) as far as
// there are enough of them, replica counts per good node within one of each other; the
// meta group on every active node, with min(5, active nodes) voters rounded down to odd
// (metaStep); then preferred leaders spread the same way over the good nodes. A data
// group's move onto a node waits until the node hosts the meta group. It
// returns at most one step per group, for the groups that have something to do, in group
// order; the caller may perform them in any order or concurrently, record each with
// Apply, and plan again. No steps: p is where it should be.
//
// Plan is a pure function of its arguments: the same placement and live set give the same
// steps, every tie broken by node id, then group order. It moves leadership only once no
// replica has to move, so that no transfer is undone by a move that follows it.
//
// A group whose live voters are not a majority is left alone: no configuration change
// can commit in it until its nodes come back.
func Plan(p *api.Placement, live []string) ([]Step, error) {
	if err := Validate(p); err != nil {
		return nil, err
	}
	v := newView(p, live)
	if v.r == 0 {
		return nil, nil
	}
	want := v.targets()
	var steps []Step
	for gi, g := range p.Groups {
		if !v.quorate(g) {
			continue
		}
		var s Step
		var ok bool
		if g.Kind == api.GroupMeta {
			s, ok = v.metaStep(g)
		} else {
			s, ok = v.memberStep(g, want[gi])
			// A node learns which groups it hosts from the meta group: it must read the
			// placement before it is given data.
			ok = ok && (s.Kind != AddNonvoter || v.hostsMeta(s.Node))
		}
		if ok {
			steps = append(steps, s)
		}
	}
	if len(steps) > 0 {
		return steps, nil
	}
	return v.leaderSteps(), nil
}

// memberStep is the next configuration step of g toward the voters want: finish the move
// in progress, else remove a voter beyond the count, else start a move onto a node g
// lacks.
func (v *view) memberStep(g api.Group, want []string) (Step, bool) {
	step := func(k StepKind, n string) (Step, bool) { return Step{Group: g.ID, Kind: k, Node: n}, true }
	if n := nonvoter(g); n != "" {
		if v.good[n] && slices.Contains(want, n) {
			return step(Promote, n)
		}
		// Its destination is going away, or an operator pinned the group elsewhere since
		// the move began: abandon the move.
		return step(Remove, n)
	}
	vs := g.Voters()
	if len(vs) > v.r {
		return v.shrink(g, vs, want, Remove)
	}
	for _, n := range want {
		if !slices.Contains(vs, n) {
			return step(AddNonvoter, n)
		}
	}
	return Step{}, false
}

// victim picks the voter to remove among those not wanted: a dead node's first, then a
// draining node's, then the lowest id.
func (v *view) victim(vs, want []string) string {
	rank := func(n string) int {
		switch {
		case !v.live[n]:
			return 0
		case !v.good[n]:
			return 1
		}
		return 2
	}
	var victim string
	for _, n := range vs {
		if slices.Contains(want, n) {
			continue
		}
		if victim == "" || rank(n) < rank(victim) || rank(n) == rank(victim) && n < victim {
			victim = n
		}
	}
	return victim
}

// successor is the voter that takes over g's leadership from leaving: the leader an
// operator pinned, else its live leader, else its preferred leader, each if it stays and
// is good; else the
// good voter that is preferred leader of the fewest groups, else any live voter; "" if
// no other voter is live.
func (v *view) successor(g api.Group, leaving string) string {
	var cands []string
	for _, n := range g.Voters() {
		if n != leaving && v.live[n] {
			cands = append(cands, n)
		}
	}
	for _, n := range []string{g.PinnedLeader, g.Leader, g.PreferredLeader} {
		if n != "" && slices.Contains(cands, n) && v.good[n] {
			return n
		}
	}
	leads := make(map[string]int)
	for _, h := range v.p.Groups {
		leads[h.PreferredLeader]++
	}
	best := ""
	for _, n := range cands {
		better := v.good[n] && !v.good[best] ||
			v.good[n] == v.good[best] && (leads[n] < leads[best] || leads[n] == leads[best] && n < best)
		if best == "" || better {
			best = n
		}
	}
	return best
}

// quorate reports whether a majority of g's voters is live.
func (v *view) quorate(g api.Group) bool { return v.quorateSet(g.Voters()) }

// quorateSet reports whether a majority of the voters vs is live.
func (v *view) quorateSet(vs []string) bool { return 2*v.liveCount(vs) > len(vs) }

// liveCount is how many of nodes are live.
func (v *view) liveCount(nodes []string) int {
	up := 0
	for _, n := range nodes {
		if v.live[n] {
			up++
		}
	}
	return up
}

// shrink is the next step of group g with a voter too many (vs, steered to want): take
// kind (Remove; in the meta group, Demote) on the voter that can best be spared, unless it
// leads or is to lead, which first hands the leadership to its successor; nothing while
// there is none.
func (v *view) shrink(g api.Group, vs, want []string, kind StepKind) (Step, bool) {
	victim := v.victim(vs, want)
	if victim != g.Leader && victim != g.PreferredLeader {
		return Step{Group: g.ID, Kind: kind, Node: victim}, true
	}
	if next := v.successor(g, victim); next != "" {
		return Step{Group: g.ID, Kind: TransferLeader, Node: next}, true
	}
	return Step{}, false
}
