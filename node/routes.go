package node

import (
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flashstock/flashstock/api"
)

// route is one entry of the API: its pattern, what serves it, the role it needs when auth
// is on, and how the per-client rate limit charges it. routeTable is the only list of
// routes; the auth, rate-limit and metrics wrappers are built per route from it, once, so
// a request is matched once, by the ServeMux, and never again by a middleware.
type route struct {
	pattern string
	// role is what auth asks of the token. RoleRead becomes public with
	// Config.PublicReads; RoleNone needs no token at all.
	role Role
	// perItem: the handler charges the rate limit itself, per item (the batch deduction);
	// every other route costs one token.
	perItem bool
	handler http.Handler
}

// routeTable lists every route this node serves under its configuration.
func (n *Node) routeTable() []route {
	f := func(h func(http.ResponseWriter, *http.Request)) http.Handler { return http.HandlerFunc(h) }
	rs := []route{
		{pattern: "PUT /v1/skus/{sku}", role: RoleApp, handler: f(n.handleCreateSKU)},
		{pattern: "GET /v1/skus/{sku}", role: RoleRead, handler: f(n.handleGetSKU)},
		{pattern: "GET /v1/skus", role: RoleRead, handler: f(n.handleListSKUs)},
		{pattern: "POST /v1/skus/{sku}/restock", role: RoleApp, handler: f(n.handleRestock)},
		{pattern: "POST /v1/skus/{sku}/deduct", role: RoleApp, handler: f(n.handleDeduct)},
		// Correcting and retiring stock is the merchant's business, like creating it: app.
		{pattern: "POST /v1/skus/{sku}/adjust", role: RoleApp, handler: f(n.handleAdjust)},
		{pattern: "POST /v1/skus/{sku}/retire", role: RoleApp, handler: f(n.handleRetire)},
		{pattern: "POST /v1/batch/deduct", role: RoleApp, perItem: true, handler: f(n.handleBatchDeduct)},
		{pattern: "GET /v1/skus/{sku}/history", role: RoleRead, handler: f(n.handleHistory)},
		{pattern: "GET /v1/skus/{sku}/watch", role: RoleRead, handler: f(n.handleWatch)},
		{pattern: "POST /v1/orders", role: RoleApp, handler: f(n.handleReserve)},
		{pattern: "GET /v1/orders/{id}", role: RoleRead, handler: f(n.handleGetOrder)},
		{pattern: "POST /v1/orders/{id}/{action}", role: RoleApp, handler: f(n.handleOrderAction)},
		{pattern: "GET /v1/cluster", role: RoleRead, handler: f(n.handleCluster)},
		{pattern: "GET /v1/cluster/self", role: RoleRead, handler: f(n.handleClusterSelf)},
		{pattern: "POST /v1/cluster/members", role: RoleAdmin, handler: f(n.handleJoin)},
		{pattern: "DELETE /v1/cluster/members/{id}", role: RoleAdmin, handler: f(n.handleLeave)},
		{pattern: "POST /v1/cluster/leader", role: RoleAdmin, handler: f(n.handleTransfer)},
		{pattern: "POST /v1/groups/{id}/membership", role: RoleAdmin, handler: f(n.handleGroupMembership)},
		{pattern: "POST /v1/groups/{id}/move", role: RoleAdmin, handler: f(n.handleGroupMove)},
		{pattern: "POST /v1/groups/{id}/leader", role: RoleAdmin, handler: f(n.handleGroupLeader)},
		{pattern: "POST /v1/placement/balance", role: RoleAdmin, handler: f(n.handlePlacementBalance)},
		{pattern: "GET /v1/backup", role: RoleAdmin, handler: f(n.handleBackup)},
		{pattern: "GET /v1/debug/state", role: RoleRead, handler: f(n.handleDebugState)},
		// Probes carry no token.
		{pattern: "GET /healthz", role: RoleNone, handler: f(n.handleHealth)},
		{pattern: "GET /readyz", role: RoleNone, handler: f(n.handleReady)},
		{pattern: "GET /metrics", role: RoleRead, handler: f(n.handleMetrics)},
	}
	if n.cfg.EnablePprof {
		// The profiles show the process's internals (goroutine stacks with request data in
		// them): admin.
		rs = append(rs,
			route{pattern: "/debug/pprof/", role: RoleAdmin, handler: f(pprof.Index)},
			route{pattern: "/debug/pprof/cmdline", role: RoleAdmin, handler: f(pprof.Cmdline)},
			route{pattern: "/debug/pprof/profile", role: RoleAdmin, handler: f(pprof.Profile)},
			route{pattern: "/debug/pprof/symbol", role: RoleAdmin, handler: f(pprof.Symbol)},
			route{pattern: "/debug/pprof/trace", role: RoleAdmin, handler: f(pprof.Trace)},
		)
	}
	if n.cfg.UI != nil {
		// A browser cannot attach a bearer token to loading a page; the files hold no data,
		// and the API calls the page makes carry the token it asks for.
		rs = append(rs,
			route{pattern: "/ui/", role: RoleNone, handler: n.cfg.UI},
			// A browser pointed at the node's address gets the dashboard, not a JSON 404.
			route{pattern: "GET /{$}", role: RoleNone, handler: f(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/ui/", http.StatusFound)
			})},
		)
	}
	return rs
}

// unmatchedRoute is the metrics' name of the catch-all route.
const unmatchedRoute = "unmatched"

// routes builds the node's handler: per route, outermost first, request metrics (refusals
// included), auth before anything is read or proposed, the per-client rate limit (keyed
// on the identity auth found), the route's handler; around all of them the leader hint.
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range n.routeTable() {
		mux.Handle(rt.pattern, n.serveRoute(rt))
	}
	mux.Handle("/", n.serveRoute(route{pattern: unmatchedRoute, role: RoleNone, handler: unmatched(mux)}))
	return n.withLeaderHint(mux)
}

// serveRoute wraps one route's handler in its auth, rate limit and metrics.
func (n *Node) serveRoute(rt route) http.Handler {
	h := rt.handler
	if n.limiter != nil && !rt.perItem {
		h = n.rateLimit(h)
	}
	if n.cfg.Auth != nil {
		h = n.authorize(n.roleFor(rt.role), h)
	}
	return n.measure(rt.pattern, h)
}

// roleFor is the role a route needs under this node's settings.
func (n *Node) roleFor(role Role) Role {
	if role == RoleRead && n.cfg.PublicReads {
		return RoleNone
	}
	return role
}

// unmatched is the catch-all's handler: 404, or 405 for a path another method serves, with
// the contract's error body (every non-2xx answer carries one). Only requests no route
// serves come here, so asking the mux again which methods the path has costs the served
// paths nothing.
func unmatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := mux.Handler(probe); p != "/" && p != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			writeJSON(w, http.StatusNotFound, api.ErrorBody{Error: api.Errorf(api.NotFound, "no route %s %s", r.Method, r.URL.Path)})
			return
		}
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		slices.Sort(allow) // as ServeMux's own Allow header
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, api.ErrorBody{Error: api.Errorf(api.MethodNotAllowed,
			"method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
	})
}

// measure counts and times a route's requests by its pattern (never the raw path, whose
// SKU ids would make the series unbounded).
func (n *Node) measure(pattern string, h http.Handler) http.Handler {
	requests := n.metrics.requests.MustCurryWith(map[string]string{"route": pattern})
	latency := n.metrics.latency.MustCurryWith(map[string]string{"route": pattern})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		requests.WithLabelValues(r.Method, strconv.Itoa(rec.status)).Inc()
		latency.WithLabelValues(r.Method).Observe(time.Since(start).Seconds())
	})
}
