package client_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/flashstock/flashstock/client"
)

// The client's own cost per call against the one-node cluster of TestMain; compare runs
// with benchstat. Concurrent callers share one client, as an application's handlers do.
func BenchmarkClient(b *testing.B) {
	cl, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	sku := fmt.Sprintf("bench-%d", b.N)
	if _, err := cl.CreateSKU(ctx, sku, 1_000_000_000); err != nil {
		b.Fatal(err)
	}
	b.Run("GetSKU/stale", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cl.GetSKU(ctx, sku, client.WithStale()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	var user atomic.Int64
	b.Run("Deduct", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			u := fmt.Sprintf("u%d", user.Add(1))
			for pb.Next() {
				if _, err := cl.Deduct(ctx, sku, 1, u); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkHotSKU: buyers deduct one unit each from one SKU on a 3-node cluster (fsync on)
// through one shared client, with and without batching of concurrent calls. One op is one
// acknowledged deduction. The cluster runs in this process, so client and servers share
// the machine's cores, as on a one-box test.
func BenchmarkHotSKU(b *testing.B) {
	c := startCluster(b, 3)
	for _, buyers := range []int{128, 512} {
		for _, batched := range []bool{true, false} {
			name := fmt.Sprintf("buyers=%d/batched=%v", buyers, batched)
			b.Run(name, func(b *testing.B) {
				cl, err := client.New(client.Config{Endpoints: c.Addrs(), DisableBatching: !batched})
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				ctx := context.Background()
				sku := fmt.Sprintf("hot-%d-%v-%d", buyers, batched, b.N)
				if _, err := cl.CreateSKU(ctx, sku, 1_000_000_000); err != nil {
					b.Fatal(err)
				}
				var user atomic.Int64
				b.SetParallelism(max(1, buyers/runtime.GOMAXPROCS(0)))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					u := fmt.Sprintf("u%d", user.Add(1))
					for pb.Next() {
						if _, err := cl.Deduct(ctx, sku, 1, u); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deductions/s")
			})
		}
	}
}
