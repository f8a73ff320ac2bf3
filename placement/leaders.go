package placement

import (
	"slices"

	"github.com/flashstock/flashstock/api"
)

// leaderSteps moves preferred leaderships so that they are even over the good nodes,
// each group's among its good voters (sorted by id: Group.Voters keeps the replicas' order,
// which Apply keeps sorted); a group whose leader an operator pinned to a good voter has
// that one candidate, and the others are spread around it.
func (v *view) leaderSteps() []Step {
	candidates := make([][]string, len(v.p.Groups))
	start := make([]string, len(v.p.Groups))
	for gi, g := range v.p.Groups {
		if !v.quorate(g) {
			continue // no leader to move
		}
		for _, n := range g.Voters() {
			if v.good[n] {
				candidates[gi] = append(candidates[gi], n)
			}
		}
		if slices.Contains(candidates[gi], g.PinnedLeader) {
			candidates[gi] = []string{g.PinnedLeader}
		}
		start[gi] = g.PreferredLeader
	}
	var steps []Step
	for gi, n := range spread(v.goods, candidates, start, nil) {
		if g := v.p.Groups[gi]; n != "" && n != g.PreferredLeader {
			steps = append(steps, Step{Group: g.ID, Kind: TransferLeader, Node: n})
		}
	}
	return steps
}

// BalanceLeaders returns the leadership transfers that bring each group's live leader
// (Group.Leader) back to its preferred leader, for the groups whose preferred leader is
// live: after an election the placement did not ask for (a leader restarted, a network
// blip), leadership returns where Plan spread it. A group whose preferred leader is down
// keeps the leader raft elected; Plan, told the node is not live, moves its preferred
// leaderships (and its replicas, where a good node can take them) elsewhere.
func BalanceLeaders(p *api.Placement, live []string) ([]Step, error) {
	if err := Validate(p); err != nil {
		return nil, err
	}
	var steps []Step
	for _, g := range p.Groups {
		if g.Leader != g.PreferredLeader && slices.Contains(live, g.PreferredLeader) {
			steps = append(steps, Step{Group: g.ID, Kind: TransferLeader, Node: g.PreferredLeader})
		}
	}
	return steps, nil
}
