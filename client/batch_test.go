package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flashstock/flashstock/client"
)

// Concurrent buyers' deductions leave in shared requests, and each buyer still gets its own
// answer: exactly stock successes, every other buyer sold out.
func TestBatcher_ConcurrentDeductsShareRequests(t *testing.T) {
	c := startCluster(t, 3)
	ctx := testContext(t)
	var batches, singles atomic.Int64
	rec := &recorder{base: http.DefaultTransport.(*http.Transport).Clone(), before: func(req *http.Request) {
		switch req.URL.Path {
		case "/v1/batch/deduct":
			batches.Add(1)
		case "/v1/skus/hot/deduct":
			singles.Add(1)
		}
	}}
	cl := newClient(t, client.Config{Endpoints: c.addrs(), Transport: rec})
	const stock, buyers, each = 150, 64, 4
	if _, err := cl.CreateSKU(ctx, "hot", stock); err != nil {
		t.Fatal(err)
	}
	var ok, soldOut atomic.Int64
	remaining := make(map[int64]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for b := 0; b < buyers; b++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				res, err := cl.Deduct(ctx, "hot", 1, fmt.Sprintf("u%d", b))
				switch {
				case err == nil:
					ok.Add(1)
					mu.Lock()
					if remaining[res.Remaining] {
						t.Errorf("two buyers were told %d remain", res.Remaining)
					}
					remaining[res.Remaining] = true
					mu.Unlock()
				case errors.Is(err, client.ErrSoldOut):
					soldOut.Add(1)
				default:
					t.Errorf("buyer %d: %v", b, err)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != stock || soldOut.Load() != buyers*each-stock {
		t.Fatalf("%d sold, %d sold out; want %d and %d", ok.Load(), soldOut.Load(), stock, buyers*each-stock)
	}
	if singles.Load() != 0 || batches.Load() == 0 || batches.Load() >= buyers*each {
		t.Fatalf("%d batch requests and %d single requests for %d calls", batches.Load(), singles.Load(), buyers*each)
	}
	t.Logf("%d calls in %d batch requests", buyers*each, batches.Load())
	s, err := cl.GetSKU(ctx, "hot")
	if err != nil || s.Sold != stock || s.Available != 0 {
		t.Fatalf("sku %+v %v", s, err)
	}
}
