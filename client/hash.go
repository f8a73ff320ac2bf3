package client

// ConsistentHash keeps each key (WithKey: a user, a session) on one node while that node is
// healthy, and when nodes come or go moves only the keys that must move: those of a node
// that left, or a fair share to a node that arrived. It is rendezvous (highest random
// weight) hashing: every node scores the key, the highest score wins. It needs no ring to
// rebuild when the node list changes, and spreads keys evenly without virtual nodes.
// Calls without a key go to fallback (RoundRobin if nil).
func ConsistentHash(fallback Balancer) Balancer {
	if fallback == nil {
		fallback = RoundRobin()
	}
	return &rendezvous{fallback: fallback}
}

type rendezvous struct{ fallback Balancer }

func (b *rendezvous) Pick(eps []*Endpoint, key string) *Endpoint {
	if key == "" {
		return b.fallback.Pick(eps, key)
	}
	k := hashString(key)
	var best *Endpoint
	var bestScore uint64
	for _, e := range eps {
		if s := mix64(k ^ e.seed); best == nil || s > bestScore {
			best, bestScore = e, s
		}
	}
	return best
}

// hashString is 64-bit FNV-1a: allocation-free and stable across processes and versions,
// so every client instance maps a key to the same node.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is the splitmix64 finaliser: it turns the combination of a key's and a node's
// hashes into a well-spread score (FNV alone correlates on similar inputs).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
