package client_test

import (
	"context"
	"fmt"
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
