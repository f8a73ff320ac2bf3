package node

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flashstock/flashstock/api"
)

// rateLimiter is a token bucket per client: a client may make Rate requests a second on
// average and Burst at once. A batch deduction costs one token per item, so batching buys
// fewer round trips, not more sales attempts. A cost larger than the burst is let through
// once the bucket is full and leaves it in debt, so a big batch is slowed, never starved.
//
// The buckets live in memory and are swept of clients idle long enough to have a full
// bucket again (an idle full bucket and no bucket are the same thing), so memory follows
// the clients active in the last Burst/Rate seconds, not every client ever seen.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int, now func() time.Time) *rateLimiter {
	if burst < 1 {
		burst = max(1, int(math.Ceil(rate)))
	}
	return &rateLimiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}, lastSweep: now()}
}

// sweepEvery bounds how often the limiter looks for idle buckets.
const sweepEvery = time.Minute

// allow takes cost tokens from key's bucket. When it cannot, it says how long until it can.
func (l *rateLimiter) allow(key string, cost int) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.sweep(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	need := min(float64(cost), l.burst)
	if b.tokens >= need {
		b.tokens -= float64(cost)
		return true, 0
	}
	wait := time.Duration((need - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

func (l *rateLimiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// rateKey is whom a request is charged to: the token's entry when the request carried a
// valid one, else the client's IP address. An unverified token is never a key: a client
// could otherwise make up a fresh token, and get a fresh bucket, for every request.
func rateKey(r *http.Request) string {
	if id := identity(r.Context()); id != "" {
		return "token:" + id
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

// rateLimited reports whether a request is subject to rate limiting. Health probes,
// metrics and debug endpoints are not client traffic; a request forwarded by another member was
// charged at the member the client talked to (charging it again here would put every
// client behind that member into one bucket, the member's).
func (n *Node) rateLimited(r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		return false
	}
	return !n.fromMember(r)
}

// fromMember reports whether a request was forwarded by a cluster member: it says so in
// its header and comes from a member's host. The host check keeps an outside client from
// dodging its limit by setting the header; it cannot tell processes on one host apart.
func (n *Node) fromMember(r *http.Request) bool {
	if r.Header.Get(api.HeaderForwardedBy) == "" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	return n.memberHosts()[host]
}

// hostCache is the set of member hosts as of a fsm.MembersVersion (a single-group
// cluster's member records) or a placement version (a multi-group cluster's nodes).
type hostCache struct {
	version uint64
	hosts   map[string]bool
}

func (n *Node) memberHosts() map[string]bool {
	c := n.hosts.Load()
	if n.metaGroup != nil {
		p := n.placement.Load()
		if p == nil {
			return nil
		}
		if c == nil || c.version != p.Version {
			var addrs []string
			for _, pn := range p.Nodes {
				addrs = append(addrs, pn.HTTPAddr, pn.RaftAddr)
			}
			c = newHostCache(p.Version, addrs)
			n.hosts.Store(c)
		}
		return c.hosts
	}
	if v := n.cluster.fsm.MembersVersion(); c == nil || c.version != v {
		members, err := n.cluster.fsm.Members()
		if err != nil {
			return nil
		}
		var addrs []string
		for _, m := range members {
			addrs = append(addrs, m.HTTPAddr, m.RaftAddr)
		}
		c = newHostCache(v, addrs)
		n.hosts.Store(c)
	}
	return c.hosts
}

func newHostCache(version uint64, addrs []string) *hostCache {
	c := &hostCache{version: version, hosts: map[string]bool{}}
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil {
			c.hosts[h] = true
		}
	}
	return c
}

// admit charges a request cost tokens; when the client is over its rate it answers 429
// overloaded with Retry-After and returns false. Every route but the batch deduction is
// charged one token by rateLimit; the batch handler charges its items itself.
func (n *Node) admit(w http.ResponseWriter, r *http.Request, cost int) bool {
	if n.limiter == nil || !n.rateLimited(r) {
		return true
	}
	ok, wait := n.limiter.allow(rateKey(r), cost)
	if ok {
		return true
	}
	n.countRateLimited()
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	writeJSON(w, http.StatusTooManyRequests, api.ErrorBody{Error: &api.Error{Code: api.Overloaded,
		Message: "rate limit exceeded for this client; retry after the Retry-After seconds"}})
	return false
}

// rateLimit charges each request of a route one token (routeTable marks the routes whose
// handler charges per item instead).
func (n *Node) rateLimit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.admit(w, r, 1) {
			h.ServeHTTP(w, r)
		}
	})
}
