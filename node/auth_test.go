package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

// answer is one HTTP exchange as a test sees it.
type answer struct {
	status int
	header http.Header
	err    *api.Error // the contract's error body of a non-2xx answer
	body   []byte
}

// do sends one request with an optional bearer token; url is complete (scheme included).
func do(t testing.TB, cl *http.Client, method, url string, body any, token string) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: raw}
	if resp.StatusCode/100 != 2 {
		var eb api.ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error == nil {
			t.Fatalf("%s %s: HTTP %d without the contract's error body: %s", method, url, resp.StatusCode, raw)
		}
		a.err = eb.Error
	}
	return a
}

const (
	adminTok = "admin-0123456789abcdef"
	appTok   = "app-0123456789abcdef"
	readTok  = "read-0123456789abcdef"
)

func testTokens(t testing.TB) *Tokens {
	t.Helper()
	tk, err := ParseTokens(strings.NewReader("# roles\nadmin " + adminTok + "\n\napp " + appTok + "\nread " + readTok + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTokens_ParseNamesEveryProblem(t *testing.T) {
	_, err := ParseTokens(strings.NewReader("boss 0123456789abcdefgh\napp short\nread\napp 0123456789abcdefgh\nread 0123456789abcdefgh\n"))
	if err == nil {
		t.Fatal("a bad token file was accepted")
	}
	for _, want := range []string{"line 1: unknown role", "line 2: token shorter", "line 3: want", "line 5: token listed twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := ParseTokens(strings.NewReader("app 0123456789abcdefgh\n")); err == nil || !strings.Contains(err.Error(), "no admin token") {
		t.Errorf("a file without an admin token: %v", err)
	}
}

func TestTokens_LookupFindsTheRole(t *testing.T) {
	tk := testTokens(t)
	for tok, want := range map[string]Role{adminTok: RoleAdmin, appTok: RoleApp, readTok: RoleRead} {
		e, ok := tk.lookup(tok)
		if !ok || e.role != want {
			t.Errorf("%s: %v %v, want %v", tok, e.role, ok, want)
		}
	}
	for _, bad := range []string{"", "app-0123456789abcde", "app-0123456789abcdeff", strings.ToUpper(appTok)} {
		if e, ok := tk.lookup(bad); ok {
			t.Errorf("%q accepted as %v", bad, e.role)
		}
	}
}

// TestRouteTable_OneEntryPerPattern: the table is the only list of routes, so a pattern
// listed twice would be a second, contradicting rule (ServeMux would also panic at start).
func TestRouteTable_OneEntryPerPattern(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range allRoutes() {
		if seen[p] {
			t.Errorf("route %q is listed twice", p)
		}
		seen[p] = true
	}
	if len(seen) < 20 {
		t.Fatalf("found only %d routes", len(seen))
	}
}

// allRoutes are the patterns a node serves with pprof and the dashboard on.
func allRoutes() []string {
	n := &Node{cfg: Config{EnablePprof: true, UI: http.NotFoundHandler()}}
	var out []string
	for _, rt := range n.routeTable() {
		out = append(out, rt.pattern)
	}
	return out
}

func TestAuth_RolesThroughFollowersAndInternalCalls(t *testing.T) {
	tk := testTokens(t)
	c := newCluster(t, 3, func(cfg *Config) { cfg.Auth = tk }) // the joins themselves need the internal token
	li, l := c.WaitLeader()
	f := c.Node((li + 1) % 3)
	cl := c.client
	url := func(n *Node, path string) string { return "http://" + n.HTTPAddr() + path }

	if a := do(t, cl, "PUT", url(f, "/v1/skus/tee"), `{"stock":10}`, appTok); a.status != 201 {
		t.Fatalf("create with the app token through a follower: %d %v", a.status, a.err)
	}
	deduct := func(id string) string { return `{"qty":1,"request_id":"` + id + `","user_id":"u"}` }
	cases := []struct {
		name, method, path, body, token string
		status                          int
	}{
		{"no token", "POST", "/v1/skus/tee/deduct", deduct("a"), "", 401},
		{"unknown token", "POST", "/v1/skus/tee/deduct", deduct("a"), "app-0123456789abcdeX", 401},
		{"read token on a sale", "POST", "/v1/skus/tee/deduct", deduct("a"), readTok, 403},
		{"app token on membership", "DELETE", "/v1/cluster/members/" + f.ID(), "", appTok, 403},
		{"app token on backup", "GET", "/v1/backup", "", appTok, 403},
		{"read without a token", "GET", "/v1/skus/tee", "", "", 401},
		{"metrics without a token", "GET", "/metrics", "", "", 401},
	}
	for _, tc := range cases {
		a := do(t, cl, tc.method, url(f, tc.path), tc.body, tc.token)
		if a.status != tc.status || a.err == nil || a.err.Code != api.Unauthorized {
			t.Errorf("%s: %d %v, want %d unauthorized", tc.name, a.status, a.err, tc.status)
		}
	}
	// Basic auth is not a bearer token.
	req, _ := http.NewRequest("GET", url(f, "/v1/skus/tee"), nil)
	req.SetBasicAuth("admin", adminTok)
	if resp, err := cl.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("basic auth: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Nothing refused reached the log: the SKU is untouched.
	var s api.SKU
	if a := do(t, cl, "GET", url(l, "/v1/skus/tee"), nil, readTok); a.status != 200 || json.Unmarshal(a.body, &s) != nil || s.Sold != 0 {
		t.Fatalf("sku after refusals: %d %s", a.status, a.body)
	}
	// The right roles pass, forwarded by a follower with the client's own token.
	if a := do(t, cl, "POST", url(f, "/v1/skus/tee/deduct"), deduct("ok"), appTok); a.status != 200 {
		t.Fatalf("deduct with the app token through a follower: %d %v", a.status, a.err)
	}
	if a := do(t, cl, "POST", url(f, "/v1/skus/tee/deduct"), deduct("ok2"), adminTok); a.status != 200 {
		t.Fatalf("admin may do what app may: %d %v", a.status, a.err)
	}
	if a := do(t, cl, "GET", url(f, "/v1/skus/tee"), nil, readTok); a.status != 200 {
		t.Fatalf("strong read forwarded with the read token: %d %v", a.status, a.err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if a := do(t, cl, "GET", url(f, path), nil, ""); a.status != 200 {
			t.Errorf("%s must stay open for probes: %d %v", path, a.status, a.err)
		}
	}
	// The cluster view asks every member for its own state with the internal token: no
	// member shows up as unreachable.
	var view api.Cluster
	if a := do(t, cl, "GET", url(f, "/v1/cluster"), nil, readTok); a.status != 200 || json.Unmarshal(a.body, &view) != nil {
		t.Fatalf("cluster view: %d %s", a.status, a.body)
	}
	for _, m := range view.Nodes {
		if m.Role == api.RoleUnknown {
			t.Errorf("member %s unknown in the cluster view: internal calls were refused?", m.ID)
		}
	}
}

func TestAuth_PublicReads(t *testing.T) {
	c := newUnit(t, unitSpec{config: func(cfg *Config) { cfg.Auth, cfg.PublicReads = testTokens(t), true }})
	addr := "http://" + c.addr(0)
	do(t, c.client, "PUT", addr+"/v1/skus/tee", `{"stock":3}`, appTok)
	if a := do(t, c.client, "GET", addr+"/v1/skus/tee", nil, ""); a.status != 200 {
		t.Fatalf("public read: %d %v", a.status, a.err)
	}
	if a := do(t, c.client, "POST", addr+"/v1/skus/tee/deduct", `{"qty":1,"request_id":"r","user_id":"u"}`, ""); a.status != 401 {
		t.Fatalf("writes still need a token: %d %v", a.status, a.err)
	}
}

func TestRateLimit_PerClientWithRetryAfterAndBatchItems(t *testing.T) {
	c := newUnit(t, unitSpec{config: func(cfg *Config) {
		cfg.Auth = testTokens(t)
		// A refill this slow makes the test independent of how fast the machine is.
		cfg.RateLimit, cfg.RateBurst = 0.001, 4
	}})
	addr := "http://" + c.addr(0)
	if a := do(t, c.client, "PUT", addr+"/v1/skus/tee", `{"stock":100}`, appTok); a.status != 201 {
		t.Fatalf("create: %d %v", a.status, a.err)
	}
	// A batch of three items costs three of the four tokens.
	batch := api.BatchDeductRequest{}
	for i := range 3 {
		batch.Items = append(batch.Items, api.DeductItem{SKU: "tee", Qty: 1, RequestID: fmt.Sprintf("b%d", i), UserID: "u"})
	}
	if a := do(t, c.client, "POST", addr+"/v1/batch/deduct", batch, appTok); a.status != 200 {
		t.Fatalf("batch within the limit: %d %v", a.status, a.err)
	}
	a := do(t, c.client, "GET", addr+"/v1/skus/tee", nil, appTok)
	if a.status != 429 || a.err.Code != api.Overloaded {
		t.Fatalf("over the limit: %d %v", a.status, a.err)
	}
	if ra := a.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("429 without a useful Retry-After: %q", ra)
	}
	// Another client (another token) has its own bucket; health probes are never limited.
	if a := do(t, c.client, "GET", addr+"/v1/skus/tee", nil, readTok); a.status != 200 {
		t.Fatalf("another token: %d %v", a.status, a.err)
	}
	if a := do(t, c.client, "GET", addr+"/healthz", nil, ""); a.status != 200 {
		t.Fatalf("healthz: %d %v", a.status, a.err)
	}
	// Oversized bodies are refused (413) once past the limit, token or not.
	big := `{"stock":1,"request_id":"` + strings.Repeat("x", 1<<20) + `"}`
	if a := do(t, c.client, "PUT", addr+"/v1/skus/big", big, adminTok); a.status != 413 {
		t.Fatalf("oversized body: %d %v", a.status, a.err)
	}
}

func TestRateLimiter_RefillsAndForgetsIdleClients(t *testing.T) {
	now := time.Unix(0, 0)
	l := newRateLimiter(10, 2, func() time.Time { return now })
	for i := range 2 {
		if ok, _ := l.allow("a", 1); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	ok, wait := l.allow("a", 1)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("over the burst: %v, wait %v", ok, wait)
	}
	now = now.Add(100 * time.Millisecond)
	if ok, _ := l.allow("a", 1); !ok {
		t.Fatal("refused after the refill")
	}
	// A cost above the burst passes on a full bucket and leaves it in debt.
	if ok, _ := l.allow("b", 5); !ok {
		t.Fatal("a big batch on a full bucket was refused")
	}
	if ok, wait := l.allow("b", 1); ok || wait != 400*time.Millisecond {
		t.Fatalf("after the debt: %v, wait %v", ok, wait)
	}
	now = now.Add(sweepEvery)
	l.allow("c", 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.buckets["a"]; ok || len(l.buckets) != 1 {
		t.Fatalf("idle buckets kept: %v", l.buckets)
	}
}
