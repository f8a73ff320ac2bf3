package client_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
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

// The batcher keeps one request in flight while fewer than pipelineMin (256) calls wait,
// so calls gather into large requests; a queue that long may go while another request is
// still out. The server holds the first request of each round, so the queue behind it is
// what the test makes it, whatever the scheduler does.
func TestBatcher_OneRequestInFlightUntilTheQueueIsLong(t *testing.T) {
	var (
		mu       sync.Mutex
		sent     int           // requests received this round
		firstIn  chan struct{} // closed when this round's first request is held
		release  chan struct{} // closed to answer it
		released = map[chan struct{}]bool{}
	)
	newRound := func() (chan struct{}, chan struct{}) {
		mu.Lock()
		defer mu.Unlock()
		sent, firstIn, release = 0, make(chan struct{}), make(chan struct{})
		return firstIn, release
	}
	unblock := func(ch chan struct{}) {
		mu.Lock()
		defer mu.Unlock()
		if !released[ch] {
			released[ch] = true
			close(ch)
		}
	}
	requests := func() int {
		mu.Lock()
		defer mu.Unlock()
		return sent
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster/self", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, api.Node{Role: api.RoleLeader})
	})
	mux.HandleFunc("POST /v1/batch/deduct", func(w http.ResponseWriter, r *http.Request) {
		var req api.BatchDeductRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, api.ErrorBody{Error: &api.Error{Code: api.InvalidArgument, Message: err.Error()}})
			return
		}
		mu.Lock()
		sent++
		first, in, rel := sent == 1, firstIn, release
		mu.Unlock()
		if first {
			close(in)
			<-rel
		}
		writeJSON(w, 200, api.BatchDeductResponse{Results: make([]api.DeductResult, len(req.Items))})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cl := newClient(t, client.Config{Endpoints: []string{strings.TrimPrefix(srv.URL, "http://")}})
	ctx := testContext(t)
	var wg sync.WaitGroup
	buy := func(calls int) {
		for i := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := cl.Deduct(ctx, "hot", 1, fmt.Sprintf("u%d", i)); err != nil {
					t.Errorf("call %d: %v", i, err)
				}
			}()
		}
	}
	// round holds one call's request and queues calls-1 more behind it.
	round := func(calls int) chan struct{} {
		in, rel := newRound()
		t.Cleanup(func() { unblock(rel) }) // before srv.Close, which waits for held requests
		buy(1)
		<-in
		buy(calls - 1)
		eventually(t, 10*time.Second, func() error {
			if n := waitingDeducts(); n < calls && requests() < 2 {
				return fmt.Errorf("%d of %d calls wait for an answer", n, calls)
			}
			return nil
		})
		return rel
	}

	rel := round(200)
	// Every call is queued (or a second request went out); give the batcher a moment to act
	// on its queue. A busy host can only make it act later, so this cannot fail for the
	// scheduler's sake, only miss.
	time.Sleep(100 * time.Millisecond)
	if n := requests(); n != 1 {
		t.Fatalf("200 calls: %d requests while the first was out, want 1: a short queue did not wait for it", n)
	}
	unblock(rel)
	wg.Wait()

	rel = round(300)
	eventually(t, 10*time.Second, func() error {
		if n := requests(); n < 2 {
			return fmt.Errorf("300 calls queued behind a request that is out, and no second request")
		}
		return nil
	})
	unblock(rel)
	wg.Wait()
}

// Calls made while a request is out wait and leave together in the next one: with one
// request held at the server until every other buyer's call is queued behind it, the
// whole queue goes in exactly one more request. (The batcher also lets callers an answer
// has just released come back before it sends, see settle; that is a matter of the
// scheduler and is measured by stockctl bench, not asserted here.)
func TestBatcher_CallsQueuedBehindARequestLeaveInOneRequest(t *testing.T) {
	const buyers = 64
	var sizes []int
	var mu sync.Mutex
	firstIn, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster/self", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, api.Node{Role: api.RoleLeader})
	})
	mux.HandleFunc("POST /v1/batch/deduct", func(w http.ResponseWriter, r *http.Request) {
		var req api.BatchDeductRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, api.ErrorBody{Error: &api.Error{Code: api.InvalidArgument, Message: err.Error()}})
			return
		}
		mu.Lock()
		sizes = append(sizes, len(req.Items))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			close(firstIn)
			<-release
		}
		writeJSON(w, 200, api.BatchDeductResponse{Results: make([]api.DeductResult, len(req.Items))})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before srv.Close, which waits for the held request
	cl := newClient(t, client.Config{Endpoints: []string{strings.TrimPrefix(srv.URL, "http://")}})
	ctx := testContext(t)
	var wg sync.WaitGroup
	buy := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cl.Deduct(ctx, "hot", 1, fmt.Sprintf("u%d", i)); err != nil {
				t.Errorf("buyer %d: %v", i, err)
			}
		}()
	}
	buy(0)
	<-firstIn
	for i := 1; i < buyers; i++ {
		buy(i)
	}
	eventually(t, 10*time.Second, func() error {
		if n := waitingDeducts(); n != buyers { // the first buyer's too, in the request held
			return fmt.Errorf("%d calls wait for an answer, want %d", n, buyers)
		}
		return nil
	})
	unblock()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != buyers-1 {
		t.Fatalf("requests of %v calls; want [1 %d]: the calls queued behind the first did not leave together", sizes, buyers-1)
	}
}

// waitingDeducts counts the Deduct calls that have queued in the batcher and wait for
// their answer, by their goroutines' stacks.
func waitingDeducts() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, " [select") && strings.Contains(g, "client.(*batcher).deduct(") {
			n++
		}
	}
	return n
}
