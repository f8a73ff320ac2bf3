package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// The handlers' own tests, in the unit tier (unit_test.go): no raft, so each is about what
// a node says over HTTP.

// skusIn names a SKU of each of the groups ids, as u's placement routes them.
func skusIn(u *unitCluster, ids ...uint64) []string {
	u.t.Helper()
	out := make([]string, len(ids))
	for i, id := range ids {
		for j := 0; out[i] == ""; j++ {
			if sku := fmt.Sprintf("g%d-%d", id, j); u.groupOf(sku) == id {
				out[i] = sku
			}
			if j > 10_000 {
				u.t.Fatalf("no SKU in group %d", id)
			}
		}
	}
	return out
}

// A follower forwards writes and strong reads to the leader and copies its answer back;
// it serves stale reads from its own state, saying how fresh it is. A request forwarded
// once is not forwarded again, and without a leader the answer says so.
func TestHandlers_FollowerForwardsWritesAndStrongReads(t *testing.T) {
	c := newUnit(t, unitSpec{nodes: 2})
	leader, follower := c.addr(0), c.addr(1)
	c.createSKU("tee", 10)

	var out api.DeductResponse
	code, err := c.call(follower, "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 3, RequestID: "r1", UserID: "u"}, &out)
	if code != 200 || err != nil || out.Remaining != 7 {
		t.Fatalf("deduct through the follower: %d %+v %v", code, out, err)
	}
	if s, _ := c.store(0, 1).m.GetSKU("tee"); s.Available != 7 {
		t.Fatalf("the leader's state %+v: the write was not forwarded there", s)
	}

	read := func(addr, query string) answer {
		t.Helper()
		a := do(t, c.client, "GET", "http://"+addr+"/v1/skus/tee"+query, nil, "")
		if a.status != 200 {
			t.Fatalf("read %s via %s: %d %v", query, addr, a.status, a.err)
		}
		if a.header.Get(api.HeaderLeader) != leader {
			t.Errorf("read %s via %s: leader hint %q, want %q", query, addr, a.header.Get(api.HeaderLeader), leader)
		}
		return a
	}
	leaderReads, followerReads := c.store(0, 1).strongReads.Load(), c.store(1, 1).strongReads.Load()
	a := read(follower, "")
	if c.store(0, 1).strongReads.Load() != leaderReads+1 || c.store(1, 1).strongReads.Load() != followerReads {
		t.Fatalf("a strong read through the follower was not confirmed by the leader alone")
	}
	applied := fmt.Sprint(c.store(0, 1).m.AppliedIndex())
	if a.header.Get(api.HeaderAppliedIndex) != applied || a.header.Get(api.HeaderLastContactMS) != "0" {
		t.Fatalf("forwarded strong read's freshness: %v, want the leader's (applied %s, contact 0)", a.header, applied)
	}
	a = read(follower, "?consistency=stale")
	if c.store(0, 1).strongReads.Load() != leaderReads+1 {
		t.Fatalf("a stale read went to the leader")
	}
	if a.header.Get(api.HeaderAppliedIndex) != fmt.Sprint(c.store(1, 1).m.AppliedIndex()) || a.header.Get(api.HeaderLastContactMS) != "7" {
		t.Fatalf("stale read's freshness: %v, want the follower's own", a.header)
	}

	// A request another member forwarded already is answered here: not_leader, naming the
	// leader, and nothing is written.
	before := c.entries(1)
	req, _ := http.NewRequest("POST", "http://"+follower+"/v1/skus/tee/deduct", strings.NewReader(`{"qty":1,"request_id":"r2","user_id":"u"}`))
	req.Header.Set(api.HeaderForwardedBy, "n9")
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var eb api.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != api.NotLeader.HTTPStatus() || eb.Error == nil || eb.Error.Code != api.NotLeader || eb.Error.Leader != leader {
		t.Fatalf("twice-forwarded request: %d %+v, want not_leader naming %s", resp.StatusCode, eb.Error, leader)
	}

	// No leader: a write through the follower is refused, retryably, and not written.
	c.lead(1, -1)
	_, err = c.call(follower, "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "r3", UserID: "u"}, nil)
	if errCode(err) != api.NoLeader {
		t.Fatalf("write without a leader: %v, want no_leader", err)
	}
	if c.entries(1) != before {
		t.Fatalf("refused writes reached the log: %d → %d entries", before, c.entries(1))
	}
}

// A batch is split by group: the items of a group this node leads are answered here, an
// item of a group led elsewhere is answered on its own with not_leader naming that
// group's leader; a batch all of one group led elsewhere is forwarded whole.
func TestHandlers_BatchSplitsByGroup(t *testing.T) {
	c := newUnit(t, unitSpec{nodes: 2, groups: 3})
	skus := skusIn(c, 1, 2, 3)
	for _, sku := range skus {
		c.createSKU(sku, 10)
	}
	c.lead(2, 1)
	item := func(sku, id string, qty int64) api.DeductItem {
		return api.DeductItem{SKU: sku, Qty: qty, RequestID: id, UserID: "u"}
	}
	var out api.BatchDeductResponse
	c.mustCall(c.addr(0), "POST", "/v1/batch/deduct", api.BatchDeductRequest{Items: []api.DeductItem{
		item(skus[0], "a", 1), item(skus[1], "b", 1), item(skus[2], "c", 2), item(skus[1], "d", 1), item(skus[0], "e", 11),
	}}, &out)
	want := []struct {
		code      api.Code
		remaining int64
	}{{api.OK, 9}, {api.NotLeader, 0}, {api.OK, 8}, {api.NotLeader, 0}, {api.InsufficientStock, 0}}
	if len(out.Results) != len(want) {
		t.Fatalf("%d results: %s", len(out.Results), dump(out.Results))
	}
	for i, w := range want {
		r := out.Results[i]
		code := api.OK
		if r.Error != nil {
			code = r.Error.Code
		}
		if code != w.code || r.Remaining != w.remaining {
			t.Errorf("item %d: %+v (error %v), want %+v", i, r, r.Error, w)
		}
		if code == api.NotLeader && (r.Error.Leader != c.addr(1) || !strings.Contains(r.Error.Message, "group 2")) {
			t.Errorf("item %d: %+v: not_leader must name group 2 and its leader %s", i, r.Error, c.addr(1))
		}
	}
	if s, _ := c.store(1, 2).m.GetSKU(skus[1]); s.Available != 10 {
		t.Fatalf("group 2's SKU %+v: an item refused as not_leader was applied", s)
	}

	// All of group 2: the batch goes whole to group 2's leader, which answers every item.
	out = api.BatchDeductResponse{}
	c.mustCall(c.addr(0), "POST", "/v1/batch/deduct", api.BatchDeductRequest{Items: []api.DeductItem{
		item(skus[1], "f", 1), item(skus[1], "g", 2),
	}}, &out)
	if len(out.Results) != 2 || out.Results[0].Error != nil || out.Results[0].Remaining != 9 || out.Results[1].Error != nil || out.Results[1].Remaining != 7 {
		t.Fatalf("batch of a group led elsewhere: %s", dump(out.Results))
	}
}

// An order's lines must share a group; the order is then found by its id in its group, by
// reads and actions alike.
func TestHandlers_OrdersStayInOneGroup(t *testing.T) {
	c := newUnit(t, unitSpec{groups: 3})
	skus := skusIn(c, 2, 3)
	for _, sku := range skus {
		c.createSKU(sku, 5)
	}
	before := c.entries(2) + c.entries(3)
	status, err := c.call(c.addr(0), "POST", "/v1/orders", api.ReserveRequest{OrderID: "x", UserID: "u", TTLMillis: 60_000, RequestID: "rx",
		Lines: []api.Line{{SKU: skus[0], Qty: 1}, {SKU: skus[1], Qty: 1}}}, nil)
	if status != api.CrossGroup.HTTPStatus() || errCode(err) != api.CrossGroup {
		t.Fatalf("order across groups 2 and 3: %d %v, want cross_group", status, err)
	}
	if !strings.Contains(err.Error(), "group 2") || !strings.Contains(err.Error(), "group 3") {
		t.Errorf("cross_group message %q names neither group", err)
	}
	if after := c.entries(2) + c.entries(3); after != before {
		t.Fatalf("a refused order reached the log: %d → %d entries", before, after)
	}

	other := skusIn(c, 3)[0] + "b"
	for c.groupOf(other) != 3 {
		other += "b"
	}
	c.createSKU(other, 5)
	var o api.Order
	c.mustCall(c.addr(0), "POST", "/v1/orders", api.ReserveRequest{OrderID: "o3", UserID: "u", TTLMillis: 60_000, RequestID: "r3",
		Lines: []api.Line{{SKU: skus[1], Qty: 1}, {SKU: other, Qty: 2}}}, &o)
	c.mustCall(c.addr(0), "POST", "/v1/orders/o3/confirm", api.OrderActionRequest{RequestID: "c3"}, &o)
	c.mustCall(c.addr(0), "GET", "/v1/orders/o3", nil, &o)
	if o.Status != api.OrderConfirmed || len(o.Lines) != 2 {
		t.Fatalf("order in group 3: %+v", o)
	}
	if _, err := c.store(0, 3).m.GetOrder("o3", 0); err != nil {
		t.Fatalf("order o3 is not group 3's: %v", err)
	}
	if _, err := c.call(c.addr(0), "GET", "/v1/orders/nowhere", nil, nil); errCode(err) != api.NotFound {
		t.Fatalf("an order in no group: %v, want not_found", err)
	}
}

// A list across groups is one list in SKU order: pages with after and a prefix read as
// from one group; history is its SKU's group's.
func TestHandlers_ListMergesGroupsInSKUOrder(t *testing.T) {
	c := newUnit(t, unitSpec{groups: 3})
	var all []string
	seen := map[uint64]bool{}
	for i := 0; len(all) < 20 || len(seen) < 3; i++ {
		sku := fmt.Sprintf("item-%03d", i*37)
		c.createSKU(sku, int64(i+1))
		all = append(all, sku)
		seen[c.groupOf(sku)] = true
	}
	c.createSKU("other", 1)
	slices.Sort(all)
	for _, consistency := range []string{"strong", "stale"} {
		var got []string
		after := ""
		for range 10 {
			var page api.SKUList
			c.mustCall(c.addr(0), "GET", "/v1/skus?limit=7&prefix=item-&consistency="+consistency+"&after="+url.QueryEscape(after), nil, &page)
			if len(page.SKUs) == 0 {
				break
			}
			if len(page.SKUs) > 7 {
				t.Fatalf("%s page of %d, limit 7", consistency, len(page.SKUs))
			}
			for _, s := range page.SKUs {
				got = append(got, s.SKU)
			}
			after = got[len(got)-1]
		}
		if !slices.Equal(got, all) {
			t.Fatalf("%s pages across groups:\n got %v\nwant %v", consistency, got, all)
		}
	}
	// Freshness is a single group's: a list of several sets none.
	if a := do(t, c.client, "GET", "http://"+c.addr(0)+"/v1/skus", nil, ""); a.header.Get(api.HeaderAppliedIndex) != "" {
		t.Errorf("a list across groups says applied index %q", a.header.Get(api.HeaderAppliedIndex))
	}
	// History is read in the SKU's own group, whichever it is.
	for _, sku := range all[:5] {
		c.mustCall(c.addr(0), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 1, RequestID: "h-" + sku, UserID: "u"}, nil)
		var h api.History
		c.mustCall(c.addr(0), "GET", "/v1/skus/"+sku+"/history", nil, &h)
		if h.SKU != sku || len(h.Movements) != 2 || h.Movements[1].Kind != "deduct" || h.Movements[1].RequestID != "h-"+sku {
			t.Fatalf("history of %s (group %d): %+v", sku, c.groupOf(sku), h)
		}
	}
}

// A retried request id gets its first answer back, marked duplicate: 200 where the first
// was 201, the same body otherwise; another request on the same SKU is a new command.
func TestHandlers_RetriesAnswerTheFirstAnswer(t *testing.T) {
	c := newUnit(t, unitSpec{})
	addr := c.addr(0)
	create := map[string]any{"stock": 5, "request_id": "c1"}
	var s api.SKU
	if status, err := c.call(addr, "PUT", "/v1/skus/tee", create, &s); status != 201 || err != nil || s.Duplicate {
		t.Fatalf("create: %d %+v %v", status, s, err)
	}
	if status, err := c.call(addr, "PUT", "/v1/skus/tee", create, &s); status != 200 || err != nil || !s.Duplicate || s.Available != 5 {
		t.Fatalf("retried create: %d %+v %v, want 200 duplicate", status, s, err)
	}
	if status, err := c.call(addr, "PUT", "/v1/skus/tee", map[string]any{"stock": 5, "request_id": "c2"}, nil); status != 409 || errCode(err) != api.AlreadyExists {
		t.Fatalf("create of an existing SKU under a new request id: %d %v", status, err)
	}
	for i, want := range []api.DeductResponse{{Remaining: 3}, {Remaining: 3, Duplicate: true}} {
		var out api.DeductResponse
		if c.mustCall(addr, "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 2, RequestID: "d1", UserID: "u"}, &out); out != want {
			t.Fatalf("deduct try %d: %+v, want %+v", i+1, out, want)
		}
	}
	reserve := api.ReserveRequest{OrderID: "o1", UserID: "u", TTLMillis: 60_000, RequestID: "r1", Lines: []api.Line{{SKU: "tee", Qty: 1}}}
	var o api.Order
	if status, err := c.call(addr, "POST", "/v1/orders", reserve, &o); status != 201 || err != nil || o.Duplicate {
		t.Fatalf("reserve: %d %+v %v", status, o, err)
	}
	if status, err := c.call(addr, "POST", "/v1/orders", reserve, &o); status != 200 || err != nil || !o.Duplicate {
		t.Fatalf("retried reserve: %d %+v %v, want 200 duplicate", status, o, err)
	}
	if c.mustCall(addr, "GET", "/v1/skus/tee", nil, &s); s.Available != 2 || s.Reserved != 1 || s.Sold != 2 {
		t.Fatalf("after the retries %+v: a retry was applied twice", s)
	}
}

// The deduction's answer is written by hand (writeDeductAnswer), its body read by hand
// when plain (decodeDeduct): over HTTP both must be byte for byte what encoding/json would
// make, whichever way the body was read.
func TestHandlers_DeductAnswerIsTheJSONEncoding(t *testing.T) {
	c := newUnit(t, unitSpec{})
	c.createSKU("tee", 100)
	for i, body := range []string{
		`{"qty":2,"request_id":"p1","user_id":"u"}`,      // plain: read by hand
		`{"qty":2,"request_id":"p\u0031","user_id":"u"}`, // an escape: read by encoding/json, a retry of p1
		` {"user_id":"u", "qty":3, "request_id":"p2"} `,  // plain, another order
	} {
		resp, err := c.client.Post("http://"+c.addr(0)+"/v1/skus/tee/deduct", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got api.DeductResponse
		if resp.StatusCode != 200 || json.Unmarshal(raw, &got) != nil {
			t.Fatalf("body %d: %d %s", i, resp.StatusCode, raw)
		}
		var want bytes.Buffer
		_ = json.NewEncoder(&want).Encode(got)
		if !bytes.Equal(raw, want.Bytes()) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("body %d: answered %q (%s), encoding/json writes %q", i, raw, resp.Header.Get("Content-Type"), want.Bytes())
		}
		if wantDup := i == 1; got.Duplicate != wantDup {
			t.Errorf("body %d: %+v, duplicate should be %v", i, got, wantDup)
		}
	}
}

// A command of an apply level the log is not at yet is refused before it is proposed:
// members on an older build could not decode it.
func TestHandlers_NewKindsWaitForTheApplyLevel(t *testing.T) {
	c := newUnit(t, unitSpec{oldLevel: true})
	c.createSKU("tee", 5)
	before := c.entries(1)
	for _, tc := range []struct{ path, body string }{
		{"/v1/skus/tee/adjust", `{"qty":-1,"reason":"damage","request_id":"a1"}`},
		{"/v1/skus/tee/retire", `{"request_id":"r1"}`},
	} {
		a := do(t, c.client, "POST", "http://"+c.addr(0)+tc.path, tc.body, "")
		if a.status != api.FailedPrecondition.HTTPStatus() || a.err.Code != api.FailedPrecondition || !strings.Contains(a.err.Message, "apply level 1") {
			t.Fatalf("%s at level 0: %d %v", tc.path, a.status, a.err)
		}
	}
	if c.entries(1) != before {
		t.Fatalf("refused commands reached the log: %d → %d entries", before, c.entries(1))
	}
	c.mustCall(c.addr(0), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "d1", UserID: "u"}, nil)
}

// Every route of the table is wrapped in the role the table gives it: no token is 401,
// a token one role short is 403, and the refusal comes before the handler, whatever it
// would do.
func TestHandlers_EveryRouteAsksTheRoleOfTheTable(t *testing.T) {
	c := newUnit(t, unitSpec{config: func(cfg *Config) {
		cfg.Auth, cfg.EnablePprof, cfg.UI = testTokens(t), true, http.NotFoundHandler()
	}})
	short := map[Role]string{RoleRead: "", RoleApp: readTok, RoleAdmin: appTok}
	path := strings.NewReplacer("{sku}", "tee", "{id}", "o1", "{action}", "confirm", "{$}", "")
	checked := 0
	for _, rt := range c.nodes[0].routeTable() {
		if rt.role == RoleNone {
			continue
		}
		method, p, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			method, p = "GET", rt.pattern
		}
		u := "http://" + c.addr(0) + path.Replace(p)
		if a := do(t, c.client, method, u, nil, ""); a.status != 401 || a.err.Code != api.Unauthorized {
			t.Errorf("%s without a token: %d %v, want 401", rt.pattern, a.status, a.err)
		}
		if tok := short[rt.role]; tok != "" {
			if a := do(t, c.client, method, u, nil, tok); a.status != 403 || a.err.Code != api.Unauthorized {
				t.Errorf("%s with a token below %v: %d %v, want 403", rt.pattern, rt.role, a.status, a.err)
			}
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d routes checked", checked)
	}
}

// A watch streams the SKU's state at once and after each change; a SKU this node does not
// have is refused before the stream starts.
func TestHandlers_WatchStreamsTheSKU(t *testing.T) {
	c := newUnit(t, unitSpec{nodes: 2})
	c.createSKU("tee", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next, resp := watch(t, ctx, c.addr(1), "tee") // a follower watches its own state
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	if s := next(); s.Available != 10 || s.SKU != "tee" {
		t.Fatalf("first event %+v", s)
	}
	for i, want := range []int64{9, 7} {
		c.mustCall(c.addr(0), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: int64(i + 1), RequestID: fmt.Sprint("w", i), UserID: "u"}, nil)
		if s := next(); s.Available != want {
			t.Fatalf("event after deduction %d: %+v, want %d available", i, s, want)
		}
	}
	if _, err := c.call(c.addr(1), "GET", "/v1/skus/nope/watch", nil, nil); errCode(err) != api.NotFound {
		t.Fatalf("watch of an unknown SKU: %v, want not_found", err)
	}
}

// The rate limit charges what the table says: one token for every API route, a batch's
// items for the batch (its handler charges them), nothing for probes, metrics and pages.
// With the bucket empty and a clock that stands still, every charged route is refused with
// 429 before its handler runs.
func TestHandlers_RateLimitChargesWhatTheTableSays(t *testing.T) {
	c := newUnit(t, unitSpec{config: func(cfg *Config) {
		cfg.RateLimit, cfg.RateBurst = 1, 1
		cfg.EnablePprof, cfg.UI = true, http.NotFoundHandler()
	}})
	if a := do(t, c.client, "PUT", "http://"+c.addr(0)+"/v1/skus/tee", `{"stock":5}`, ""); a.status != 201 {
		t.Fatalf("create with the one token: %d %v", a.status, a.err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	path := strings.NewReplacer("{sku}", "tee", "{id}", "o1", "{action}", "confirm", "{$}", "")
	charged := 0
	for _, rt := range c.nodes[0].routeTable() {
		method, p, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			method, p = "GET", rt.pattern
		}
		body := ""
		if rt.perItem {
			body = `{"items":[{"sku":"tee","qty":1,"request_id":"b1","user_id":"u"}]}`
		}
		isAPI := strings.HasPrefix(p, "/v1/")
		if !isAPI && p != "/healthz" && p != "/metrics" && p != "/ui/" && p != "/{$}" {
			continue // uncharged too, but their handlers are not the unit tier's (raft state, profiles)
		}
		req, _ := http.NewRequest(method, "http://"+c.addr(0)+path.Replace(p), strings.NewReader(body))
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", rt.pattern, err)
		}
		resp.Body.Close()
		if refused := resp.StatusCode == http.StatusTooManyRequests; refused != isAPI {
			t.Errorf("%s with an empty bucket: %d, refused %v, want %v", rt.pattern, resp.StatusCode, refused, isAPI)
		}
		if isAPI && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After", rt.pattern)
		}
		if isAPI {
			charged++
		}
	}
	if charged < 15 {
		t.Fatalf("only %d charged routes checked", charged)
	}
	if s, _ := c.store(0, 1).m.GetSKU("tee"); s.Available != 5 {
		t.Fatalf("a refused request reached the state: %+v", s)
	}
}

// Errors of the write and read paths reach the client in the wire's vocabulary, raft's own
// included: whether to retry, and where, is in the code; a refusal to take a request
// names the leader.
func TestHandlers_ErrorsSpeakTheAPIsCodes(t *testing.T) {
	c := newUnit(t, unitSpec{nodes: 2})
	n := c.nodes[1]
	for _, tc := range []struct {
		err    error
		code   api.Code
		status int
	}{
		{raft.ErrNotLeader, api.NotLeader, api.NotLeader.HTTPStatus()},
		{fmt.Errorf("apply: %w", raft.ErrLeadershipTransferInProgress), api.NotLeader, api.NotLeader.HTTPStatus()},
		{raft.ErrLeadershipLost, api.NoLeader, api.NoLeader.HTTPStatus()},
		{raft.ErrRaftShutdown, api.NoLeader, api.NoLeader.HTTPStatus()},
		{raft.ErrEnqueueTimeout, api.Overloaded, api.Overloaded.HTTPStatus()},
		{context.DeadlineExceeded, api.Timeout, api.Timeout.HTTPStatus()},
		{errNotLeader, api.NotLeader, api.NotLeader.HTTPStatus()},
		{errOverloaded, api.Overloaded, api.Overloaded.HTTPStatus()},
		{errTooLarge, api.InvalidArgument, http.StatusRequestEntityTooLarge},
		{errors.New("disk on fire"), api.Internal, 500},
	} {
		w := httptest.NewRecorder()
		n.writeError(w, tc.err)
		var eb api.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error == nil {
			t.Fatalf("%v: body %q", tc.err, w.Body.Bytes())
		}
		if w.Code != tc.status || eb.Error.Code != tc.code || eb.Error.Message == "" {
			t.Errorf("%v: %d %+v, want %d %s", tc.err, w.Code, eb.Error, tc.status, tc.code)
		}
		if hinted := eb.Error.Leader != ""; hinted != (tc.code == api.NotLeader || tc.code == api.NoLeader) {
			t.Errorf("%v: leader hint %q", tc.err, eb.Error.Leader)
		}
		if retry := w.Header().Get("Retry-After"); (retry != "") != (tc.code == api.Overloaded) {
			t.Errorf("%v: Retry-After %q", tc.err, retry)
		}
	}
	if errNotLeader.Leader != "" {
		t.Fatalf("the shared not_leader sentinel was written into: %+v", errNotLeader)
	}
}
