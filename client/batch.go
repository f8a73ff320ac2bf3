package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashstock/flashstock/api"
)

// batcher sends concurrent Deduct calls together as POST /v1/batch/deduct. It adds no delay:
// an idle batcher sends a call at once (after letting goroutines already runnable queue
// theirs, see settle); calls made while maxBatchesInFlight requests are out wait and leave
// together in the next one. Each call keeps its own request_id and gets
// its own answer and retries: an item the server answers with a retryable error, or every
// item of a request whose outcome is unknown, goes back into the queue after a backoff, with
// its attempt number raised (only a first attempt may be answered from a read, see
// api.HeaderAttempt).
//
// Batches travel in api.BatchContentType, not JSON, to a node known to read it: one that has
// answered a batch in it. Until then a node gets JSON, asked for a binary answer, so a node
// of a release without the encoding is never sent a body it cannot read.
type batcher struct {
	c     *Client
	p     *pool
	mu    sync.Mutex
	queue []*pendingDeduct
	kick  chan struct{}
	slots chan struct{}
	// work hands a batch to one of up to maxBatchesInFlight senders, goroutines that live as
	// long as the client: a goroutine started per request grew a new stack through net/http's
	// Client.Do every time, 8% of the client's CPU with 16 buyers (BENCHMARKS.md, "Where a
	// lone deduction's CPU goes").
	work chan []*pendingDeduct

	binary sync.Map // addresses of nodes that answered in api.BatchContentType
}

type pendingDeduct struct {
	ctx  context.Context
	item api.DeductItem     // owned by the batcher; the caller reads tries and last instead
	done chan deductOutcome // buffered: the batcher never waits for a caller that left

	tries atomic.Int64
	last  atomic.Pointer[error]
}

type deductOutcome struct {
	resp api.DeductResponse
	err  error
}

const (
	maxBatchesInFlight = 4
	// pipelineMin is how many calls must wait before a batch goes while another is in
	// flight. Fewer, larger requests cost the cluster far less per deduction than many small
	// ones (one HTTP exchange, one log entry, one state transaction each): on 3 local nodes,
	// one request in flight sold 30-60% more than eight (stockctl bench: one hot SKU,
	// 1000 SKUs, late buyers turned away). But a queue this long is worth a request of its
	// own rather than a wait for the answer in flight: at 512 buyers 256 beat 1024 in six
	// interleaved rounds (by 5-24%), and 128 lost to both.
	pipelineMin = 256
	// maxSettleYields bounds settle: enough for hundreds of woken callers to queue, few
	// enough that a steady trickle of new calls cannot hold a request back.
	maxSettleYields = 16
)

func newBatcher(c *Client, p *pool) *batcher {
	return &batcher{c: c, p: p, kick: make(chan struct{}, 1), slots: make(chan struct{}, maxBatchesInFlight),
		work: make(chan []*pendingDeduct)}
}

func (b *batcher) deduct(ctx context.Context, item api.DeductItem) (api.DeductResponse, error) {
	if b.c.ctx.Err() != nil {
		return api.DeductResponse{}, ErrClosed
	}
	d := &pendingDeduct{ctx: ctx, item: item, done: make(chan deductOutcome, 1)}
	b.enqueue(d)
	select {
	case o := <-d.done:
		return o.resp, o.err
	case <-ctx.Done():
		return api.DeductResponse{}, d.gaveUp(ctx.Err())
	case <-b.c.ctx.Done():
		return api.DeductResponse{}, d.gaveUp(ErrClosed)
	}
}

func (d *pendingDeduct) gaveUp(cause error) *GaveUpError {
	var last error
	if p := d.last.Load(); p != nil {
		last = *p
	}
	return &GaveUpError{Attempts: int(d.tries.Load()), RequestID: d.item.RequestID, Cause: cause, Last: last}
}

func (b *batcher) enqueue(d *pendingDeduct) {
	b.mu.Lock()
	b.queue = append(b.queue, d)
	b.mu.Unlock()
	b.wake()
}

// run fills a request when calls are waiting and none is in flight, or another slot is
// free and at least pipelineMin calls are waiting.
func (b *batcher) run() {
	senders := 0 // started on demand: a group's pool that never pipelines needs one
	for {
		select {
		case <-b.c.ctx.Done():
			return
		case <-b.kick:
		}
		for {
			select {
			case b.slots <- struct{}{}:
			case <-b.c.ctx.Done():
				return
			}
			if len(b.slots) > 1 && b.waiting() < pipelineMin {
				<-b.slots
				break // the request in flight kicks when it is done
			}
			if len(b.slots) == 1 {
				b.settle()
			}
			batch := b.take()
			if len(batch) == 0 {
				<-b.slots
				break
			}
			if senders < len(b.slots) {
				if !b.c.spawn(b.sender) {
					return
				}
				senders++
			}
			// Every other slot held is a sender's, so one is free or about to be.
			select {
			case b.work <- batch:
			case <-b.c.ctx.Done():
				return
			}
		}
	}
}

// sender makes the requests run hands it, one at a time, each under the slot run took.
func (b *batcher) sender() {
	for {
		select {
		case batch := <-b.work:
			b.send(batch)
			<-b.slots
			b.wake()
		case <-b.c.ctx.Done():
			return
		}
	}
}

// settle lets the callers an answer just released come back before the next request goes.
// Buyers in a closed loop call again the moment their answer arrives, but they wake one by
// one after the request's goroutine hands the answers out; taking the queue at once sent
// the first few back alone and left the rest a whole round trip behind them, so requests
// alternated between a handful of calls and the others. Yielding to runnable goroutines
// until the queue stops growing costs no timer: an idle batcher still sends a lone call at
// once. At 128 buyers on 3 local nodes, calls per request went from ~60 to ~100 and
// deductions/s up 44-66% (stockctl bench, three interleaved rounds, 1000 SKUs).
func (b *batcher) settle() {
	n := b.waiting()
	for range maxSettleYields {
		runtime.Gosched()
		m := b.waiting()
		if m == n {
			return
		}
		n = m
	}
}

func (b *batcher) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

func (b *batcher) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// take removes up to api.MaxBatchItems waiting calls, dropping those whose caller left.
func (b *batcher) take() []*pendingDeduct {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []*pendingDeduct
	n := 0
	for ; n < len(b.queue) && len(batch) < api.MaxBatchItems; n++ {
		if d := b.queue[n]; d.ctx.Err() == nil {
			batch = append(batch, d)
		}
	}
	b.queue = b.queue[n:]
	return batch
}

// send makes one request for a batch and settles or requeues each call.
func (b *batcher) send(batch []*pendingDeduct) {
	req := api.BatchDeductRequest{Items: make([]api.DeductItem, len(batch))}
	for i, d := range batch {
		d.item.Attempt++
		d.tries.Store(int64(d.item.Attempt))
		req.Items[i] = d.item
	}
	e := b.p.pickLeader()
	call := &request{method: http.MethodPost, path: "/v1/batch/deduct", route: toLeader, accept: batchContentType}
	_, binary := b.binary.Load(e.addr)
	if binary {
		call.body, call.contentType = api.AppendBatchDeductRequest(nil, &req), batchContentType
	} else {
		body, err := json.Marshal(req)
		if err != nil {
			for _, d := range batch {
				d.done <- deductOutcome{err: err}
			}
			return
		}
		call.body = body
	}
	e.outstanding.Add(1)
	defer e.outstanding.Add(-1)
	ctx, cancel := context.WithTimeout(b.c.ctx, b.c.cfg.AttemptTimeout)
	defer cancel()
	resp, err := b.c.send(ctx, e, call)
	if err != nil {
		b.p.failed(e)
		b.retryAll(batch, &transportError{addr: e.addr, err: err}, -1)
		return
	}
	defer drainClose(resp.Body)
	if resp.StatusCode/100 != 2 {
		ae := readError(resp)
		if binary && ae.Code == api.InvalidArgument {
			// What refuses a well-formed binary batch whole is a node that cannot read it
			// (rolled back to a release without it): the next batch asks it in JSON again.
			b.binary.Delete(e.addr)
		}
		if !ae.Code.Retryable() {
			for _, d := range batch {
				d.done <- deductOutcome{err: ae}
			}
			return
		}
		wait := time.Duration(-1)
		switch ae.Code {
		case api.NotLeader, api.NoLeader:
			b.p.notLeader(e)
			b.c.router.markStale()
			if ae.Leader != "" && ae.Leader != e.addr {
				b.p.follow(ae.Leader)
				wait = 0
			}
		case api.Overloaded:
			wait = retryAfter(resp)
		}
		b.retryAll(batch, ae, wait)
		return
	}
	binaryAnswer := api.IsMediaType(resp.Header.Get("Content-Type"), api.BatchContentType)
	if binaryAnswer && !binary {
		b.binary.Store(e.addr, struct{}{})
	}
	out, err := readBatchAnswer(resp.Body, binaryAnswer)
	if err != nil || len(out.Results) != len(batch) {
		// An answer we cannot read: its items' outcome is unknown.
		b.retryAll(batch, &transportError{addr: e.addr, err: errBadBatchAnswer}, -1)
		return
	}
	for i, d := range batch {
		r := out.Results[i]
		switch {
		case r.Error == nil:
			d.done <- deductOutcome{resp: api.DeductResponse{Remaining: r.Remaining, Duplicate: r.Duplicate}}
		case !r.Error.Code.Retryable():
			d.done <- deductOutcome{err: r.Error}
		default:
			if r.Error.Code == api.NotLeader {
				b.c.router.markStale()
				if r.Error.Leader != "" {
					b.p.follow(r.Error.Leader)
				}
			}
			b.retry(d, r.Error, -1)
		}
	}
}

var errBadBatchAnswer = errors.New("unreadable batch answer")

var batchContentType = []string{api.BatchContentType}

// readBatchAnswer decodes a 2xx batch answer, binary or JSON as its Content-Type says: a node
// of a release without the binary encoding ignores Accept and answers JSON.
func readBatchAnswer(body io.Reader, binary bool) (api.BatchDeductResponse, error) {
	if !binary {
		var out api.BatchDeductResponse
		err := json.NewDecoder(body).Decode(&out)
		return out, err
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return api.BatchDeductResponse{}, err
	}
	return api.DecodeBatchDeductResponse(raw)
}

func (b *batcher) retryAll(batch []*pendingDeduct, err error, wait time.Duration) {
	for _, d := range batch {
		b.retry(d, err, wait)
	}
}

// retry puts a call back in the queue after wait (-1: a backoff step), unless it ran out of
// attempts; its caller may have left meanwhile, and then take drops it.
func (b *batcher) retry(d *pendingDeduct, err error, wait time.Duration) {
	d.last.Store(&err)
	if max := b.c.cfg.MaxAttempts; max > 0 && d.item.Attempt >= max {
		d.done <- deductOutcome{err: d.gaveUp(nil)}
		return
	}
	if wait < 0 {
		wait = b.c.backoff(d.item.Attempt)
	}
	if wait == 0 {
		b.enqueue(d)
		return
	}
	time.AfterFunc(wait, func() { b.enqueue(d) })
}
