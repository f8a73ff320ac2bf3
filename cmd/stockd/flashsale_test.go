package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

// The flash sale, end to end: three stockd processes started as DESIGN.md says, 300 units,
// 200 buyers on random nodes, the leader killed with SIGKILL mid-sale and restarted with
// the same command line. Exactly 300 units are sold, each acknowledged purchase exactly
// once, and every node ends with the same numbers.
const (
	saleSKU     = "flash-phone"
	saleStock   = 300
	saleBuyers  = 200
	killAfter   = 90               // acknowledged purchases before the leader is killed
	saleBudget  = 40 * time.Second // the whole sale, failover included
	buyBudget   = 20 * time.Second // one purchase's retries
	tryTimeout  = 3 * time.Second  // one HTTP attempt
	maxBackoff  = 500 * time.Millisecond
	convergeFor = 15 * time.Second
)

func TestFlashSale_LeaderKilledMidSale(t *testing.T) {
	testStart := time.Now()
	c := startProcCluster(t, 3, shortTiming)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	readyCtx, readyCancel := context.WithTimeout(ctx, 20*time.Second)
	leader, err := c.waitReady(readyCtx)
	readyCancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster of 3 ready after %v, leader %s", time.Since(testStart).Round(time.Millisecond), leader)

	createSKU(t, ctx, c, saleSKU, saleStock)

	s := &sale{c: c, acks: map[string]int64{}, killAt: make(chan struct{})}
	saleCtx, saleCancel := context.WithTimeout(ctx, saleBudget)
	defer saleCancel()

	failover := make(chan failoverReport, 1)
	go func() { failover <- s.killLeaderMidSale(saleCtx) }()
	samplerDone := make(chan struct{})
	samplerCtx, stopSampler := context.WithCancel(saleCtx)
	go func() { defer close(samplerDone); s.sampleInvariants(samplerCtx) }()

	saleStart := time.Now()
	var wg sync.WaitGroup
	for i := range saleBuyers {
		wg.Go(func() { s.buyer(saleCtx, i) })
	}
	wg.Wait()
	stopSampler()
	<-samplerDone
	t.Logf("sale over after %v: %d purchases acknowledged, %d duplicate answers, %d retries",
		time.Since(saleStart).Round(time.Millisecond), len(s.acks), s.duplicates.Load(), s.retries.Load())

	var fr failoverReport
	select {
	case fr = <-failover:
	case <-time.After(20 * time.Second):
		t.Fatal("the failover goroutine did not finish")
	}
	if fr.err != nil {
		t.Errorf("failover: %v", fr.err)
	} else {
		t.Logf("SIGKILLed leader %s after %d acknowledged purchases; %s reported itself leader %v after the kill",
			fr.killed, fr.soldAtKill, fr.newLeader, fr.election.Round(time.Millisecond))
		if fr.soldAtKill >= saleStock {
			t.Errorf("the leader was killed after the sale ended (%d sold): no failover mid-sale was tested", fr.soldAtKill)
		}
	}
	for _, e := range s.errorList() {
		t.Error(e)
	}

	// Exactly-once, from the buyers' side: 300 distinct request ids acknowledged, and their
	// answers name every remaining count from 299 down to 0 exactly once.
	if len(s.acks) != saleStock {
		t.Errorf("%d distinct purchases acknowledged, want %d", len(s.acks), saleStock)
	}
	checkRemainingCounts(t, s.acks)

	// The leader's linearizable view, once the restarted node is back.
	readyCtx, readyCancel = context.WithTimeout(ctx, 20*time.Second)
	leader, err = c.waitReady(readyCtx)
	readyCancel()
	if err != nil {
		t.Fatalf("after the sale: %v", err)
	}
	final := strongRead(t, ctx, c, leader, saleSKU)
	if final.Sold != saleStock || final.Available != 0 || final.Reserved != 0 {
		t.Errorf("strong read on leader %s: sold %d available %d reserved %d; want %d, 0, 0",
			leader, final.Sold, final.Available, final.Reserved, saleStock)
	}
	checkConverged(t, ctx, c, final)
	t.Logf("whole test took %v", time.Since(testStart).Round(time.Millisecond))
}

// sale is the buyers' shared record.
type sale struct {
	c *procCluster

	mu   sync.Mutex
	acks map[string]int64 // request id → the remaining count its (first) answer gave
	errs []string

	killOnce   sync.Once
	killAt     chan struct{} // closed once killAfter purchases are acknowledged
	duplicates atomic.Int64
	retries    atomic.Int64
}

// buyer i buys one unit after another, each with a fresh request id, until sold out.
func (s *sale) buyer(ctx context.Context, i int) {
	user := fmt.Sprintf("user-%03d", i)
	// Spread the buyers so the sale lasts long enough to kill the leader in the middle.
	if pause(ctx, time.Duration(rand.IntN(500))*time.Millisecond) != nil {
		return
	}
	for k := 0; ; k++ {
		reqID := fmt.Sprintf("buy-%03d-%d", i, k)
		if !s.purchase(ctx, reqID, user) {
			return
		}
		if pause(ctx, time.Duration(300+rand.IntN(400))*time.Millisecond) != nil {
			s.fail("%s: sale budget of %v ran out while buying", user, saleBudget)
			return
		}
	}
}

// purchase buys one unit under reqID, retrying the same request id on timeouts,
// connection errors, 5xx and 429 with capped exponential backoff and jitter, on a random
// node each time. It reports whether the buyer should go on buying.
func (s *sale) purchase(ctx context.Context, reqID, user string) bool {
	body := api.DeductRequest{Qty: 1, RequestID: reqID, UserID: user}
	start := time.Now()
	backoff := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		p := s.c.procs[rand.IntN(len(s.c.procs))]
		tryCtx, cancel := context.WithTimeout(ctx, tryTimeout)
		r, err := s.c.do(tryCtx, http.MethodPost, p, "/v1/skus/"+saleSKU+"/deduct", body)
		cancel()
		wait := time.Duration(0)
		switch {
		case err != nil:
			// timeout or connection error: the outcome is unknown, retry the same id
		case r.status == http.StatusOK:
			var res api.DeductResponse
			if err := json.Unmarshal(r.body, &res); err != nil {
				s.fail("%s: 200 with a bad body %q: %v", reqID, r.body, err)
				return false
			}
			s.ack(reqID, res)
			return true
		case r.status == http.StatusConflict:
			if code := codeOf(r.body); code != api.SoldOut && code != api.InsufficientStock {
				s.fail("%s: unexpected 409 %s", reqID, r.body)
			}
			return false
		case r.status == http.StatusTooManyRequests:
			if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err == nil {
				wait = min(time.Duration(secs)*time.Second, time.Second)
			}
		case r.status >= 500:
			// not_leader, no_leader, timeout, internal: all safe to retry with the same id
		default:
			s.fail("%s: unexpected answer %d %s from %s", reqID, r.status, r.body, p.id)
			return false
		}
		if ctx.Err() != nil {
			s.fail("%s: sale budget ran out after %d attempts (last: %d %s %v)", reqID, attempt, r.status, r.body, err)
			return false
		}
		if time.Since(start) > buyBudget {
			s.fail("%s: gave up after %d attempts in %v (last: %d %s %v)", reqID, attempt, buyBudget, r.status, r.body, err)
			return false
		}
		s.retries.Add(1)
		if pause(ctx, max(wait, backoff/2+rand.N(backoff))) != nil {
			s.fail("%s: sale budget ran out while backing off", reqID)
			return false
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// ack records an acknowledged purchase; a duplicate answer must repeat the first one.
func (s *sale) ack(reqID string, res api.DeductResponse) {
	if res.Duplicate {
		s.duplicates.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if res.Remaining < 0 || res.Remaining >= saleStock {
		s.errs = append(s.errs, fmt.Sprintf("%s: remaining %d out of [0, %d)", reqID, res.Remaining, saleStock))
	}
	if first, seen := s.acks[reqID]; seen {
		if first != res.Remaining {
			s.errs = append(s.errs, fmt.Sprintf("%s: acknowledged twice with different answers: remaining %d, then %d", reqID, first, res.Remaining))
		}
		return
	}
	s.acks[reqID] = res.Remaining
	if len(s.acks) >= killAfter {
		s.killOnce.Do(func() { close(s.killAt) })
	}
}

func (s *sale) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func (s *sale) errorList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) > 20 {
		return append(s.errs[:20:20], fmt.Sprintf("... and %d more errors", len(s.errs)-20))
	}
	return append([]string(nil), s.errs...)
}

func (s *sale) acked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acks)
}

type failoverReport struct {
	killed, newLeader string
	soldAtKill        int
	election          time.Duration
	err               error
}

// killLeaderMidSale waits for killAfter acknowledged purchases, SIGKILLs the leader, times
// the election of another member, and restarts the killed one with its same command line.
// The leader is watched all along, so the kill follows the trigger at once.
func (s *sale) killLeaderMidSale(ctx context.Context) failoverReport {
	var known atomic.Pointer[api.Cluster]
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if view, err := s.c.anyView(watchCtx); err == nil {
				known.Store(view)
			}
			if pause(watchCtx, 50*time.Millisecond) != nil {
				return
			}
		}
	}()
	select {
	case <-s.killAt:
	case <-ctx.Done():
	}
	stopWatch()
	<-watched
	if ctx.Err() != nil {
		return failoverReport{err: fmt.Errorf("never reached %d acknowledged purchases", killAfter)}
	}
	view := known.Load()
	if view == nil {
		return failoverReport{err: errors.New("no member named a leader during the sale")}
	}
	r := failoverReport{killed: view.Leader, soldAtKill: s.acked()}
	p := s.c.byID(view.Leader)
	var term uint64
	r.newLeader, term, r.election, r.err = s.c.killAndTimeElection(ctx, p)
	if r.err == nil && term <= view.Term {
		r.err = fmt.Errorf("%s leads in term %d, not after term %d: the node killed was not the leader", r.newLeader, term, view.Term)
	}
	s.c.start(p)
	return r
}

// sampleInvariants reads the SKU from random nodes (stale) while the sale runs: no read
// may ever show more sold than stocked, negative availability, or lost units.
func (s *sale) sampleInvariants(ctx context.Context) {
	for pause(ctx, 20*time.Millisecond) == nil {
		p := s.c.procs[rand.IntN(len(s.c.procs))]
		sku, err := s.c.readSKU(ctx, p, saleSKU, api.Stale)
		if err != nil {
			continue // a killed or restarting node
		}
		if sku.Sold > saleStock || sku.Available < 0 || sku.Reserved < 0 || sku.Available+sku.Reserved+sku.Sold != saleStock {
			s.fail("stale read on %s broke the invariants: %+v", p.id, *sku)
		}
	}
}

// anyView asks the members in turn for GET /v1/cluster until one names a leader.
func (c *procCluster) anyView(ctx context.Context) (*api.Cluster, error) {
	for _, p := range c.procs {
		if view, err := c.cluster(ctx, p); err == nil && view.Leader != "" {
			return view, nil
		}
	}
	return nil, errors.New("no member names a leader")
}

// killAndTimeElection SIGKILLs p, the leader, and returns which other member first reports
// itself leader through GET /v1/cluster, in which term, and how long after the kill.
func (c *procCluster) killAndTimeElection(ctx context.Context, p *process) (string, uint64, time.Duration, error) {
	c.kill(p)
	killed := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		for _, q := range c.procs {
			if q == p {
				continue
			}
			if view, err := c.cluster(ctx, q); err == nil && view.Leader == q.id {
				return q.id, view.Term, time.Since(killed), nil
			}
		}
		if err := pause(ctx, 10*time.Millisecond); err != nil {
			return "", 0, 0, fmt.Errorf("no survivor became leader within 15s of killing %s", p.id)
		}
	}
}

// createSKU creates the SKU through any node, retrying while the cluster settles.
func createSKU(t *testing.T, ctx context.Context, c *procCluster, sku string, stock int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body := api.CreateSKURequest{Stock: &stock, RequestID: "create-" + sku}
	for {
		p := c.procs[rand.IntN(len(c.procs))]
		tryCtx, tryCancel := context.WithTimeout(ctx, tryTimeout)
		r, err := c.do(tryCtx, http.MethodPut, p, "/v1/skus/"+sku, body)
		tryCancel()
		switch {
		case err == nil && r.status == http.StatusCreated:
			return
		case err == nil && r.status == http.StatusConflict && codeOf(r.body) == api.AlreadyExists:
			return // an earlier try that timed out did create it
		case err == nil && r.status < 500 && r.status != http.StatusTooManyRequests:
			t.Fatalf("create %s: %d %s", sku, r.status, r.body)
		}
		if pause(ctx, 50*time.Millisecond) != nil {
			t.Fatalf("create %s: no success within 10s (last: %d %s %v)", sku, r.status, r.body, err)
		}
	}
}

// strongRead reads the SKU linearizably from the leader, retrying while it settles.
func strongRead(t *testing.T, ctx context.Context, c *procCluster, leader, sku string) *api.SKU {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		got, err := c.readSKU(ctx, c.byID(leader), sku, api.Strong)
		if err == nil {
			return got
		}
		if pause(ctx, 50*time.Millisecond) != nil {
			t.Fatalf("strong read of %s on %s: %v", sku, leader, err)
		}
	}
}

// checkConverged polls a stale read on every node until each shows want's numbers.
func checkConverged(t *testing.T, ctx context.Context, c *procCluster, want *api.SKU) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, convergeFor)
	defer cancel()
	start := time.Now()
	for {
		var behind []string
		for _, p := range c.procs {
			got, err := c.readSKU(ctx, p, want.SKU, api.Stale)
			switch {
			case err != nil:
				behind = append(behind, fmt.Sprintf("%s: %v", p.id, err))
			case got.Available != want.Available || got.Sold != want.Sold || got.Reserved != want.Reserved || got.Version != want.Version:
				behind = append(behind, fmt.Sprintf("%s: %+v", p.id, *got))
			}
		}
		if len(behind) == 0 {
			t.Logf("all %d nodes converged on sold %d, available %d, version %d (%v after the strong read)",
				len(c.procs), want.Sold, want.Available, want.Version, time.Since(start).Round(time.Millisecond))
			return
		}
		if pause(ctx, 50*time.Millisecond) != nil {
			t.Errorf("nodes did not converge within %v on %+v: %v", convergeFor, *want, behind)
			return
		}
	}
}

// checkRemainingCounts: with qty 1 each, the acknowledged purchases' remaining counts
// must be exactly 299, 298, ..., 0: a repeat means one unit sold twice.
func checkRemainingCounts(t *testing.T, acks map[string]int64) {
	t.Helper()
	byRemaining := map[int64][]string{}
	for id, rem := range acks {
		byRemaining[rem] = append(byRemaining[rem], id)
	}
	var problems []string
	for rem := int64(0); rem < saleStock; rem++ {
		switch ids := byRemaining[rem]; len(ids) {
		case 1:
		case 0:
			problems = append(problems, fmt.Sprintf("no purchase left %d", rem))
		default:
			sort.Strings(ids)
			problems = append(problems, fmt.Sprintf("%d purchases left %d: %v", len(ids), rem, ids))
		}
	}
	if len(problems) > 10 {
		problems = append(problems[:10], fmt.Sprintf("... %d more", len(problems)-10))
	}
	for _, p := range problems {
		t.Errorf("remaining counts: %s", p)
	}
}

// codeOf extracts the error code from an error body.
func codeOf(data []byte) api.Code {
	var eb api.ErrorBody
	if json.Unmarshal(data, &eb) != nil || eb.Error == nil {
		return ""
	}
	return eb.Error.Code
}
