package client

import (
	"fmt"
	"sync"
	"testing"
)

func endpoints(weights ...int) []*Endpoint {
	var eps []*Endpoint
	for i, w := range weights {
		eps = append(eps, newEndpoint(fmt.Sprintf("10.0.0.%d:4001", i+1), w))
	}
	return eps
}

// pickMany picks n times from goroutines running concurrently and counts picks per node.
func pickMany(b Balancer, eps []*Endpoint, n, workers int) map[string]int {
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]int{}
			for i := 0; i < n/workers; i++ {
				local[b.Pick(eps, "").addr]++
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return counts
}

func TestRoundRobin_SpreadsEvenly(t *testing.T) {
	eps := endpoints(1, 1, 1)
	counts := pickMany(RoundRobin(), eps, 3000, 6)
	for _, e := range eps {
		if counts[e.addr] != 1000 {
			t.Fatalf("counts %v, want 1000 each", counts)
		}
	}
}

func TestWeightedRoundRobin_FollowsWeights(t *testing.T) {
	eps := endpoints(5, 3, 1, 0)
	counts := pickMany(WeightedRoundRobin(), eps, 9*400, 4)
	for i, want := range []int{2000, 1200, 400, 0} {
		if got := counts[eps[i].addr]; got != want {
			t.Fatalf("node %d: %d picks, want %d (all: %v)", i, got, want, counts)
		}
	}
	// Only zero weights: plain round robin rather than nothing.
	zero := endpoints(0, 0)
	if c := pickMany(WeightedRoundRobin(), zero, 100, 1); c[zero[0].addr] != 50 {
		t.Fatalf("all-zero weights: %v", c)
	}
}

func TestLeastOutstanding_AvoidsBusyNodes(t *testing.T) {
	eps := endpoints(1, 1, 1)
	eps[0].outstanding.Store(7)
	eps[1].outstanding.Store(2)
	for i := 0; i < 10; i++ {
		if got := LeastOutstanding().Pick(eps, ""); got != eps[2] {
			t.Fatalf("picked %s with %d outstanding", got.addr, got.Outstanding())
		}
	}
	// Idle nodes share the load.
	idle := endpoints(1, 1, 1)
	counts := pickMany(LeastOutstanding(), idle, 300, 1)
	for _, e := range idle {
		if counts[e.addr] != 100 {
			t.Fatalf("idle nodes: %v", counts)
		}
	}
}

func TestConsistentHash_StickyAndMovesFewKeys(t *testing.T) {
	b := ConsistentHash(nil)
	eps := endpoints(1, 1, 1, 1, 1)
	const keys = 5000
	owner := func(eps []*Endpoint) map[string]string {
		m := map[string]string{}
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("user-%d", k)
			m[key] = b.Pick(eps, key).addr
		}
		return m
	}
	before := owner(eps)
	if again := owner(eps); fmt.Sprint(again) != fmt.Sprint(before) {
		t.Fatal("the same key moved with no change of nodes")
	}
	load := map[string]int{}
	for _, a := range before {
		load[a]++
	}
	for a, n := range load {
		if n < keys/5*7/10 || n > keys/5*13/10 {
			t.Fatalf("node %s owns %d of %d keys: uneven %v", a, n, keys, load)
		}
	}

	// A node leaves: only its keys move.
	gone := eps[2].addr
	after := owner(append(append([]*Endpoint{}, eps[:2]...), eps[3:]...))
	for k, a := range before {
		if a != gone && after[k] != a {
			t.Fatalf("key %s moved from %s to %s though its node stayed", k, a, after[k])
		}
	}
	// A node arrives: keys move only to it, about a sixth of them.
	grown := append(endpoints(1, 1, 1, 1, 1), newEndpoint("10.0.0.99:4001", 1))
	added := owner(grown)
	moved := 0
	for k, a := range before {
		if added[k] != a {
			if added[k] != "10.0.0.99:4001" {
				t.Fatalf("key %s moved to %s, not to the new node", k, added[k])
			}
			moved++
		}
	}
	if moved < keys/6/2 || moved > keys/6*2 {
		t.Fatalf("%d of %d keys moved to the new node, want about a sixth", moved, keys)
	}
}

func BenchmarkBalancers(b *testing.B) {
	eps := endpoints(3, 2, 1)
	for name, bal := range map[string]Balancer{"rr": RoundRobin(), "least": LeastOutstanding(),
		"wrr": WeightedRoundRobin(), "hash": ConsistentHash(nil)} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bal.Pick(eps, "user-42")
				}
			})
		})
	}
}
