package placement

import "slices"

// spread gives each group one of its candidate nodes so that the counts per node, each
// starting at base (0 if absent), are as even as the candidates allow: it minimizes the
// sum of squared counts, which puts them within one of each other whenever that is
// possible. It keeps start[gi] when that is a candidate and changes as few choices as it
// can; among equal choices it takes the group's earliest candidate, so the caller orders
// them by preference. A group without candidates gets "". Preferred leaders are spread
// with base 0; the replicas groups shed are spread with base minus the nodes' loads, so
// they come off the most loaded nodes.
//
// It is the load-balancing semi-matching of Harvey, Ladner, Lovász and Tamir (2003): an
// assignment is optimal exactly when no cost-reducing path exists, a chain of groups
// y→…→z, each of which could be given to the node before it, with z counting at least two
// more than y. Shifting along the chain gives y one more and z one fewer, and nobody
// between changes count; the sum of squares drops, so the search ends.
func spread(nodes []string, candidates [][]string, start []string, base map[string]int) []string {
	count := make(map[string]int, len(nodes))
	for n, c := range base {
		count[n] = c
	}
	assign := make([]string, len(candidates))
	for gi, c := range candidates {
		if slices.Contains(c, start[gi]) {
			assign[gi] = start[gi]
			count[start[gi]]++
		}
	}
	for gi, c := range candidates {
		if assign[gi] != "" || len(c) == 0 {
			continue
		}
		best := c[0]
		for _, n := range c[1:] {
			if count[n] < count[best] {
				best = n
			}
		}
		assign[gi] = best
		count[best]++
	}
	for shiftAlongCostReducingPath(nodes, candidates, assign, count) {
	}
	return assign
}

// shiftAlongCostReducingPath finds one cost-reducing path, starting from the nodes that
// count least (ties by id) and searching breadth first (groups by index), and shifts
// along it.
func shiftAlongCostReducingPath(nodes []string, candidates [][]string, assign []string, count map[string]int) bool {
	order := slices.Clone(nodes)
	slices.SortStableFunc(order, func(a, b string) int { return count[a] - count[b] })
	type via struct {
		from  string
		group int
	}
	for _, y := range order {
		parent := map[string]via{y: {}}
		queue := []string{y}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for gi, c := range candidates {
				w := assign[gi]
				if _, seen := parent[w]; seen || w == "" || !slices.Contains(c, u) {
					continue
				}
				parent[w] = via{u, gi}
				if count[w] < count[y]+2 {
					queue = append(queue, w)
					continue
				}
				count[w]--
				count[y]++
				for n := w; n != y; n = parent[n].from {
					assign[parent[n].group] = parent[n].from
				}
				return true
			}
		}
	}
	return false
}
