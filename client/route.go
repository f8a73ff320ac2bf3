package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashstock/flashstock/api"
)

// router sends each SKU's calls to the pool of the raft group that owns it (DESIGN.md,
// "Routing"). It learns that the cluster has several groups from the health checks (a
// node lists the groups it hosts in /v1/cluster/self), fetches the placement from
// GET /v1/cluster when a call first needs it, and fetches it again, in the background,
// when an answer says it is stale. A single-group cluster never makes it fetch anything:
// every call goes to the client's own pool, as it did before groups existed.
//
// Any node serves or forwards any call, so a stale or missing placement costs a hop, never
// a wrong answer; and a retry keeps its request_id and its group's pool, so the group that
// may have applied a first try is the one that answers the retry.
type router struct {
	c *Client

	multi atomic.Bool               // a node hosts a group other than group 1
	view  atomic.Pointer[routeView] // nil until first fetched
	stale atomic.Bool               // an answer said the view is out of date
	last  atomic.Int64              // when the last fetch started, Unix ns

	mu       sync.Mutex
	groups   map[uint64]*pool // every data group's pool ever seen: a group keeps its leader and batcher across fetches
	fetching chan struct{}    // closed when the fetch in flight ends; nil when none is
}

// routeView is one fetched placement, as the client routes by it.
type routeView struct {
	version uint64
	// bySlot is the pool of each slot's group; nil routes every SKU to the client's pool
	// (one data group, or no placement known).
	bySlot []*pool
}

func newRouter(c *Client) *router {
	return &router{c: c, groups: map[uint64]*pool{1: c.pool}}
}

// observe records the groups the node e reports hosting, and which of them it leads: a
// group whose leader moved is followed within a health check, without a fetch (a call
// that reaches the old leader is forwarded, and its answer names group 1's leader only).
// Group 1's leader is the client pool's, which the health loop keeps itself.
func (r *router) observe(e *Endpoint, groups []api.NodeGroup) {
	if !r.multi.Load() {
		for _, g := range groups {
			if g.ID != 1 {
				r.multi.Store(true)
				break
			}
		}
		if !r.multi.Load() {
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range groups {
		p := r.groups[g.ID]
		if p == nil || p == r.c.pool {
			continue
		}
		if g.Role == api.RoleLeader && g.Failed == "" {
			p.leader.Store(e)
		} else {
			p.notLeader(e)
		}
	}
}

// poolFor is the pool that serves sku: its group's, or the client's own while the cluster
// has one group or the placement is unknown (the node forwards). The first call of a
// multi-group cluster waits for the placement, bounded by ctx.
func (c *Client) poolFor(ctx context.Context, sku string) *pool {
	v := c.router.current(ctx)
	if v == nil || v.bySlot == nil {
		return c.pool
	}
	if p := v.bySlot[api.SlotOf(sku)]; p != nil {
		return p
	}
	c.router.markStale() // a slot no group owns: the placement has changed since
	return c.pool
}

// current is the view to route by, nil for the client's pool alone.
func (r *router) current(ctx context.Context) *routeView {
	if !r.multi.Load() {
		return nil
	}
	v := r.view.Load()
	if v == nil {
		select {
		case <-r.startFetch():
		case <-ctx.Done():
		}
		return r.view.Load()
	}
	if r.stale.Load() {
		r.startFetch()
	}
	return v
}

// markStale asks for a new placement: at once if none was fetched lately, else on the next
// call that routes.
func (r *router) markStale() {
	if !r.multi.Load() {
		return
	}
	r.stale.Store(true)
	r.startFetch()
}

// startFetch starts a fetch unless one is in flight, and returns the channel closed when
// the running one ends. None starts within HealthInterval of the last, so a burst of stale
// answers costs one fetch, and a cluster that cannot answer is not asked on every call
// (they go to the client's pool meanwhile).
func (r *router) startFetch() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fetching != nil {
		return r.fetching
	}
	done := make(chan struct{})
	if time.Since(time.Unix(0, r.last.Load())) < r.c.cfg.HealthInterval {
		close(done)
		return done
	}
	r.last.Store(time.Now().UnixNano())
	r.stale.Store(false) // a stale answer from now on asks again
	r.fetching = done
	if !r.c.spawn(r.fetch) {
		r.fetching = nil
		close(done)
	}
	return done
}

// fetch reads the placement from one node and installs it.
func (r *router) fetch() {
	defer func() {
		r.mu.Lock()
		close(r.fetching)
		r.fetching = nil
		r.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(r.c.ctx, r.c.cfg.AttemptTimeout)
	defer cancel()
	cl, err := r.c.fetchCluster(ctx)
	if err != nil {
		r.stale.Store(true) // the next call after the pause asks again
		return
	}
	r.install(cl)
}

// fetchCluster asks GET /v1/cluster of the leader if known, else of each healthy node in
// turn, once each: a refresh is not worth a call's retries, and the calls route through
// the old view (or the client's pool) meanwhile.
func (c *Client) fetchCluster(ctx context.Context) (api.Cluster, error) {
	eps := c.pool.candidates()
	if l := c.pool.leader.Load(); l != nil {
		eps = append([]*Endpoint{l}, eps...)
	}
	req := &request{method: http.MethodGet, path: "/v1/cluster", route: toLeader}
	var last error = errors.New("no endpoint")
	for _, e := range eps {
		resp, err := c.send(ctx, e, req)
		if err != nil {
			last = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			last = readError(resp)
			drainClose(resp.Body)
			continue
		}
		var out api.Cluster
		err = json.NewDecoder(resp.Body).Decode(&out)
		drainClose(resp.Body)
		if err == nil {
			return out, nil
		}
		last = err
	}
	return api.Cluster{}, fmt.Errorf("flashstock: fetch placement: %w", last)
}

// install makes cl's placement the view and points each group's pool at the leader it
// names. A placement older than the view's (from a node that lags) updates leaders only.
func (r *router) install(cl api.Cluster) {
	httpAddr := make(map[string]string, len(cl.Nodes))
	for _, n := range cl.Nodes {
		httpAddr[n.ID] = n.HTTPAddr
	}
	var data []api.Group
	for _, g := range cl.Groups {
		if g.Kind == api.GroupData {
			data = append(data, g)
		}
	}
	if len(data) == 0 {
		r.stale.Store(true) // the node has not loaded the placement yet
		return
	}
	bySlot := make([]*pool, api.SlotCount)
	r.mu.Lock()
	for _, g := range data {
		p := r.groupPool(g.ID)
		// Group 1's leader is the client pool's, which health checks and answers keep.
		if a := httpAddr[g.Leader]; a != "" && p != r.c.pool {
			p.follow(a)
		}
		for _, s := range g.Slots {
			for i := max(s.From, 0); i < min(s.To, api.SlotCount); i++ {
				bySlot[i] = p
			}
		}
	}
	r.mu.Unlock()
	if cur := r.view.Load(); cur != nil && cl.PlacementVersion < cur.version {
		return
	}
	v := &routeView{version: cl.PlacementVersion, bySlot: bySlot}
	if len(data) == 1 {
		v.bySlot = nil
	}
	r.view.Store(v)
}

// knownPool is the pool of data group id if the client has seen it, else the client's
// own (any node forwards, or names the node that serves the group).
func (r *router) knownPool(id uint64) *pool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.groups[id]; p != nil {
		return p
	}
	return r.c.pool
}

// groupPool is group id's pool, made on first sight with its own batcher; r.mu is held.
func (r *router) groupPool(id uint64) *pool {
	if p := r.groups[id]; p != nil {
		return p
	}
	c := r.c
	p := &pool{c: c, root: c.pool, group: id}
	if !c.cfg.DisableBatching {
		p.batcher = newBatcher(c, p)
		c.spawn(p.batcher.run)
	}
	r.groups[id] = p
	return p
}

// orderPool is the pool of an order's lines, or ErrCrossGroup's code when the placement
// puts them in different groups: refused here, before anything is sent. Lines whose slot
// no known group owns are left for the node to judge.
func (c *Client) orderPool(ctx context.Context, lines []api.Line) (*pool, error) {
	if len(lines) == 0 {
		return c.pool, nil
	}
	first := c.poolFor(ctx, lines[0].SKU)
	v := c.router.view.Load()
	if v == nil || v.bySlot == nil || v.bySlot[api.SlotOf(lines[0].SKU)] == nil {
		return first, nil
	}
	for _, l := range lines[1:] {
		if p := v.bySlot[api.SlotOf(l.SKU)]; p != nil && p != first {
			return nil, &api.Error{Code: api.CrossGroup, Message: fmt.Sprintf(
				"order lines %q (group %d) and %q (group %d) live in different groups; an order's lines must share one until cross-group orders exist",
				lines[0].SKU, first.group, l.SKU, p.group)}
		}
	}
	return first, nil
}
