package main

import (
	"fmt"
	"math/rand/v2"
)

// Popularity says how buyers spread over the SKUs of a run.
const (
	popHot     = "hot"     // every buyer wants SKU 0
	popUniform = "uniform" // each op picks a SKU uniformly at random
	popZipf    = "zipf"    // SKU k is picked with weight 1/(k+1)^s: a few best sellers, a long tail
)

// picker chooses the SKU (an index into the run's SKUs) of each op. One per buyer: it is
// not safe for concurrent use, and needs no lock or allocation per pick.
type picker struct {
	kind string
	n    int
	rng  *rand.Rand
	zipf *rand.Zipf
}

// newPicker makes the picker of one buyer; seed makes its choices reproducible.
func newPicker(kind string, n int, zipfS float64, seed uint64) (*picker, error) {
	if n < 1 {
		return nil, fmt.Errorf("need at least 1 SKU, got %d", n)
	}
	p := &picker{kind: kind, n: n, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	switch kind {
	case popHot, popUniform:
	case popZipf:
		if zipfS <= 1 {
			return nil, fmt.Errorf("zipf exponent must be > 1, got %g", zipfS)
		}
		p.zipf = rand.NewZipf(p.rng, zipfS, 1, uint64(n-1))
	default:
		return nil, fmt.Errorf("unknown popularity %q: want %s, %s or %s", kind, popHot, popUniform, popZipf)
	}
	return p, nil
}

// pick returns a SKU index in [0, n).
func (p *picker) pick() int {
	switch {
	case p.kind == popHot || p.n == 1:
		return 0
	case p.zipf != nil:
		return int(p.zipf.Uint64())
	default:
		return p.rng.IntN(p.n)
	}
}

// chance reports true with probability f, from the buyer's own generator.
func (p *picker) chance(f float64) bool { return f > 0 && p.rng.Float64() < f }
