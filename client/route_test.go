package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
	"github.com/flashstock/flashstock/internal/testcluster"
	"github.com/flashstock/flashstock/node"
)

const testGroups = 4

// startGroups starts one node hosting testGroups data groups and waits until its
// placement names a leader for each; it returns the cluster and the placement.
func startGroups(t *testing.T) (*cluster, *api.Placement) {
	t.Helper()
	c := testcluster.Start(t, 1, node.DefaultConfig, node.New, func(cfg *node.Config) { cfg.Groups = testGroups })
	admin := newClient(t, client.Config{Endpoints: c.Addrs()})
	ctx := testContext(t)
	var pl api.Placement
	eventually(t, 20*time.Second, func() error {
		cl, err := admin.ClusterStatus(ctx)
		if err != nil {
			return err
		}
		pl = api.Placement{Version: cl.PlacementVersion, Groups: cl.Groups}
		n := 0
		for _, g := range cl.Groups {
			if g.Kind == api.GroupData && g.Leader != "" {
				n++
			}
		}
		if n != testGroups {
			return fmt.Errorf("%d of %d data groups have a leader: %+v", n, testGroups, cl.Groups)
		}
		return nil
	})
	return c, &pl
}

// skusByGroup names perGroup SKUs in each data group of pl.
func skusByGroup(t *testing.T, pl *api.Placement, perGroup int) map[uint64][]string {
	t.Helper()
	out := map[uint64][]string{}
	for i := 0; len(out) < testGroups || !full(out, perGroup); i++ {
		sku := fmt.Sprintf("sku-%d", i)
		g := pl.GroupOf(sku)
		if g == nil {
			t.Fatalf("no group owns %s", sku)
		}
		if len(out[g.ID]) < perGroup {
			out[g.ID] = append(out[g.ID], sku)
		}
	}
	return out
}

func full(m map[uint64][]string, n int) bool {
	for _, v := range m {
		if len(v) < n {
			return false
		}
	}
	return true
}

// groupClient is a client of c whose requests pass through rec, once it knows from the
// health checks that the cluster has several groups (it learns that with the leader).
func groupClient(t *testing.T, c *cluster, rec *recorder) *client.Client {
	t.Helper()
	rec.base = http.DefaultTransport.(*http.Transport).Clone()
	cl := newClient(t, client.Config{Endpoints: c.Addrs(), Transport: rec})
	eventually(t, 10*time.Second, func() error {
		if cl.Leader() == "" {
			return errors.New("no leader known yet")
		}
		return nil
	})
	return cl
}

// batchItems reads the items of a batch request, in either encoding, and puts the body
// back for the transport.
func batchItems(t *testing.T, req *http.Request) []api.DeductItem {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Errorf("read batch: %v", err)
		return nil
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var br api.BatchDeductRequest
	if api.IsMediaType(req.Header.Get("Content-Type"), api.BatchContentType) {
		br, err = api.DecodeBatchDeductRequest(body)
	} else {
		err = json.Unmarshal(body, &br)
	}
	if err != nil {
		t.Errorf("decode batch: %v", err)
	}
	return br.Items
}

// Every group's SKUs deduct, read back, and a deduction whose answer was lost is retried
// with its request id and answered as the duplicate it is: one unit taken. The client
// fetched the placement once, for the first call, not on every call.
func TestGroups_EveryGroupDeductsReadsAndRetriesOnce(t *testing.T) {
	c, pl := startGroups(t)
	ctx := testContext(t)
	bySKU := skusByGroup(t, pl, 1)
	var placements atomic.Int64
	var mu sync.Mutex
	lost := map[string]bool{} // SKUs whose first deduction answer was dropped
	var sent sync.Map         // *http.Request → its batch items
	rec := &recorder{
		before: func(req *http.Request) {
			if req.Method == http.MethodGet && req.URL.Path == "/v1/cluster" {
				placements.Add(1)
			}
			if req.URL.Path == "/v1/batch/deduct" {
				sent.Store(req, batchItems(t, req))
			}
		},
		after: func(req *http.Request, resp *http.Response, err error) (*http.Response, error) {
			if err != nil || req.URL.Path != "/v1/batch/deduct" {
				return resp, err
			}
			// The server has applied the batch; the client is told the connection broke.
			v, _ := sent.LoadAndDelete(req)
			items, _ := v.([]api.DeductItem)
			mu.Lock()
			defer mu.Unlock()
			if len(items) == 1 && !lost[items[0].SKU] {
				lost[items[0].SKU] = true
				drainClose(resp)
				return nil, errors.New("answer lost on the way back")
			}
			return resp, nil
		},
	}
	cl := groupClient(t, c, rec)
	for g, skus := range bySKU {
		sku := skus[0]
		if _, err := cl.CreateSKU(ctx, sku, 10); err != nil {
			t.Fatalf("group %d: create %s: %v", g, sku, err)
		}
		res, err := cl.Deduct(ctx, sku, 1, "u1")
		if err != nil || !res.Duplicate || res.Remaining != 9 {
			t.Fatalf("group %d: deduct %s after a lost answer: %+v %v; want remaining 9, duplicate", g, sku, res, err)
		}
		for _, opt := range [][]client.CallOption{nil, {client.WithStale()}} {
			s, err := cl.GetSKU(ctx, sku, opt...)
			if err != nil || s.Sold != 1 || s.Available != 9 {
				t.Fatalf("group %d: read %s %v: %+v %v", g, sku, opt, s, err)
			}
		}
	}
	if len(lost) != testGroups {
		t.Fatalf("answers lost for %v, want one SKU per group", lost)
	}
	if n := placements.Load(); n != 1 {
		t.Fatalf("GET /v1/cluster %d times, want once", n)
	}
}

func drainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// Concurrent deductions over SKUs of every group leave in batches of one group each, and
// still share requests.
func TestGroups_BatchesNeverMixGroups(t *testing.T) {
	c, pl := startGroups(t)
	ctx := testContext(t)
	bySKU := skusByGroup(t, pl, 4)
	var all []string
	for _, skus := range bySKU {
		all = append(all, skus...)
	}
	var batches, items, mixed atomic.Int64
	rec := &recorder{before: func(req *http.Request) {
		if req.URL.Path != "/v1/batch/deduct" {
			return
		}
		its := batchItems(t, req)
		groups := map[uint64]bool{}
		for _, it := range its {
			groups[pl.GroupOf(it.SKU).ID] = true
		}
		batches.Add(1)
		items.Add(int64(len(its)))
		if len(groups) > 1 {
			mixed.Add(1)
		}
	}}
	cl := groupClient(t, c, rec)
	for _, sku := range all {
		if _, err := cl.CreateSKU(ctx, sku, 1000); err != nil {
			t.Fatal(err)
		}
	}
	const buyers, each = 64, 8
	var wg sync.WaitGroup
	for b := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := cl.Deduct(ctx, all[(b+i)%len(all)], 1, fmt.Sprintf("u%d", b)); err != nil {
					t.Errorf("buyer %d: %v", b, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d calls in %d batch requests, %d mixing groups", items.Load(), batches.Load(), mixed.Load())
	if mixed.Load() != 0 {
		t.Fatalf("%d of %d batch requests mixed groups", mixed.Load(), batches.Load())
	}
	if items.Load() != buyers*each || batches.Load() >= items.Load() {
		t.Fatalf("%d items in %d batch requests: calls did not share requests", items.Load(), batches.Load())
	}
	for _, sku := range all {
		s, err := cl.GetSKU(ctx, sku)
		if err != nil {
			t.Fatal(err)
		}
		if s.Sold+s.Available != 1000 {
			t.Fatalf("sku %+v", s)
		}
	}
}

// A group whose batch hangs does not hold another group's deductions back.
func TestGroups_SlowGroupDoesNotHoldOthers(t *testing.T) {
	c, pl := startGroups(t)
	ctx := testContext(t)
	bySKU := skusByGroup(t, pl, 1)
	slow, fast := bySKU[1][0], bySKU[2][0]
	release := make(chan struct{})
	var releaseOnce sync.Once
	held := make(chan struct{}, 1)
	rec := &recorder{before: func(req *http.Request) {
		if req.URL.Path != "/v1/batch/deduct" {
			return
		}
		for _, it := range batchItems(t, req) {
			if it.SKU == slow {
				select {
				case held <- struct{}{}:
				default:
				}
				<-release
				return
			}
		}
	}}
	cl := groupClient(t, c, rec)
	// Registered after the client, so it runs before Close waits for the held request.
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	for _, sku := range []string{slow, fast} {
		if _, err := cl.CreateSKU(ctx, sku, 10); err != nil {
			t.Fatal(err)
		}
	}
	slowDone := make(chan error, 1)
	go func() {
		_, err := cl.Deduct(ctx, slow, 1, "u1")
		slowDone <- err
	}()
	<-held
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if res, err := cl.Deduct(fctx, fast, 1, "u2"); err != nil || res.Remaining != 9 {
		t.Fatalf("group 2's deduction while group 1's batch hangs: %+v %v", res, err)
	}
	releaseOnce.Do(func() { close(release) })
	if err := <-slowDone; err != nil {
		t.Fatalf("slow group's deduction: %v", err)
	}
}

// An order whose lines the placement puts in two groups is refused before anything is
// sent; one whose lines share a group is reserved.
func TestGroups_CrossGroupOrderRefusedLocally(t *testing.T) {
	c, pl := startGroups(t)
	ctx := testContext(t)
	bySKU := skusByGroup(t, pl, 2)
	var orders atomic.Int64
	rec := &recorder{before: func(req *http.Request) {
		if req.URL.Path == "/v1/orders" {
			orders.Add(1)
		}
	}}
	cl := groupClient(t, c, rec)
	a, b := bySKU[1], bySKU[3]
	for _, sku := range append(append([]string{}, a...), b...) {
		if _, err := cl.CreateSKU(ctx, sku, 10); err != nil {
			t.Fatal(err)
		}
	}
	_, err := cl.Reserve(ctx, "o-cross", "u1", []api.Line{{SKU: a[0], Qty: 1}, {SKU: b[0], Qty: 1}}, time.Minute)
	if !errors.Is(err, client.ErrCrossGroup) {
		t.Fatalf("cross-group order: %v, want cross_group", err)
	}
	if n := orders.Load(); n != 0 {
		t.Fatalf("cross-group order sent %d requests, want none", n)
	}
	o, err := cl.Reserve(ctx, "o-same", "u1", []api.Line{{SKU: b[0], Qty: 1}, {SKU: b[1], Qty: 2}}, time.Minute)
	if err != nil || len(o.Lines) != 2 {
		t.Fatalf("one-group order: %+v %v", o, err)
	}
	if n := orders.Load(); n != 1 {
		t.Fatalf("one-group order sent %d requests, want 1", n)
	}
}

// A single-group cluster is routed as before groups existed: no placement is fetched, and
// after a leader change the client follows the new leader.
func TestSingleGroup_NoPlacementFetchAndFollowsLeader(t *testing.T) {
	c := startCluster(t, 3)
	ctx := testContext(t)
	var placements atomic.Int64
	rec := &recorder{before: func(req *http.Request) {
		if req.Method == http.MethodGet && req.URL.Path == "/v1/cluster" {
			placements.Add(1)
		}
	}}
	cl := groupClient(t, c, rec)
	if _, err := cl.CreateSKU(ctx, "hot", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Deduct(ctx, "hot", 1, "u1"); err != nil {
		t.Fatal(err)
	}
	old := c.LeaderAddr()
	if err := cl.TransferLeadership(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if res, err := cl.Deduct(ctx, "hot", 1, "u1"); err != nil || res.Remaining != 8 {
		t.Fatalf("deduct after the leader change: %+v %v", res, err)
	}
	eventually(t, 10*time.Second, func() error {
		if l, now := cl.Leader(), c.LeaderAddr(); l == old || l != now {
			return fmt.Errorf("client follows %q; leader was %q, is %q", l, old, now)
		}
		return nil
	})
	if n := placements.Load(); n != 0 {
		t.Fatalf("GET /v1/cluster %d times for a single-group cluster, want none", n)
	}
}

// An answer that says the group is not served where the placement pointed (not_leader
// with no hint, as from a node hosting no replica of the group) makes the client fetch the
// placement again, and the deduction is retried with its request id and applied once.
func TestGroups_StaleAnswerRefreshesPlacement(t *testing.T) {
	c, pl := startGroups(t)
	ctx := testContext(t)
	sku := skusByGroup(t, pl, 1)[2][0]
	var placements, refused atomic.Int64
	base := http.DefaultTransport.(*http.Transport).Clone()
	tr := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method == http.MethodGet && req.URL.Path == "/v1/cluster" {
			placements.Add(1)
		}
		if req.URL.Path == "/v1/batch/deduct" && refused.Add(1) == 1 {
			// What a node hosting no replica of the group answers, in place of sending
			// it on: a single node hosts every group, so it cannot give this answer here.
			body, _ := json.Marshal(api.ErrorBody{Error: &api.Error{Code: api.NotLeader, Message: "this node hosts no replica of group 2"}})
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(bytes.NewReader(body)), Request: req}, nil
		}
		return base.RoundTrip(req)
	})
	cl := newClient(t, client.Config{Endpoints: c.Addrs(), Transport: tr})
	eventually(t, 10*time.Second, func() error {
		if cl.Leader() == "" {
			return errors.New("no leader known yet")
		}
		return nil
	})
	if _, err := cl.CreateSKU(ctx, sku, 10); err != nil {
		t.Fatal(err)
	}
	res, err := cl.Deduct(ctx, sku, 1, "u1", client.WithRequestID("r1"))
	if err != nil || res.Duplicate || res.Remaining != 9 {
		t.Fatalf("deduct after a not_leader answer: %+v %v", res, err)
	}
	eventually(t, 10*time.Second, func() error {
		if _, err := cl.GetSKU(ctx, sku); err != nil {
			return err
		}
		if n := placements.Load(); n < 2 {
			return fmt.Errorf("GET /v1/cluster %d times, want a refresh after the stale answer", n)
		}
		return nil
	})
	if res, err := cl.Deduct(ctx, sku, 1, "u1", client.WithRequestID("r1")); err != nil || !res.Duplicate || res.Remaining != 9 {
		t.Fatalf("the same request id again: %+v %v; want the first answer, duplicate", res, err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
