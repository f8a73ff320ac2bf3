package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

// deductTry sends one try of a deduction with the attempt header (0: no header).
func (c *apiClient) deductTry(addr, sku, reqID string, qty int64, attempt int) (int, error) {
	body, _ := json.Marshal(api.DeductRequest{Qty: qty, RequestID: reqID, UserID: "u"})
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/skus/"+sku+"/deduct", bytes.NewReader(body))
	if attempt > 0 {
		req.Header.Set(api.HeaderAttempt, fmt.Sprint(attempt))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		return 200, nil
	}
	var eb api.ErrorBody
	if json.Unmarshal(raw, &eb) != nil || eb.Error == nil {
		return resp.StatusCode, fmt.Errorf("no error body: %s", raw)
	}
	return resp.StatusCode, eb.Error
}

func TestFastPath_SoldOutFirstTryWritesNoLog(t *testing.T) {
	// No hold-expiry timer: it would append entries while the test watches the log.
	c := newCluster(t, 3, func(cfg *Config) { cfg.ExpireInterval = time.Hour })
	c.createSKU("tee", 1)
	c.createSKU("lim", 5)
	_, l := c.WaitLeader()
	if code, err := c.deductTry(l.HTTPAddr(), "tee", "buy", 1, 1); code != 200 {
		t.Fatalf("buy: %d %v", code, err)
	}
	li, _ := c.WaitLeader()
	follower := c.Node((li + 1) % 3).HTTPAddr()
	eventually(t, 5*time.Second, func() error { // settle: no write in flight
		if l.cluster.raft.CommitIndex() != l.cluster.fsm.AppliedIndex() {
			return fmt.Errorf("applying")
		}
		return nil
	})
	before := l.cluster.raft.LastIndex()
	// First tries: answered from a linearizable read, through the leader or a follower.
	for i, addr := range []string{l.HTTPAddr(), follower} {
		code, err := c.deductTry(addr, "tee", fmt.Sprintf("late-%d", i), 1, 1)
		if code != 409 || err.(*api.Error).Code != api.SoldOut {
			t.Fatalf("late buyer %d: %d %v", i, code, err)
		}
	}
	code, err := c.deductTry(l.HTTPAddr(), "lim", "big", 9, 1)
	if code != 409 || err.(*api.Error).Code != api.InsufficientStock {
		t.Fatalf("insufficient: %d %v", code, err)
	}
	if after := l.cluster.raft.LastIndex(); after != before {
		t.Fatalf("fast rejections wrote the log: last index %d → %d", before, after)
	}
	// A retry, a call without the header, and a first try of a remembered request id all go
	// through the log; the remembered one gets its first answer back.
	for _, tc := range []struct {
		id      string
		attempt int
		want    int
	}{{"retry", 2, 409}, {"plain", 0, 409}, {"buy", 1, 200}} {
		if code, err := c.deductTry(l.HTTPAddr(), "tee", tc.id, 1, tc.attempt); code != tc.want {
			t.Fatalf("%s: %d %v", tc.id, code, err)
		}
	}
	if after := l.cluster.raft.LastIndex(); after < before+3 {
		t.Fatalf("log went %d → %d; the three calls should each have been logged", before, after)
	}
}

func TestBatchDeduct_AnswersEachItem(t *testing.T) {
	c := newUnit(t, unitSpec{nodes: 3})
	c.createSKU("a", 3)
	follower := c.addr(1)
	req := api.BatchDeductRequest{Items: []api.DeductItem{
		{SKU: "a", Qty: 2, RequestID: "i1", UserID: "u", Attempt: 1},
		{SKU: "a", Qty: 0, RequestID: "i2", UserID: "u"},              // invalid
		{SKU: "zz", Qty: 1, RequestID: "i3", UserID: "u", Attempt: 1}, // unknown sku
		{SKU: "a", Qty: 2, RequestID: "i4", UserID: "u", Attempt: 1},  // insufficient after i1
		{SKU: "a", Qty: 1, RequestID: "i5", UserID: "u", Attempt: 1},
		{SKU: "a", Qty: 2, RequestID: "i1", UserID: "u", Attempt: 2}, // a retry of i1
	}}
	var out api.BatchDeductResponse
	c.mustCall(follower, "POST", "/v1/batch/deduct", req, &out)
	want := []struct {
		code      api.Code
		remaining int64
		dup       bool
	}{{api.OK, 1, false}, {api.InvalidArgument, 0, false}, {api.NotFound, 0, false},
		{api.InsufficientStock, 0, false}, {api.OK, 0, false}, {api.OK, 1, true}}
	if len(out.Results) != len(want) {
		t.Fatalf("%d results", len(out.Results))
	}
	for i, w := range want {
		r := out.Results[i]
		code := api.OK
		if r.Error != nil {
			code = r.Error.Code
		}
		if code != w.code || r.Remaining != w.remaining || r.Duplicate != w.dup {
			t.Errorf("item %d: %+v (error %v), want %+v", i, r, r.Error, w)
		}
	}
	var s api.SKU
	c.mustCall(follower, "GET", "/v1/skus/a", nil, &s)
	if s.Sold != 3 || s.Available != 0 {
		t.Fatalf("sku %+v", s)
	}
	for _, bad := range []string{`{"items":[]}`, `{"items":[{"sku":"a","qty":1,"request_id":"x","user_id":"u","color":1}]}`} {
		resp, err := http.Post("http://"+follower+"/v1/batch/deduct", "application/json", bytes.NewReader([]byte(bad)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("%s: status %d", bad, resp.StatusCode)
		}
	}
}

func TestCoalescer_ConcurrentDeductsShareLogEntries(t *testing.T) {
	c := newCluster(t, 3, nil)
	const buyers, each = 64, 10
	c.createSKU("hot", buyers*each)
	_, l := c.WaitLeader()
	before := l.cluster.raft.LastIndex()
	var wg sync.WaitGroup
	errs := make(chan error, buyers)
	for b := 0; b < buyers; b++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Retried with its request id as a client would: a loaded machine may
				// see an election mid-test.
				for try := 1; ; try++ {
					code, err := c.deductTry(c.LeaderAddr(), "hot", fmt.Sprintf("c%d-%d", b, i), 1, try)
					if code == 200 {
						break
					}
					var ae *api.Error
					if try == 20 || !errors.As(err, &ae) || !ae.Code.Retryable() {
						errs <- fmt.Errorf("buyer %d: %d %v", b, code, err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, l = c.WaitLeader()
	entries := l.cluster.raft.LastIndex() - before
	var s api.SKU
	c.mustCall(l.HTTPAddr(), "GET", "/v1/skus/hot", nil, &s)
	if s.Sold != buyers*each || s.Available != 0 {
		t.Fatalf("sku %+v", s)
	}
	t.Logf("%d deductions in %d log entries", buyers*each, entries)
	if entries >= buyers*each {
		t.Fatalf("%d deductions took %d log entries: nothing was coalesced", buyers*each, entries)
	}
	c.converged()
}
