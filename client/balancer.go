package client

import (
	"sync/atomic"
)

// Endpoint is one node as the client tracks it. Balancers read it; only the client
// changes it.
type Endpoint struct {
	addr   string
	weight int
	seed   uint64 // hash of addr, for rendezvous hashing

	outstanding atomic.Int64
	healthy     atomic.Bool

	wake chan struct{} // asks the health loop to check now
	stop chan struct{} // closed when the endpoint leaves the list
}

func newEndpoint(addr string, weight int) *Endpoint {
	e := &Endpoint{addr: addr, weight: weight, seed: hashString(addr),
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	e.healthy.Store(true) // optimistic until a check or a request says otherwise
	return e
}

// Addr is the node's HTTP address, "host:port".
func (e *Endpoint) Addr() string { return e.addr }

// Weight is the node's weight for WeightedRoundRobin (Config.Weights, default 1).
func (e *Endpoint) Weight() int { return e.weight }

// Outstanding is how many of this client's requests the node is serving right now.
func (e *Endpoint) Outstanding() int64 { return e.outstanding.Load() }

// Healthy reports whether the node answered its last health check and request.
func (e *Endpoint) Healthy() bool { return e.healthy.Load() }

// Balancer chooses the node for a stale read or a watch.
//
// Pick is called concurrently from every goroutine using the client, so it must be safe for
// concurrent use and should not block. eps is never empty, is sorted by address, holds the
// healthy nodes (all nodes when none is healthy), and must be neither modified nor kept. key
// is what the call should stick to (WithKey: a user, a session), or "".
type Balancer interface {
	Pick(eps []*Endpoint, key string) *Endpoint
}

// RoundRobin sends each read to the next healthy node in turn.
func RoundRobin() Balancer { return &roundRobin{} }

type roundRobin struct{ n atomic.Uint64 }

func (b *roundRobin) Pick(eps []*Endpoint, _ string) *Endpoint {
	return eps[(b.n.Add(1)-1)%uint64(len(eps))]
}

// LeastOutstanding ("least busy") sends each read to the healthy node with the fewest
// requests in flight from this client, so a slow node gets less work; ties go round robin,
// so idle nodes share the load evenly.
func LeastOutstanding() Balancer { return &leastOutstanding{} }

type leastOutstanding struct{ n atomic.Uint64 }

func (b *leastOutstanding) Pick(eps []*Endpoint, _ string) *Endpoint {
	start := int((b.n.Add(1) - 1) % uint64(len(eps)))
	best := eps[start]
	bestN := best.Outstanding()
	for i := 1; i < len(eps) && bestN > 0; i++ {
		e := eps[(start+i)%len(eps)]
		if n := e.Outstanding(); n < bestN {
			best, bestN = e, n
		}
	}
	return best
}

// WeightedRoundRobin sends reads in proportion to the nodes' weights (Config.Weights):
// every run of W picks, W the sum of the healthy nodes' weights, gives each node exactly its
// weight. A node of weight 0 gets reads only when every healthy node weighs 0.
func WeightedRoundRobin() Balancer { return &weightedRoundRobin{} }

type weightedRoundRobin struct{ n atomic.Uint64 }

func (b *weightedRoundRobin) Pick(eps []*Endpoint, _ string) *Endpoint {
	total := 0
	for _, e := range eps {
		total += e.weight
	}
	if total == 0 {
		return eps[(b.n.Add(1)-1)%uint64(len(eps))]
	}
	// Lock-free: one counter, mapped onto the nodes' cumulative weights.
	x := int((b.n.Add(1) - 1) % uint64(total))
	for _, e := range eps {
		if x < e.weight {
			return e
		}
		x -= e.weight
	}
	return eps[len(eps)-1] // unreachable: x < total
}
