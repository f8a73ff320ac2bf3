package clustertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// orderLoad reserves stock for orders and then confirms or cancels each, on SKUs of its
// own (the porcupine model knows only deductions and restocks), retrying every call with
// its request_id until it gets a definite answer or its time runs out. Its end check
// compares what was acknowledged with the orders and the stock the cluster ends with.
type orderLoad struct {
	skus    []string
	initial int64
	stop    context.CancelFunc
	done    chan struct{}

	mu     sync.Mutex
	orders []*loadOrder
	dups   int // retried calls answered as duplicates
}

// loadOrder is one order's calls and what they were answered.
type loadOrder struct {
	id, sku string
	qty     int64
	// reserve: "ok", "rejected" (a definite error) or "" (unknown).
	reserve string
	action  string // "confirm", "cancel" or "" (none tried)
	// acted: the action's definite answer was a success.
	acted bool
}

// startOrders creates the hold SKUs and starts workers reserving and settling orders.
func (e *env) startOrders(workers int) *orderLoad {
	e.t.Helper()
	h := &orderLoad{skus: []string{"hold-a", "hold-b"}, initial: 100_000, done: make(chan struct{})}
	cl := e.client(e.c.HTTPAddrs(e.members...))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, sku := range h.skus {
		e.createSKU(ctx, cl, sku, h.initial)
	}
	runCtx, stop := context.WithCancel(context.Background())
	h.stop = stop
	var wg sync.WaitGroup
	for w := range workers {
		c := e.client(e.c.HTTPAddrs())
		rng := rand.New(rand.NewPCG(uint64(e.seed), uint64(100+w)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for seq := 0; runCtx.Err() == nil; seq++ {
				o := &loadOrder{id: fmt.Sprintf("%s-hold%d-%d", e.tag, w, seq), sku: h.skus[rng.IntN(len(h.skus))], qty: 1 + rng.Int64N(3)}
				h.mu.Lock()
				h.orders = append(h.orders, o)
				h.mu.Unlock()
				h.run(c, rng, o)
				_ = pause(runCtx, time.Duration(rng.IntN(40))*time.Millisecond)
			}
		}()
	}
	go func() { wg.Wait(); close(h.done) }()
	e.events.add("hold load started: %d workers", workers)
	return h
}

// run reserves o and then confirms or cancels it.
func (h *orderLoad) run(c *client.Client, rng *rand.Rand, o *loadOrder) {
	lines := []api.Line{{SKU: o.sku, Qty: o.qty}}
	var definite bool
	o.reserve, definite = h.call(func(ctx context.Context) (bool, error) {
		// A TTL far beyond the run: no hold expires (the scenarios run --expire-interval 1h).
		ord, err := c.Reserve(ctx, o.id, "buyer", lines, time.Hour, client.WithRequestID(o.id+"-reserve"))
		return ord.Duplicate, err
	})
	if !definite || o.reserve != "ok" {
		return
	}
	o.action = "confirm"
	if rng.IntN(5) < 2 {
		o.action = "cancel"
	}
	res, _ := h.call(func(ctx context.Context) (bool, error) {
		var ord api.Order
		var err error
		if o.action == "confirm" {
			ord, err = c.Confirm(ctx, o.id, client.WithRequestID(o.id+"-"+o.action))
		} else {
			ord, err = c.Cancel(ctx, o.id, client.WithRequestID(o.id+"-"+o.action))
		}
		return ord.Duplicate, err
	})
	h.mu.Lock()
	o.acted = res == "ok"
	h.mu.Unlock()
}

// call retries fn with the same request_id for up to 8s; it returns "ok" or "rejected"
// with definite=true, or "" when the outcome stays unknown.
func (h *orderLoad) call(fn func(ctx context.Context) (dup bool, err error)) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	for tries := 0; ; tries++ {
		dup, err := fn(ctx)
		if err == nil {
			if dup {
				h.mu.Lock()
				h.dups++
				h.mu.Unlock()
			}
			return "ok", true
		}
		var ge *client.GaveUpError
		if code := client.Code(err); code != "" && !code.Retryable() && !errors.As(err, &ge) {
			return "rejected", true
		}
		if pause(ctx, 50*time.Millisecond) != nil {
			return "", false
		}
	}
}

// Stop ends the hold load and waits for its calls.
func (h *orderLoad) Stop() {
	h.stop()
	<-h.done
}

// check reads every order and the hold SKUs on every member of a converged cluster:
// acknowledged reservations exist, acknowledged confirms and cancels stuck, a rejected
// reservation left nothing, and each replica's stock is what its orders say.
func (h *orderLoad) check(ctx context.Context, e *env) (problems []string, acked int) {
	cl := e.client(e.c.HTTPAddrs(e.members...))
	defer cl.Close()
	held, sold := map[string]int64{}, map[string]int64{}
	h.mu.Lock()
	orders := append([]*loadOrder(nil), h.orders...)
	h.mu.Unlock()
	for _, o := range orders {
		ord, err := cl.GetOrder(ctx, o.id)
		switch {
		case client.Code(err) == api.NotFound:
			if o.reserve == "ok" {
				problems = append(problems, fmt.Sprintf("LOST: order %s was reserved (acknowledged) and does not exist", o.id))
			}
			continue
		case err != nil: // the cluster does not answer: the other checks say why
			return append(problems, fmt.Sprintf("orders not checked: read order %s: %v", o.id, err)), acked
		case o.reserve == "rejected":
			problems = append(problems, fmt.Sprintf("PHANTOM: order %s was rejected and exists (%s)", o.id, ord.Status))
		}
		if o.reserve == "ok" {
			acked++
		}
		if o.acted {
			want := map[string]string{"confirm": api.OrderConfirmed, "cancel": api.OrderCancelled}[o.action]
			if ord.Status != want {
				problems = append(problems, fmt.Sprintf("LOST: order %s: %s acknowledged, status %s", o.id, o.action, ord.Status))
			}
		}
		switch ord.Status {
		case api.OrderHeld:
			held[o.sku] += o.qty
		case api.OrderConfirmed, api.OrderShipped:
			sold[o.sku] += o.qty
		}
	}
	for _, sku := range h.skus {
		for _, id := range e.members {
			s, err := e.c.LocalSKU(ctx, e.c.Member(id), sku)
			if err != nil {
				problems = append(problems, fmt.Sprintf("read %s on %s: %v", sku, id, err))
				continue
			}
			if s.Reserved != held[sku] || s.Sold != sold[sku] || s.Available+s.Reserved+s.Sold != h.initial {
				problems = append(problems, fmt.Sprintf("%s on %s: available %d reserved %d sold %d; the orders hold %d and sold %d of %d",
					sku, id, s.Available, s.Reserved, s.Sold, held[sku], sold[sku], h.initial))
			}
		}
	}
	sort.Strings(problems)
	return problems, acked
}
