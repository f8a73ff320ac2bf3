package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// Workload is the load the scenarios drive: workers buying (deduct), restocking and
// reading a few SKUs concurrently, each operation recorded in a History.
type Workload struct {
	SKUs       []string
	Initial    int64 // stock of every SKU when the history begins
	Workers    int
	ReadPct    int // share of strong reads, in percent
	RestockPct int // share of restocks; the rest are deductions
	MaxDeduct  int64
	MaxRestock int64
	Think      time.Duration // most a worker pauses between operations
	// OpTimeout bounds one logical operation, all its retries included; past it the
	// operation is recorded as unknown.
	OpTimeout time.Duration
	// DropResponses is the chance that a mutation's answer is discarded after the server
	// sent it, so the client retries a request that was applied.
	DropResponses float64
}

// defaultWorkload is the short form's load: a few SKUs that sell out and are restocked.
func defaultWorkload() Workload {
	return Workload{
		SKUs: []string{"sku-a", "sku-b", "sku-c", "sku-d"}, Initial: 40, Workers: 6,
		ReadPct: 30, RestockPct: 12, MaxDeduct: 3, MaxRestock: 6,
		Think: 40 * time.Millisecond, OpTimeout: 8 * time.Second,
	}
}

// recorder is one logical client: it runs one operation at a time and records each. After
// an operation whose outcome stays unknown it takes a new process id, as Jepsen does: the
// unknown one may still be "running" until infinity.
type recorder struct {
	hist    *History
	c       *client.Client
	rng     *rand.Rand
	tag     string
	seq     int
	process int
	procs   *atomic.Int64
	pinned  string
	opTO    time.Duration
	dropped *atomic.Int64
}

// clientConfig is the client setup of every recorder: quick health checks and bounded
// attempts, so an operation ends within its OpTimeout.
func clientConfig(endpoints []string, tr http.RoundTripper) client.Config {
	return client.Config{
		Endpoints:      endpoints,
		HealthInterval: 250 * time.Millisecond,
		HealthTimeout:  500 * time.Millisecond,
		DialTimeout:    500 * time.Millisecond,
		AttemptTimeout: requestTimeout + time.Second,
		MaxAttempts:    6,
		BackoffBase:    20 * time.Millisecond,
		BackoffMax:     250 * time.Millisecond,
		Transport:      tr,
	}
}

// newTransport is a recorder's own connection pool.
func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 500 * time.Millisecond}).DialContext,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       10 * time.Second,
		ResponseHeaderTimeout: requestTimeout + time.Second,
	}
}

// dropResponses forwards a request and then, with probability p for a mutation (POST),
// throws the real answer away and fails the try as if the connection broke after the
// server answered: the client retries with the same request_id.
type dropResponses struct {
	next    http.RoundTripper
	p       float64
	mu      sync.Mutex
	rng     *rand.Rand
	dropped *atomic.Int64
}

func (d *dropResponses) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := d.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost {
		return resp, err
	}
	d.mu.Lock()
	drop := d.rng.Float64() < d.p
	d.mu.Unlock()
	if !drop {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d.dropped.Add(1)
	return nil, errors.New("chaos: response dropped after the server answered")
}

// newRecorder makes a logical client over endpoints.
func newRecorder(hist *History, endpoints []string, seed uint64, tag string, procs *atomic.Int64, w Workload, dropped *atomic.Int64) (*recorder, func(), error) {
	tr := newTransport()
	var rt http.RoundTripper = tr
	if w.DropResponses > 0 {
		rt = &dropResponses{next: tr, p: w.DropResponses, rng: rand.New(rand.NewPCG(seed, 7)), dropped: dropped}
	}
	c, err := client.New(clientConfig(endpoints, rt))
	if err != nil {
		return nil, nil, err
	}
	r := &recorder{hist: hist, c: c, rng: rand.New(rand.NewPCG(seed, 1)), tag: tag,
		process: int(procs.Add(1) - 1), procs: procs, opTO: w.OpTimeout, dropped: dropped}
	if len(endpoints) == 1 {
		r.pinned = endpoints[0]
	}
	return r, func() { c.Close(); tr.CloseIdleConnections() }, nil
}

// do runs one logical operation: the client's own retries, then further calls with the
// same request_id until OpTimeout, and records it.
func (r *recorder) do(in Input) Op {
	r.seq++
	op := Op{Client: r.process, Input: in, Pinned: r.pinned}
	if in.Kind != OpRead {
		op.RequestID = fmt.Sprintf("%s-p%d-%d", r.tag, r.process, r.seq)
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opTO)
	defer cancel()
	op.Call = r.hist.Now()
	for {
		op.Tries++
		out, dup, retry := r.once(ctx, in, op.RequestID)
		op.Output, op.Duplicate = out, dup
		if !retry || ctx.Err() != nil || in.Kind == OpRead {
			break
		}
		if pause(ctx, 50*time.Millisecond) != nil {
			break
		}
	}
	op.Return = r.hist.Now()
	r.hist.Add(op)
	if op.Output.Outcome == OutUnknown {
		r.process = int(r.procs.Add(1) - 1)
	}
	return op
}

// once makes one client call; retry says the outcome is unknown and a call with the same
// request_id may settle it.
func (r *recorder) once(ctx context.Context, in Input, reqID string) (out Output, dup, retry bool) {
	var err error
	switch in.Kind {
	case OpDeduct:
		var res api.DeductResponse
		res, err = r.c.Deduct(ctx, in.SKU, in.Qty, "buyer", client.WithRequestID(reqID))
		if err == nil {
			return Output{Outcome: OutOK, Value: res.Remaining}, res.Duplicate, false
		}
	case OpRestock:
		var s api.SKU
		s, err = r.c.Restock(ctx, in.SKU, in.Qty, client.WithRequestID(reqID))
		if err == nil {
			return Output{Outcome: OutOK, Value: s.Available}, s.Duplicate, false
		}
	case OpRead:
		var s api.SKU
		s, err = r.c.GetSKU(ctx, in.SKU)
		if err == nil {
			return Output{Outcome: OutOK, Value: s.Available}, false, false
		}
	}
	switch code := client.Code(err); {
	case code == api.SoldOut:
		return Output{Outcome: OutSoldOut}, false, false
	case code == api.InsufficientStock:
		return Output{Outcome: OutInsufficient}, false, false
	case code != "" && !code.Retryable():
		var ge *client.GaveUpError
		if !errors.As(err, &ge) {
			return Output{Outcome: OutError, Err: err.Error()}, false, false
		}
	}
	return Output{Outcome: OutUnknown, Err: err.Error()}, false, true
}

// next picks a random operation of the workload.
func (r *recorder) next(w Workload) Input {
	sku := w.SKUs[r.rng.IntN(len(w.SKUs))]
	switch p := r.rng.IntN(100); {
	case p < w.ReadPct:
		return Input{Kind: OpRead, SKU: sku}
	case p < w.ReadPct+w.RestockPct:
		return Input{Kind: OpRestock, SKU: sku, Qty: 1 + r.rng.Int64N(w.MaxRestock)}
	default:
		return Input{Kind: OpDeduct, SKU: sku, Qty: 1 + r.rng.Int64N(w.MaxDeduct)}
	}
}

// load is a running workload.
type load struct {
	stop    context.CancelFunc
	done    chan struct{}
	dropped atomic.Int64
	acks    atomic.Int64 // definite answers to mutations
	lastAck atomic.Int64 // history time of the latest one
}

// startLoad runs w's workers against endpoints until stopLoad; each worker's choices come
// from the seed.
func startLoad(hist *History, endpoints []string, seed int64, tag string, procs *atomic.Int64, w Workload) (*load, error) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{stop: cancel, done: make(chan struct{})}
	var recs []*recorder
	var closers []func()
	for i := range w.Workers {
		r, closeFn, err := newRecorder(hist, endpoints, uint64(seed)*1000+uint64(i), tag, procs, w, &l.dropped)
		if err != nil {
			cancel()
			for _, c := range closers {
				c()
			}
			return nil, err
		}
		recs = append(recs, r)
		closers = append(closers, closeFn)
	}
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				op := r.do(r.next(w))
				if op.Acked() {
					l.acks.Add(1)
					l.lastAck.Store(op.Return)
				}
				if w.Think > 0 {
					_ = pause(ctx, time.Duration(r.rng.Int64N(int64(w.Think))))
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		for _, c := range closers {
			c()
		}
		close(l.done)
	}()
	return l, nil
}

// Stop ends the workload: no new operation starts, and running ones end within their
// OpTimeout.
func (l *load) Stop() {
	l.stop()
	<-l.done
}
