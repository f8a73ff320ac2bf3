package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

// refusal is a request the API must refuse, and how.
type refusal struct {
	name, method, path, body string
	status                   int
	code                     api.Code
}

func TestHTTP_BadInputIsRejectedAndChangesNothing(t *testing.T) {
	c := newUnit(t, unitSpec{})
	c.createSKU("tee", 5)
	addr := c.addr(0)
	c.mustCall(addr, "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 5, RequestID: "all", UserID: "u"}, nil)
	c.createSKU("cap", 3)
	var before api.SKUList
	c.mustCall(addr, "GET", "/v1/skus", nil, &before)

	long := strings.Repeat("x", 129)
	cases := []refusal{
		{"unknown route", "GET", "/v2/nothing", "", 404, api.NotFound},
		{"wrong method", "DELETE", "/v1/skus/tee", "", 405, api.MethodNotAllowed},
		{"bad sku id", "PUT", "/v1/skus/bad!id", `{"stock":1}`, 400, api.InvalidArgument},
		{"sku id too long", "PUT", "/v1/skus/" + strings.Repeat("a", 65), `{"stock":1}`, 400, api.InvalidArgument},
		{"missing stock", "PUT", "/v1/skus/new", `{}`, 400, api.InvalidArgument},
		{"negative stock", "PUT", "/v1/skus/new", `{"stock":-1}`, 400, api.InvalidArgument},
		{"stock too large", "PUT", "/v1/skus/new", `{"stock":1000000001}`, 400, api.InvalidArgument},
		{"stock as string", "PUT", "/v1/skus/new", `{"stock":"5"}`, 400, api.InvalidArgument},
		{"fractional stock", "PUT", "/v1/skus/new", `{"stock":1.5}`, 400, api.InvalidArgument},
		{"unknown field", "PUT", "/v1/skus/new", `{"stock":1,"colour":"red"}`, 400, api.InvalidArgument},
		{"malformed json", "PUT", "/v1/skus/new", `{"stock":`, 400, api.InvalidArgument},
		{"trailing data", "PUT", "/v1/skus/new", `{"stock":1} {}`, 400, api.InvalidArgument},
		{"empty body", "PUT", "/v1/skus/new", ``, 400, api.InvalidArgument},
		{"create existing", "PUT", "/v1/skus/cap", `{"stock":9}`, 409, api.AlreadyExists},
		{"qty zero", "POST", "/v1/skus/cap/deduct", `{"qty":0,"request_id":"a","user_id":"u"}`, 400, api.InvalidArgument},
		{"qty too large", "POST", "/v1/skus/cap/deduct", `{"qty":1000000001,"request_id":"a","user_id":"u"}`, 400, api.InvalidArgument},
		{"no request id", "POST", "/v1/skus/cap/deduct", `{"qty":1,"user_id":"u"}`, 400, api.InvalidArgument},
		{"request id too long", "POST", "/v1/skus/cap/deduct", `{"qty":1,"request_id":"` + long + `","user_id":"u"}`, 400, api.InvalidArgument},
		{"request id not printable", "POST", "/v1/skus/cap/deduct", `{"qty":1,"request_id":"a\u0001","user_id":"u"}`, 400, api.InvalidArgument},
		{"no user", "POST", "/v1/skus/cap/deduct", `{"qty":1,"request_id":"a"}`, 400, api.InvalidArgument},
		{"unknown sku", "POST", "/v1/skus/nope/deduct", `{"qty":1,"request_id":"b","user_id":"u"}`, 404, api.NotFound},
		{"sold out", "POST", "/v1/skus/tee/deduct", `{"qty":1,"request_id":"c","user_id":"u"}`, 409, api.SoldOut},
		{"insufficient", "POST", "/v1/skus/cap/deduct", `{"qty":4,"request_id":"d","user_id":"u"}`, 409, api.InsufficientStock},
		{"restock qty zero", "POST", "/v1/skus/cap/restock", `{"qty":0,"request_id":"e"}`, 400, api.InvalidArgument},
		{"bad consistency", "GET", "/v1/skus/cap?consistency=eventual", "", 400, api.InvalidArgument},
		{"bad limit", "GET", "/v1/skus?limit=0", "", 400, api.InvalidArgument},
		{"unknown sku read", "GET", "/v1/skus/nope", "", 404, api.NotFound},
		{"order without lines", "POST", "/v1/orders", `{"order_id":"o","user_id":"u","lines":[],"ttl_ms":1000,"request_id":"f"}`, 400, api.InvalidArgument},
		{"order ttl zero", "POST", "/v1/orders", `{"order_id":"o","user_id":"u","lines":[{"sku":"cap","qty":1}],"ttl_ms":0,"request_id":"f"}`, 400, api.InvalidArgument},
		{"order line qty zero", "POST", "/v1/orders", `{"order_id":"o","user_id":"u","lines":[{"sku":"cap","qty":0}],"ttl_ms":10,"request_id":"f"}`, 400, api.InvalidArgument},
		{"confirm unknown order", "POST", "/v1/orders/zz/confirm", `{"request_id":"g"}`, 404, api.NotFound},
		{"unknown order action", "POST", "/v1/orders/zz/refund", `{"request_id":"g"}`, 404, api.NotFound},
		{"body over 1 MiB", "PUT", "/v1/skus/big", `{"stock":1,"request_id":"` + strings.Repeat("x", 1<<20) + `"}`, 413, api.InvalidArgument},
	}
	// The messages speak of the request's JSON, never of the Go types behind it.
	wantMessage := map[string]string{
		"wrong method":     "method DELETE not allowed on /v1/skus/tee (allowed: GET, HEAD, PUT)",
		"stock as string":  "stock: must be an integer",
		"fractional stock": "stock: must be an integer",
		"unknown field":    `unknown field "colour"`,
		"malformed json":   "malformed JSON: the body ends inside a value",
	}
	refused(t, &c.apiClient, addr, cases, wantMessage)
	var after api.SKUList
	c.mustCall(addr, "GET", "/v1/skus", nil, &after)
	if len(after.SKUs) != len(before.SKUs) {
		t.Fatalf("SKUs %+v → %+v", before.SKUs, after.SKUs)
	}
	for i := range before.SKUs {
		if before.SKUs[i] != after.SKUs[i] {
			t.Fatalf("rejected requests changed %+v → %+v", before.SKUs[i], after.SKUs[i])
		}
	}
}

// Membership changes are refused by raft's configuration, so these need a raft cluster.
func TestHTTP_BadMembershipChangeIsRejected(t *testing.T) {
	c := newCluster(t, 1, nil)
	refused(t, &c.apiClient, c.Node(0).HTTPAddr(), []refusal{
		{"join without id", "POST", "/v1/cluster/members", `{"raft_addr":"1.2.3.4:5","http_addr":"1.2.3.4:6"}`, 400, api.InvalidArgument},
		{"leave unknown member", "DELETE", "/v1/cluster/members/zz", "", 404, api.NotFound},
		{"leave last voter", "DELETE", "/v1/cluster/members/n1", "", 409, api.FailedPrecondition},
	}, nil)
}

// refused sends each case to addr and checks its status, its code and that its body is the
// contract's error body, with the message of wantMessage[name] when one is given.
func refused(t *testing.T, c *apiClient, addr string, cases []refusal, wantMessage map[string]string) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, strings.NewReader(tc.body))
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, raw)
			}
			var eb api.ErrorBody
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&eb); err != nil || eb.Error == nil {
				t.Fatalf("no error body: %s (%v)", raw, err)
			}
			if eb.Error.Code != tc.code || eb.Error.Message == "" {
				t.Fatalf("error %+v, want code %s with a message", eb.Error, tc.code)
			}
			if want, ok := wantMessage[tc.name]; ok && eb.Error.Message != want {
				t.Errorf("message %q, want %q", eb.Error.Message, want)
			}
			for _, internal := range []string{"Go struct", "json:", "unmarshal", "int64", "api."} {
				if strings.Contains(eb.Error.Message, internal) {
					t.Errorf("message %q leaks %q", eb.Error.Message, internal)
				}
			}
		})
	}
}

func TestHTTP_OrderFlowAndHistory(t *testing.T) {
	c := newUnit(t, unitSpec{})
	c.createSKU("tee", 5)
	addr := c.addr(0)
	var o api.Order
	code, err := c.call(addr, "POST", "/v1/orders", api.ReserveRequest{OrderID: "o1", UserID: "u", Lines: []api.Line{{SKU: "tee", Qty: 2}}, TTLMillis: 60_000, RequestID: "r1"}, &o)
	if err != nil || code != 201 || o.Status != api.OrderHeld {
		t.Fatalf("reserve: %d %+v %v", code, o, err)
	}
	c.mustCall(addr, "POST", "/v1/orders/o1/confirm", api.OrderActionRequest{RequestID: "c1"}, &o)
	if o.Status != api.OrderConfirmed {
		t.Fatalf("confirm: %+v", o)
	}
	if _, err := c.call(addr, "POST", "/v1/orders/o1/cancel", api.OrderActionRequest{RequestID: "x1"}, nil); err == nil || err.(*api.Error).Code != api.FailedPrecondition {
		t.Fatalf("cancel of a confirmed order: %v", err)
	}
	c.mustCall(addr, "POST", "/v1/orders/o1/ship", api.OrderActionRequest{RequestID: "s1"}, &o)
	c.mustCall(addr, "GET", "/v1/orders/o1", nil, &o)
	if o.Status != api.OrderShipped {
		t.Fatalf("order %+v", o)
	}
	var h api.History
	c.mustCall(addr, "GET", "/v1/skus/tee/history", nil, &h)
	var kinds []string
	for _, m := range h.Movements {
		kinds = append(kinds, m.Kind)
	}
	if strings.Join(kinds, ",") != "create,reserve,confirm" {
		t.Fatalf("history %v", kinds)
	}
}

// A hold left alone expires on the leader's timer and its units come back (the order
// reads as expired as soon as its hold is over, maybe before the timer released it).
func TestHTTP_HoldExpiresOnTheLeadersTimer(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.createSKU("tee", 5)
	addr := c.Node(0).HTTPAddr()
	var o api.Order
	c.mustCall(addr, "POST", "/v1/orders", api.ReserveRequest{OrderID: "o1", UserID: "u", Lines: []api.Line{{SKU: "tee", Qty: 2}}, TTLMillis: 60_000, RequestID: "r1"}, &o)
	c.mustCall(addr, "POST", "/v1/orders/o1/confirm", api.OrderActionRequest{RequestID: "c1"}, &o)
	c.mustCall(addr, "POST", "/v1/orders", api.ReserveRequest{OrderID: "o2", UserID: "u", Lines: []api.Line{{SKU: "tee", Qty: 3}}, TTLMillis: 50, RequestID: "r2"}, &o)
	var s api.SKU
	eventually(t, 5*time.Second, func() error {
		c.mustCall(addr, "GET", "/v1/orders/o2", nil, &o)
		c.mustCall(addr, "GET", "/v1/skus/tee", nil, &s)
		if o.Status != api.OrderExpired || s.Reserved != 0 {
			return fmt.Errorf("order o2 is %s, sku %+v", o.Status, s)
		}
		return nil
	})
	if s.Available != 3 || s.Sold != 2 {
		t.Fatalf("sku %+v", s)
	}
}

// With no expiry round to release it, an order past its hold is still expired for every
// read and every action, and the first action releases it (the ledger says expire).
func TestHTTP_OrderPastItsHoldIsExpiredForEveryActionAndRead(t *testing.T) {
	c := newUnit(t, unitSpec{}) // no expiry rounds: nothing but the requests below writes
	c.createSKU("tee", 5)
	addr := c.addr(0)
	var o api.Order
	c.mustCall(addr, "POST", "/v1/orders", api.ReserveRequest{OrderID: "o1", UserID: "u", Lines: []api.Line{{SKU: "tee", Qty: 2}}, TTLMillis: 50, RequestID: "r1"}, &o)
	if c.mustCall(addr, "GET", "/v1/orders/o1", nil, &o); o.Status != api.OrderHeld {
		t.Fatalf("order o1 within its hold reads %s", o.Status)
	}
	c.advance(50 * time.Millisecond)
	if c.mustCall(addr, "GET", "/v1/orders/o1", nil, &o); o.Status != api.OrderExpired {
		t.Fatalf("order o1 at the end of its hold reads %s", o.Status)
	}
	var s api.SKU
	if c.mustCall(addr, "GET", "/v1/skus/tee", nil, &s); s.Reserved != 2 {
		t.Fatalf("sku %+v: the read alone releases nothing", s)
	}
	for _, action := range []string{"confirm", "cancel", "ship"} {
		_, err := c.call(addr, "POST", "/v1/orders/o1/"+action, api.OrderActionRequest{RequestID: action}, nil)
		if ae, ok := err.(*api.Error); !ok || ae.Code != api.Expired {
			t.Fatalf("%s of an order past its hold: %v", action, err)
		}
	}
	if c.mustCall(addr, "GET", "/v1/skus/tee", nil, &s); s.Available != 5 || s.Reserved != 0 {
		t.Fatalf("sku %+v: the first action releases the hold", s)
	}
	var h api.History
	c.mustCall(addr, "GET", "/v1/skus/tee/history", nil, &h)
	var kinds []string
	for _, m := range h.Movements {
		kinds = append(kinds, m.Kind)
	}
	if strings.Join(kinds, ",") != "create,reserve,expire" {
		t.Fatalf("history %v", kinds)
	}
}

// TestDecodeStrict_NamesTheJSONFieldNotTheGoType: a body of the wrong shape is described
// by its JSON path and what the field must hold, at any depth.
func TestDecodeStrict_NamesTheJSONFieldNotTheGoType(t *testing.T) {
	for _, tc := range []struct {
		body string
		into any
		want string
	}{
		{`{"qty":"1","request_id":"r","user_id":"u"}`, &api.DeductRequest{}, "qty: must be an integer"},
		{`{"qty":1,"request_id":7,"user_id":"u"}`, &api.DeductRequest{}, "request_id: must be a string"},
		{`{"order_id":"o","lines":[{"sku":"tee","qty":"2"}]}`, &api.ReserveRequest{}, "lines.qty: must be an integer"},
		{`{"order_id":"o","lines":{"sku":"tee"}}`, &api.ReserveRequest{}, "lines: must be an array"},
		{`{"id":"n4","nonvoter":"yes"}`, &api.JoinRequest{}, "nonvoter: must be true or false"},
		{`[1,2]`, &api.DeductRequest{}, "the body must be a JSON object"},
		{`{"qty":1,}`, &api.DeductRequest{}, "malformed JSON at byte 10: invalid character '}' looking for beginning of object key string"},
	} {
		err := decodeStrict([]byte(tc.body), tc.into)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.InvalidArgument || ae.Message != tc.want {
			t.Errorf("%s: %v, want invalid_argument %q", tc.body, err, tc.want)
		}
	}
}

func TestHTTP_AdjustAndRetire(t *testing.T) {
	c := newUnit(t, unitSpec{})
	c.createSKU("tee", 10)
	addr := c.addr(0)
	var s api.SKU
	c.mustCall(addr, "POST", "/v1/skus/tee/adjust", api.AdjustRequest{Qty: -3, Reason: "damage", RequestID: "a1"}, &s)
	if s.Available != 7 || s.Duplicate {
		t.Fatalf("after adjust: %+v", s)
	}
	// The retry is the first answer, not a second adjustment.
	c.mustCall(addr, "POST", "/v1/skus/tee/adjust", api.AdjustRequest{Qty: -3, Reason: "damage", RequestID: "a1"}, &s)
	if s.Available != 7 || !s.Duplicate {
		t.Fatalf("retry of adjust: %+v", s)
	}
	for _, tc := range []struct {
		body   api.AdjustRequest
		status int
		code   api.Code
	}{
		{api.AdjustRequest{Qty: -8, Reason: "damage", RequestID: "a2"}, 409, api.InsufficientStock},
		{api.AdjustRequest{Qty: -1, RequestID: "a3"}, 400, api.InvalidArgument},
		{api.AdjustRequest{Qty: 0, Reason: "miscount", RequestID: "a4"}, 400, api.InvalidArgument},
	} {
		status, err := c.call(addr, "POST", "/v1/skus/tee/adjust", tc.body, nil)
		if status != tc.status || errCode(err) != tc.code {
			t.Fatalf("adjust %+v: %d %v, want %d %s", tc.body, status, err, tc.status, tc.code)
		}
	}
	c.mustCall(addr, "POST", "/v1/skus/tee/retire", api.RetireRequest{RequestID: "r1"}, &s)
	if !s.Retired || s.Available != 0 {
		t.Fatalf("after retire: %+v", s)
	}
	c.mustCall(addr, "GET", "/v1/skus/tee", nil, &s)
	if !s.Retired {
		t.Fatalf("read of a retired sku: %+v", s)
	}
	// A first try of a deduction is not answered sold_out from the fast path: the SKU is
	// retired, and the log says so.
	if status, err := c.deductTry(addr, "tee", "d1", 1, 1); status != 409 || errCode(err) != api.FailedPrecondition {
		t.Fatalf("deduct of a retired sku: %d %v", status, err)
	}
	if status, err := c.call(addr, "PUT", "/v1/skus/tee", map[string]any{"stock": 1}, nil); status != 409 || errCode(err) != api.AlreadyExists {
		t.Fatalf("re-create of a retired sku: %d %v", status, err)
	}
	var h api.History
	c.mustCall(addr, "GET", "/v1/skus/tee/history", nil, &h)
	var got []string
	for _, m := range h.Movements {
		got = append(got, fmt.Sprintf("%s:%d:%s", m.Kind, m.Qty, m.Reason))
	}
	if strings.Join(got, ",") != "create:10:,adjust:-3:damage,retire:-7:" {
		t.Fatalf("history %v", got)
	}
}

// errCode is the wire code of an error call returned, or "".
func errCode(err error) api.Code {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}
