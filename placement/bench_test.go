package placement

import (
	"fmt"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// The planner's cost on a cluster that just gained a node (its worst round: every group
// may have to move), for the meta group's leader that runs it.
func BenchmarkPlan(b *testing.B) {
	for _, size := range []struct{ nodes, groups int }{{5, 6}, {7, 16}, {20, 64}, {50, 256}} {
		b.Run(fmt.Sprintf("nodes=%d/groups=%d", size.nodes, size.groups), func(b *testing.B) {
			p := bootstrap(b, size.nodes, size.groups)
			p = must(AddNode(p, api.PlacementNode{ID: "new", RaftAddr: "r", HTTPAddr: "h"}))
			live := ids(p)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Plan(p, live); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
