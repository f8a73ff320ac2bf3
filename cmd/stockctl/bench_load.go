package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// outcome is how one op ended.
type outcome uint8

const (
	outcomeOK           outcome = iota // the deduction (or confirmed order) was acknowledged
	outcomeCancelled                   // reserve mode: held, then cancelled as planned
	outcomeSoldOut                     // rejected: nothing left
	outcomeInsufficient                // rejected: fewer units left than asked
	outcomeLimit                       // rejected: the user's per-user limit
	outcomeExpired                     // rejected: the hold ran out before the confirm
	outcomeRejected                    // rejected for another definite reason (not_found, ...)
	outcomeUnknown                     // gave up: the outcome is unknown until replayed
	numOutcomes
)

func (o outcome) isRejection() bool { return o >= outcomeSoldOut && o <= outcomeRejected }

// classify maps a call's error to an outcome by its wire code, never by message text. A
// call that gave up (retries or the deadline ran out) may have been applied: unknown.
func classify(err error) outcome {
	if err == nil {
		return outcomeOK
	}
	var gave *client.GaveUpError
	if errors.As(err, &gave) {
		return outcomeUnknown
	}
	switch client.Code(err) {
	case api.SoldOut:
		return outcomeSoldOut
	case api.InsufficientStock:
		return outcomeInsufficient
	case api.LimitExceeded:
		return outcomeLimit
	case api.Expired:
		return outcomeExpired
	case api.NotFound, api.InvalidArgument, api.AlreadyExists, api.FailedPrecondition, api.Unauthorized, api.Overflow:
		return outcomeRejected
	}
	return outcomeUnknown // transport, decode or retryable error: may have been applied
}

// countingTransport counts what the client's retries hide: every attempt of a mutation,
// and every 429 the leader answered (the client waits Retry-After and tries again).
//
// For --failover it also times the first mutation acknowledged after a mark (the leader's
// kill): the first 2xx answer to an attempt sent at or after it. An answer the killed
// leader wrote just before dying may still be read after the kill; its attempt was sent
// before the mark, so it does not count.
type countingTransport struct {
	next       http.RoundTripper
	attempts   atomic.Uint64
	overloaded atomic.Uint64

	mark         atomic.Int64 // unix ns; 0: no mark
	ackAfterMark atomic.Int64 // unix ns of that first answer; 0: none yet
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	mutation := r.Method != http.MethodGet
	var sent int64
	if mutation {
		t.attempts.Add(1)
		sent = time.Now().UnixNano()
	}
	resp, err := t.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		t.overloaded.Add(1)
	}
	if err == nil && mutation && resp.StatusCode/100 == 2 {
		if m := t.mark.Load(); m != 0 && sent >= m && t.ackAfterMark.Load() == 0 {
			t.ackAfterMark.CompareAndSwap(0, time.Now().UnixNano())
		}
	}
	return resp, err
}

// setMark starts timing the first acknowledgement after at.
func (t *countingTransport) setMark(at time.Time) {
	t.ackAfterMark.Store(0)
	t.mark.Store(at.UnixNano())
}

// phaseStats are the counts and latencies of one phase of a run (the measured load, or the
// late buyers of a sell-out). Safe for concurrent use; bounded memory.
type phaseStats struct {
	counts   [numOutcomes]atomic.Uint64
	lat      *histogram
	timeline *timeline
	// measureFrom: ops that end before it (the warm-up) are not recorded.
	measureFrom time.Time
	lastOK      atomic.Int64 // unix ns of the last acknowledged sale
}

// newPhaseStats records ops that end from measureFrom on; tl may be shared by phases.
func newPhaseStats(measureFrom time.Time, tl *timeline) *phaseStats {
	return &phaseStats{lat: newHistogram(7), timeline: tl, measureFrom: measureFrom}
}

func (s *phaseStats) record(o outcome, start, end time.Time) {
	if end.Before(s.measureFrom) {
		return
	}
	lat := end.Sub(start)
	s.counts[o].Add(1)
	s.lat.Record(lat)
	s.timeline.record(end, o, lat)
	if o == outcomeOK {
		ns := end.UnixNano()
		for {
			last := s.lastOK.Load()
			if ns <= last || s.lastOK.CompareAndSwap(last, ns) {
				break
			}
		}
	}
}

func (s *phaseStats) count(o outcome) uint64 { return s.counts[o].Load() }

func (s *phaseStats) total() uint64 {
	var n uint64
	for i := range s.counts {
		n += s.counts[i].Load()
	}
	return n
}

// pendingOp is an op whose outcome was unknown: after the run it is sent again with the same
// request id, which returns its first answer if it was applied (exactly once) and applies it
// now if it was not; either way the books can then be checked exactly.
type pendingOp struct {
	sku     int
	qty     int64
	user    string
	reqID   string // the deduct's or the reserve's
	order   string // reserve mode
	settle  string // reserve mode: "confirm" or "cancel"
	settled bool   // reserve mode: the hold is known; only the settle is pending
}

// maxPending bounds the ops kept for replay; the units of those past it stay unknown.
const maxPending = 100_000

// load is one run of the scenario against one set of SKUs.
type load struct {
	sc      scenario
	clients []*client.Client
	skus    []string
	runID   string // random per run: request and order ids never collide across runs

	acked []atomic.Int64 // per SKU: units acknowledged as sold

	dups atomic.Uint64 // acknowledgements flagged duplicate: a retry's replayed first answer

	pendMu       sync.Mutex
	pending      []pendingOp
	lostUnknown  []int64 // per SKU: units of unknown ops past maxPending (guarded by pendMu)
	unknownTotal atomic.Uint64
}

func newLoad(sc scenario, clients []*client.Client, skus []string, runID string) *load {
	return &load{sc: sc, clients: clients, skus: skus, runID: runID,
		acked: make([]atomic.Int64, len(skus)), lostUnknown: make([]int64, len(skus))}
}

// buyer is one simulated buyer: its own SKU picker, ids and counters, so its loop takes no
// lock and allocates only what the client call needs.
type buyer struct {
	id    int
	cl    *client.Client
	pick  *picker
	user  string
	idBuf []byte // runID + "-" + buyer + "-": request ids append a counter to it
	base  int
	seq   uint64
}

func (l *load) newBuyer(id int, seed uint64) (*buyer, error) {
	p, err := newPicker(l.sc.popularity, len(l.skus), l.sc.zipfS, seed)
	if err != nil {
		return nil, err
	}
	b := &buyer{id: id, cl: l.clients[id%len(l.clients)], pick: p}
	b.user = l.runID + "-u" + strconv.Itoa(id)
	b.idBuf = append([]byte(l.runID+"-"), strconv.Itoa(id)...)
	b.idBuf = append(b.idBuf, '-')
	b.base = len(b.idBuf)
	return b, nil
}

// nextID returns a fresh id "<run>-<buyer>-<n><suffix>": unique without crypto/rand per op.
func (b *buyer) nextID(suffix byte) string {
	b.seq++
	buf := strconv.AppendUint(b.idBuf[:b.base], b.seq, 36)
	buf = append(buf, suffix)
	b.idBuf = buf[:b.base]
	return string(buf)
}

// withSuffix swaps the last byte of an id (order "…o" → its confirm "…c").
func withSuffix(id string, suffix byte) string {
	return id[:len(id)-1] + string(suffix)
}

// op runs one purchase and returns how it ended.
func (l *load) op(ctx context.Context, b *buyer) outcome {
	k := b.pick.pick()
	sku, qty := l.skus[k], l.sc.qty
	if l.sc.mode == modeDeduct {
		id := b.nextID('d')
		res, err := b.cl.Deduct(ctx, sku, qty, b.user, client.WithRequestID(id))
		o := classify(err)
		if res.Duplicate {
			l.dups.Add(1)
		}
		switch o {
		case outcomeOK:
			l.acked[k].Add(qty)
		case outcomeUnknown:
			l.addPending(pendingOp{sku: k, qty: qty, user: b.user, reqID: id})
		}
		return o
	}
	order := b.nextID('o')
	_, err := b.cl.Reserve(ctx, order, b.user, []api.Line{{SKU: sku, Qty: qty}}, l.sc.holdTTL,
		client.WithRequestID(withSuffix(order, 'r')))
	settle := "confirm"
	if b.pick.chance(l.sc.cancelRatio) {
		settle = "cancel"
	}
	o := classify(err)
	if o != outcomeOK {
		if o == outcomeUnknown {
			l.addPending(pendingOp{sku: k, qty: qty, user: b.user, reqID: withSuffix(order, 'r'), order: order, settle: settle})
		}
		return o
	}
	return l.settle(ctx, b.cl, k, qty, order, settle, true)
}

// settle confirms or cancels a held order; record says whether an unknown outcome is
// queued for replay.
func (l *load) settle(ctx context.Context, cl *client.Client, k int, qty int64, order, how string, record bool) outcome {
	var err error
	if how == "cancel" {
		_, err = cl.Cancel(ctx, order, client.WithRequestID(withSuffix(order, 'x')))
	} else {
		_, err = cl.Confirm(ctx, order, client.WithRequestID(withSuffix(order, 'c')))
	}
	o := classify(err)
	switch {
	case o == outcomeOK && how == "cancel":
		return outcomeCancelled
	case o == outcomeOK:
		l.acked[k].Add(qty)
	case o == outcomeUnknown && record:
		l.addPending(pendingOp{sku: k, qty: qty, order: order, settle: how, settled: true})
	}
	return o
}

func (l *load) addPending(p pendingOp) {
	l.unknownTotal.Add(1)
	l.pendMu.Lock()
	defer l.pendMu.Unlock()
	if len(l.pending) < maxPending {
		l.pending = append(l.pending, p)
		return
	}
	l.lostUnknown[p.sku] += p.qty
}

// replay sends every pending op again with its request id (bounded by timeout each) and
// returns the units per SKU whose outcome is still unknown.
func (l *load) replay(ctx context.Context, timeout time.Duration) (resolved int, unknown []int64) {
	unknown = append([]int64(nil), l.lostUnknown...)
	cl := l.clients[0]
	for _, p := range l.pending {
		if ctx.Err() != nil {
			unknown[p.sku] += p.qty
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		o := l.replayOne(cctx, cl, p)
		cancel()
		if o == outcomeUnknown {
			unknown[p.sku] += p.qty
			continue
		}
		resolved++
	}
	return resolved, unknown
}

func (l *load) replayOne(ctx context.Context, cl *client.Client, p pendingOp) outcome {
	sku := l.skus[p.sku]
	if p.order == "" {
		_, err := cl.Deduct(ctx, sku, p.qty, p.user, client.WithRequestID(p.reqID))
		o := classify(err)
		if o == outcomeOK {
			l.acked[p.sku].Add(p.qty)
		}
		return o
	}
	if !p.settled {
		_, err := cl.Reserve(ctx, p.order, p.user, []api.Line{{SKU: sku, Qty: p.qty}}, l.sc.holdTTL, client.WithRequestID(p.reqID))
		if o := classify(err); o != outcomeOK {
			return o
		}
	}
	return l.settle(ctx, cl, p.sku, p.qty, p.order, p.settle, false)
}

// drive runs buyers until stop says so, recording into stats. stopAtSoldOut ends a buyer at
// its first sold-out answer. ops bounds the ops started after stats.measureFrom (0: none).
func (l *load) drive(ctx context.Context, buyers []*buyer, stats *phaseStats, until time.Time, ops int64, stopAtSoldOut bool) {
	var started atomic.Int64
	var wg sync.WaitGroup
	for _, b := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(until) {
					return
				}
				if ops > 0 && !t0.Before(stats.measureFrom) && started.Add(1) > ops {
					return
				}
				o := l.op(ctx, b)
				stats.record(o, t0, time.Now())
				if stopAtSoldOut && o == outcomeSoldOut {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// warm opens each buyer's connection to the leader with a strong read, so the first measured ops do not
// pay for dialing. It returns the first error.
func (l *load) warm(ctx context.Context, buyers []*buyer) error {
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	sem := make(chan struct{}, 1024) // bound the dial burst
	for _, b := range buyers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := b.cl.GetSKU(ctx, l.skus[0]); err != nil {
				first.CompareAndSwap(nil, &err)
			}
		}()
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}
