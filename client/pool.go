package client

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// pool is one raft group as the client sees it: the nodes that may serve it, which are
// healthy, and which leads. The hot path only loads atomic pointers; the lists are copied
// on write, under mu, when membership or health changes (rarely).
//
// The client's own pool (Client.pool) holds the nodes, their health and the leader of
// group 1, which is what health checks and the leader header report. Each other data
// group of a multi-group cluster has a pool of its own (router.groupPool) that shares the
// root's nodes and health and keeps only its leader and batcher: a leader is a property of
// a group, the health of a node is not.
type pool struct {
	c     *Client
	root  *pool  // the pool holding the nodes: p itself for the client's pool
	group uint64 // the data group, 1 for the client's pool

	all     atomic.Pointer[[]*Endpoint] // sorted by address; the root's only
	healthy atomic.Pointer[[]*Endpoint] // the healthy subset, same order; the root's only
	leader  atomic.Pointer[Endpoint]
	rr      atomic.Uint64 // spreads leader-bound calls while no leader is known

	mu     sync.Mutex
	extras map[string]*Endpoint // leaders named by hints but not among the endpoints; the root's only

	batcher *batcher // this group's Deduct batcher; nil with DisableBatching
}

func newPool(c *Client) *pool {
	p := &pool{c: c, group: 1, extras: map[string]*Endpoint{}}
	p.root = p
	empty := []*Endpoint{}
	p.all.Store(&empty)
	p.healthy.Store(&empty)
	return p
}

func (p *pool) weight(addr string) int {
	if w, ok := p.c.cfg.Weights[addr]; ok {
		return w
	}
	return 1
}

// setEndpoints makes addrs (sorted) the node list: known nodes keep their state, new ones
// get a health loop, and the loops of nodes that left stop.
func (p *pool) setEndpoints(addrs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.all.Load()
	next := make([]*Endpoint, 0, len(addrs))
	for _, a := range addrs {
		i, found := slices.BinarySearchFunc(old, a, func(e *Endpoint, a string) int { return strings.Compare(e.addr, a) })
		if found {
			next = append(next, old[i])
			continue
		}
		e := newEndpoint(a, p.weight(a))
		if x, ok := p.extras[a]; ok && p.leader.CompareAndSwap(x, e) {
			delete(p.extras, a)
		}
		next = append(next, e)
		p.c.spawn(func() { p.c.healthLoop(e) })
	}
	for _, e := range old {
		if _, found := slices.BinarySearch(addrs, e.addr); !found {
			close(e.stop)
			p.leader.CompareAndSwap(e, nil)
		}
	}
	p.all.Store(&next)
	p.rebuildHealthyLocked()
}

func (p *pool) rebuildHealthyLocked() {
	var h []*Endpoint
	for _, e := range *p.all.Load() {
		if e.Healthy() {
			h = append(h, e)
		}
	}
	p.healthy.Store(&h)
}

// setHealthy records a node's health; the healthy list is rebuilt only on a change.
func (p *pool) setHealthy(e *Endpoint, ok bool) {
	if e.healthy.Swap(ok) == ok {
		return
	}
	if !ok {
		p.leader.CompareAndSwap(e, nil)
	}
	p.mu.Lock()
	p.rebuildHealthyLocked()
	p.mu.Unlock()
}

// failed records a request that could not reach e: it is skipped from now on, and its
// health loop checks it at once (and then with backoff) to learn when it is back.
func (p *pool) failed(e *Endpoint) {
	p.root.setHealthy(e, false)
	if p != p.root {
		// The root's leader is cleared by setHealthy, on a change of health only; a group's
		// leader is cleared by any failure of its own, as the node may be down already.
		p.leader.CompareAndSwap(e, nil)
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// candidates are the nodes worth trying: the healthy ones, or all of them when none is
// healthy (a client that has lost every node keeps trying rather than failing fast).
func (p *pool) candidates() []*Endpoint {
	if h := *p.root.healthy.Load(); len(h) > 0 {
		return h
	}
	return *p.root.all.Load()
}

// allIn reports whether set holds every configured node (a DNS name's as resolved).
func (p *pool) allIn(set map[*Endpoint]bool) bool {
	all := *p.root.all.Load()
	if len(all) == 0 {
		return false
	}
	for _, e := range all {
		if !set[e] {
			return false
		}
	}
	return true
}

// pickLeader is the node for a mutation or a strong read: the leader if known; otherwise
// any healthy node, which forwards to the leader or names it.
func (p *pool) pickLeader() *Endpoint {
	if l := p.leader.Load(); l != nil {
		return l
	}
	eps := p.candidates()
	return eps[(p.rr.Add(1)-1)%uint64(len(eps))]
}

// pickAny is the node for a stale read or a watch, chosen by the balancer.
func (p *pool) pickAny(key string) *Endpoint {
	return p.c.cfg.Balancer.Pick(p.candidates(), key)
}

// follow makes the node at addr (a not_leader hint) the leader and returns it.
func (p *pool) follow(addr string) *Endpoint {
	e := p.root.endpoint(addr)
	p.leader.Store(e)
	return e
}

// endpoint is the node at addr: a configured one, or else an extra made for it.
func (p *pool) endpoint(addr string) *Endpoint {
	all := *p.all.Load()
	if i, found := slices.BinarySearchFunc(all, addr, func(e *Endpoint, a string) int { return strings.Compare(e.addr, a) }); found {
		return all[i]
	}
	p.mu.Lock()
	e, ok := p.extras[addr]
	if !ok {
		// A leader outside the configured endpoints (they list only some nodes): used for
		// leader-bound calls, never balanced over, not health-checked.
		e = newEndpoint(addr, 0)
		p.extras[addr] = e
	}
	p.mu.Unlock()
	e.healthy.Store(true)
	return e
}

// setLeader records what a health check learned: e says it leads.
func (p *pool) setLeader(e *Endpoint) { p.leader.Store(e) }

// notLeader records that e said it does not lead.
func (p *pool) notLeader(e *Endpoint) { p.leader.CompareAndSwap(e, nil) }

// list is every node the client knows, sorted by address.
func (p *pool) list() []*Endpoint {
	out := slices.Clone(*p.all.Load())
	p.mu.Lock()
	for _, e := range p.extras {
		out = append(out, e)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b *Endpoint) int { return strings.Compare(a.addr, b.addr) })
	return out
}
