package clustertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// holdProbe places holds with short TTLs on a SKU of its own and reads each back until it
// is released, noting what every read saw and when: the clock scenario's evidence that
// skewed clocks neither release a hold before its TTL nor keep it long after.
//
// A read is evidence only of what it saw between its call and its return, so a read that
// failed (an election) proves nothing, and the checks never need every read to succeed.
type holdProbe struct {
	c   *client.Client
	sku string
	tag string
	rng *rand.Rand

	mu    sync.Mutex
	holds []*probedHold

	cancel context.CancelFunc
	done   chan struct{}
}

type probedHold struct {
	id        string
	ttl       time.Duration
	call, ack time.Time // of the reservation; ack is zero when its outcome is unknown
	expiresAt int64     // cluster time (ms) the hold ends, as the reservation answered
	// The latest call of a read that saw it held, and the earliest return of one that saw
	// it expired.
	lastHeldCall    time.Time
	firstExpiredRet time.Time
	released        bool
}

// Bounds the clock scenario holds every hold to, with the expire interval it runs nodes with.
const (
	probeExpireInterval = 200 * time.Millisecond
	// holdEarlySlack is how much sooner than its TTL, measured from the reservation's
	// call, a hold may be seen released: the rounding of cluster time to milliseconds.
	holdEarlySlack = 50 * time.Millisecond
	// holdLateBound is how long after its TTL, measured from the reservation's answer, a
	// hold may still be seen held: an expiry round, an election (about a second with the
	// suite's timing) and the time an election whose majority included a slow clock leaves
	// cluster time behind.
	holdLateBound = 3 * time.Second
)

func startHoldProbe(endpoints []string, sku, tag string, seed int64) (*holdProbe, error) {
	c, err := client.New(clientConfig(endpoints, nil))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &holdProbe{c: c, sku: sku, tag: tag, rng: rand.New(rand.NewPCG(uint64(seed), 11)), cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.placeLoop(ctx) }()
	go func() { defer wg.Done(); p.readLoop(ctx) }()
	go func() { wg.Wait(); close(p.done) }()
	return p, nil
}

// placeLoop places a hold every 300–600 ms, TTLs 0.8–2.5 s.
func (p *holdProbe) placeLoop(ctx context.Context) {
	for i := 0; ; i++ {
		wait := time.Duration(300+p.rng.IntN(300)) * time.Millisecond
		ttl := time.Duration(800+p.rng.IntN(1700)) * time.Millisecond
		if pause(ctx, wait) != nil {
			return
		}
		h := &probedHold{id: fmt.Sprintf("%s-hold-%d", p.tag, i), ttl: ttl, call: time.Now()}
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		o, err := p.c.Reserve(octx, h.id, "prober", []api.Line{{SKU: p.sku, Qty: 1}}, ttl)
		cancel()
		if err == nil {
			h.ack, h.expiresAt = time.Now(), o.ExpiresAtMS
		}
		p.mu.Lock()
		p.holds = append(p.holds, h)
		p.mu.Unlock()
	}
}

// readLoop reads every hold not yet seen released, every 100 ms.
func (p *holdProbe) readLoop(ctx context.Context) {
	for pause(ctx, 100*time.Millisecond) == nil {
		for _, h := range p.open() {
			p.read(ctx, h)
		}
	}
}

// open lists the holds not yet seen released.
func (p *holdProbe) open() []*probedHold {
	p.mu.Lock()
	defer p.mu.Unlock()
	var open []*probedHold
	for _, h := range p.holds {
		if !h.released {
			open = append(open, h)
		}
	}
	return open
}

func (p *holdProbe) read(ctx context.Context, h *probedHold) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	call := time.Now()
	o, err := p.c.GetOrder(ctx, h.id)
	ret := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case errors.Is(err, client.ErrNotFound) && h.ack.IsZero():
		h.released = true // the reservation never happened
	case err != nil:
	case o.Status == "held":
		h.lastHeldCall = call
	case o.Status == "expired":
		h.firstExpiredRet, h.released = ret, true
	default:
		h.released = true // confirmed or cancelled: nobody here does that
	}
}

// stop ends the probe, reads the holds still open until they are released or past their
// bound, and returns what the probe saw.
func (p *holdProbe) stop() []probedHold {
	p.cancel()
	<-p.done
	defer p.c.Close()
	deadline := time.Now().Add(holdLateBound + 3*time.Second)
	for time.Now().Before(deadline) {
		open := p.open()
		if len(open) == 0 {
			break
		}
		for _, h := range open {
			p.read(context.Background(), h)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]probedHold, len(p.holds))
	for i, h := range p.holds {
		out[i] = *h
	}
	return out
}

// checkHolds returns every hold seen released before its TTL or held past its bound, and the
// largest lateness seen (from the TTL's end after the answer to the first expired read).
func checkHolds(holds []probedHold) (problems []string, placed int, worstLate time.Duration) {
	for _, h := range holds {
		if h.ack.IsZero() {
			continue // outcome unknown: its TTL has no known start
		}
		placed++
		if !h.firstExpiredRet.IsZero() {
			if early := h.call.Add(h.ttl - holdEarlySlack).Sub(h.firstExpiredRet); early > 0 {
				stamp := time.Duration(h.expiresAt-h.ttl.Milliseconds()-h.call.UnixMilli()) * time.Millisecond
				problems = append(problems, fmt.Sprintf("hold %s (ttl %v) seen released %v before its TTL ran out (cluster time at its placement was %+v from the call's wall clock)", h.id, h.ttl, early+holdEarlySlack, stamp))
			}
			worstLate = max(worstLate, h.firstExpiredRet.Sub(h.ack.Add(h.ttl)))
		} else if !h.released {
			problems = append(problems, fmt.Sprintf("hold %s (ttl %v) never seen released", h.id, h.ttl))
		}
		if !h.lastHeldCall.IsZero() {
			if late := h.lastHeldCall.Sub(h.ack.Add(h.ttl + holdLateBound)); late > 0 {
				problems = append(problems, fmt.Sprintf("hold %s (ttl %v) still held %v after its TTL (bound %v)", h.id, h.ttl, late+holdLateBound, holdLateBound))
			}
		}
	}
	return problems, placed, worstLate
}
