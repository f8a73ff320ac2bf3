package client_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
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
	cl := newClient(t, client.Config{Endpoints: c.Addrs(), Transport: rec})
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

// The batcher keeps one request in flight while few calls wait, so calls gather into large
// requests; a long queue may go while another request is still out.
func TestBatcher_OneRequestInFlightUntilTheQueueIsLong(t *testing.T) {
	var inflight, most, requests atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster/self", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, api.Node{Role: api.RoleLeader})
	})
	mux.HandleFunc("POST /v1/batch/deduct", func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		requests.Add(1)
		var req api.BatchDeductRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, api.ErrorBody{Error: &api.Error{Code: api.InvalidArgument, Message: err.Error()}})
			return
		}
		time.Sleep(50 * time.Millisecond) // the cluster's round trip, long enough for a queue
		writeJSON(w, 200, api.BatchDeductResponse{Results: make([]api.DeductResult, len(req.Items))})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cl := newClient(t, client.Config{Endpoints: []string{strings.TrimPrefix(srv.URL, "http://")}})
	ctx := testContext(t)
	buy := func(calls int) {
		var wg sync.WaitGroup
		for i := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := cl.Deduct(ctx, "hot", 1, fmt.Sprintf("u%d", i)); err != nil {
					t.Errorf("call %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
	}
	buy(200)
	if most.Load() != 1 {
		t.Fatalf("200 calls: up to %d requests in flight at once, want 1", most.Load())
	}
	if requests.Load() > 10 {
		t.Fatalf("200 calls took %d requests: they did not gather", requests.Load())
	}
	buy(5000)
	if most.Load() < 2 {
		t.Fatalf("5000 calls: never more than %d request in flight", most.Load())
	}
}

// Buyers answered together come back together: a closed loop of buyers, each deducting
// again as soon as its call returns, should ride one request per round, not split into a
// request of the first few back and another of everyone else.
func TestBatcher_CallersReleasedByAnAnswerLeaveTogether(t *testing.T) {
	var requests atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster/self", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, api.Node{Role: api.RoleLeader})
	})
	mux.HandleFunc("POST /v1/batch/deduct", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		var req api.BatchDeductRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, api.ErrorBody{Error: &api.Error{Code: api.InvalidArgument, Message: err.Error()}})
			return
		}
		time.Sleep(2 * time.Millisecond)
		writeJSON(w, 200, api.BatchDeductResponse{Results: make([]api.DeductResult, len(req.Items))})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cl := newClient(t, client.Config{Endpoints: []string{strings.TrimPrefix(srv.URL, "http://")}})
	ctx := testContext(t)
	const buyers, rounds = 64, 30
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := range rounds {
				if _, err := cl.Deduct(ctx, "hot", 1, fmt.Sprintf("u%d-%d", i, j)); err != nil {
					t.Errorf("buyer %d call %d: %v", i, j, err)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	// One request per round, plus slack for the first round's stragglers and a scheduler
	// that now and then lets a request go before the last buyer is back.
	if n := requests.Load(); n > rounds*3/2 {
		t.Fatalf("%d buyers x %d calls took %d requests: answered buyers did not leave together (%.1f calls per request)",
			buyers, rounds, n, float64(buyers*rounds)/float64(n))
	}
}
