package node

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/flashstock/flashstock/fsm"
)

// BenchmarkBatchFixedCost: one batch at a time through the leader's coalescer of a 3-node
// cluster (raft over loopback, fsync on, every node in this process), without HTTP. One op
// is one batch, committed on a quorum and applied: cpu-ns/op and allocs/op are what a batch
// costs the three nodes, which is what every deduction pays when buyers are few and a batch
// holds one or a few of them (BENCHMARKS.md, "Where a lone deduction's CPU goes"). The
// batch sizes are fixed, so an A/B of two builds compares the same work.
func BenchmarkBatchFixedCost(b *testing.B) {
	for _, size := range []int{1, 16} {
		b.Run(fmt.Sprintf("cmds=%d", size), func(b *testing.B) {
			c := benchCluster(b, 3)
			_, l := c.WaitLeader()
			c.mustCall(l.HTTPAddr(), "PUT", "/v1/skus/hot", map[string]any{"stock": 1_000_000_000}, nil)
			g := l.group(1)
			cmds := make([]fsm.Command, size)
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := processCPU(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range cmds {
					id := strconv.Itoa(i*size + j)
					cmds[j] = fsm.Command{Kind: fsm.KindDeduct, SKU: "hot", Qty: 1, RequestID: "r" + id, UserID: "u" + id}
				}
				for _, o := range g.coalesce.submit(ctx, cmds) {
					if o.err != nil || !o.res.OK() {
						b.Fatalf("deduct: %v %+v", o.err, o.res)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
