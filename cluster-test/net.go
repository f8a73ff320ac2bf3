package clustertest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Net is the raft network of a cluster: one Proxy per directed link between slots.
type Net struct {
	ids     []string
	proxies map[[2]string]*Proxy // (from, to) → P(from→to)
}

// newNet starts a proxy for every ordered pair of members.
func newNet(members []*Member, seed int64) (*Net, error) {
	n := &Net{proxies: map[[2]string]*Proxy{}}
	for _, m := range members {
		n.ids = append(n.ids, m.ID)
	}
	k := uint64(0)
	for _, from := range members {
		for _, to := range members {
			if from == to {
				continue
			}
			k++
			p, err := newProxy(from.ID, to.ID, to.RaftAddr, uint64(seed)+k)
			if err != nil {
				n.Close()
				return nil, err
			}
			n.proxies[[2]string{from.ID, to.ID}] = p
		}
	}
	return n, nil
}

// rewrites is the --raft-dial-rewrite value of member id: every peer's raft address to
// the proxy of the link from id to that peer.
func (n *Net) rewrites(id string) string {
	var parts []string
	for key, p := range n.proxies {
		if key[0] == id {
			parts = append(parts, p.target+"="+p.Addr)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Link returns P(from→to).
func (n *Net) Link(from, to string) *Proxy { return n.proxies[[2]string{from, to}] }

// Close stops every proxy.
func (n *Net) Close() {
	for _, p := range n.proxies {
		p.Close()
	}
}

// Heal lifts every fault on every link.
func (n *Net) Heal() {
	for _, p := range n.proxies {
		p.Set(Forward, Fault{})
		p.Set(Backward, Fault{})
	}
}

// Cut loses every message from `from` to `to` (one way): from's requests to `to` stall on
// P(from→to), and from's answers to to's requests stall on P(to→from).
func (n *Net) Cut(from, to string) {
	n.Link(from, to).Update(Forward, func(f *Fault) { f.Blackhole = true })
	n.Link(to, from).Update(Backward, func(f *Fault) { f.Blackhole = true })
}

// CutBoth cuts a and b from each other in both directions.
func (n *Net) CutBoth(a, b string) {
	n.Cut(a, b)
	n.Cut(b, a)
}

// Partition heals the network, then cuts every pair of members in different groups.
// Members not listed in any group form one more group together.
func (n *Net) Partition(groups ...[]string) {
	n.Heal()
	side := map[string]int{}
	for i, g := range groups {
		for _, id := range g {
			side[id] = i + 1
		}
	}
	for _, a := range n.ids {
		for _, b := range n.ids {
			if a != b && side[a] != side[b] {
				n.Cut(a, b)
			}
		}
	}
}

// Isolate cuts id from every other member, both ways.
func (n *Net) Isolate(id string) { n.Partition([]string{id}) }

// Bridge cuts left and right from each other; members in neither (the bridge) still talk
// to both sides (Jepsen's "bridge").
func (n *Net) Bridge(left, right []string) {
	n.Heal()
	for _, a := range left {
		for _, b := range right {
			n.CutBoth(a, b)
		}
	}
}

// SetAll sets the same fault on both directions of every link.
func (n *Net) SetAll(f Fault) {
	for _, p := range n.proxies {
		p.Set(Forward, f)
		p.Set(Backward, f)
	}
}

// ResetAll resets every current raft connection; it returns how many were reset.
func (n *Net) ResetAll() int {
	total := 0
	for _, p := range n.proxies {
		total += p.Reset()
	}
	return total
}

// Resets counts the connections reset by flaky links so far.
func (n *Net) Resets() int {
	total := 0
	for _, p := range n.proxies {
		p.mu.Lock()
		total += p.resets
		p.mu.Unlock()
	}
	return total
}

// randomPartition picks a partition shape of the members ids at random, applies it and
// describes it: isolate one, a majority/minority split, a bridge, or one-way cuts.
// With leader set, half the shapes put the leader first: isolated, in the minority, on the
// left of a bridge, or cut off one way.
func (n *Net) randomPartition(rng *rand.Rand, ids []string, leader string) string {
	ids = slices.Clone(ids)
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	if i := slices.Index(ids, leader); i > 0 && rng.IntN(2) == 0 {
		ids[0], ids[i] = ids[i], ids[0]
	}
	switch rng.IntN(4) {
	case 0:
		n.Isolate(ids[0])
		return fmt.Sprintf("isolate %s", ids[0])
	case 1:
		k := len(ids) / 2
		n.Partition(ids[:k], ids[k:])
		return fmt.Sprintf("split %v | %v", ids[:k], ids[k:])
	case 2:
		k := (len(ids) - 1) / 2
		left, bridge, right := ids[:k], ids[k], ids[k+1:]
		n.Bridge(left, right)
		return fmt.Sprintf("bridge %v <%s> %v", left, bridge, right)
	default:
		n.Heal()
		var cuts []string
		for i := 0; i < 1+len(ids)/2; i++ {
			from, to := ids[i], ids[(i+1)%len(ids)]
			n.Cut(from, to)
			cuts = append(cuts, from+"↛"+to)
		}
		return "one-way " + strings.Join(cuts, ", ")
	}
}
