package node

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// coalescer packs the mutations that arrive while earlier ones are in flight into one Batch
// log entry, so a hot SKU costs one entry (and, with raft's own batching, a share of one
// fsync) per batch of buyers, not per buyer. It adds no delay: an idle coalescer proposes
// at once; only while all proposal slots are busy do commands wait, and they then leave
// together.
//
// A slot is a proposer goroutine that lives as long as the group: with few buyers every
// deduction pays a whole batch, and a goroutine started per batch cost it a wake-up on the
// way and the growth of a new stack through raft's Apply (BENCHMARKS.md, "Where a lone
// deduction's CPU goes").
type coalescer struct {
	n     *Group
	mu    sync.Mutex
	queue []*waiter
	kick  chan struct{}
	// queued counts commands waiting or in flight: the admission bound applies to it.
	queued atomic.Int64
}

type waiter struct {
	cmd fsm.Command
	g   *group
	i   int // the command's place in g
}

// group is the commands of one submit call. Its commands may go out in several batches,
// proposed concurrently: each proposer writes its commands' outcomes, and the last one
// closes done. The proposer never blocks on a caller that left.
type group struct {
	res  []outcome
	left atomic.Int64
	done chan struct{}
}

func (w *waiter) settle(o outcome) {
	w.g.res[w.i] = o
	if w.g.left.Add(-1) == 0 {
		close(w.g.done)
	}
}

type outcome struct {
	res fsm.Result
	err error
}

// maxBatchesInFlight lets several batches pipeline through raft while the next one fills.
const maxBatchesInFlight = 8

func newCoalescer(n *Group) *coalescer {
	return &coalescer{n: n, kick: make(chan struct{}, 1)}
}

// submit proposes cmds (through the next batches) and waits for their results, or until
// ctx ends: then the outcome of every command is unknown to the caller. Past the
// admission bound nothing is queued and every command gets overloaded.
func (c *coalescer) submit(ctx context.Context, cmds []fsm.Command) []outcome {
	if c.queued.Add(int64(len(cmds))) > int64(c.n.cfg.MaxInflight) {
		c.queued.Add(-int64(len(cmds)))
		return failed(len(cmds), errOverloaded)
	}
	g, ws := newGroup(cmds)
	c.mu.Lock()
	for i := range ws {
		c.queue = append(c.queue, &ws[i])
	}
	c.mu.Unlock()
	c.wake()
	select {
	case <-g.done:
		return g.res
	case <-ctx.Done():
		// g.res is the proposers' until done: the caller gets a slice of its own.
		return failed(len(cmds), ctx.Err())
	}
}

// newGroup makes the group of cmds and a waiter for each.
func newGroup(cmds []fsm.Command) (*group, []waiter) {
	if len(cmds) == 1 {
		// A plain-HTTP request submits one command: its group, outcome and waiter take one
		// allocation instead of three.
		one := &struct {
			g   group
			res [1]outcome
			w   [1]waiter
		}{}
		one.g.res = one.res[:]
		one.w[0] = waiter{cmd: cmds[0], g: &one.g}
		one.g.done = make(chan struct{})
		one.g.left.Store(1)
		return &one.g, one.w[:]
	}
	g := &group{res: make([]outcome, len(cmds)), done: make(chan struct{})}
	g.left.Store(int64(len(cmds)))
	ws := make([]waiter, len(cmds))
	for i, cmd := range cmds {
		ws[i] = waiter{cmd: cmd, g: g, i: i}
	}
	return g, ws
}

func failed(n int, err error) []outcome {
	out := make([]outcome, n)
	for i := range out {
		out[i].err = err
	}
	return out
}

var errOverloaded = &api.Error{Code: api.Overloaded, Message: "too many commands in flight; retry after a moment"}

// run starts the proposers, maxBatchesInFlight in all (this goroutine is one of them).
func (c *coalescer) run() {
	for range maxBatchesInFlight - 1 {
		c.n.spawn(c.proposer)
	}
	c.proposer()
}

// proposer puts batches through the log one at a time while commands are queued, and
// sleeps when none are. One kick wakes one sleeping proposer; a busy one takes the queue
// itself when its batch is done, so a command queued while every proposer was busy leaves
// with the first to finish.
func (c *coalescer) proposer() {
	// The batch's time limit, reused: every batch would otherwise start a timer of its own
	// and a child of the group's context. (Since Go 1.23 a stopped or reset timer leaves no
	// stale tick in its channel, so a batch never sees the last one's.)
	expire := time.NewTimer(c.n.cfg.RequestTimeout)
	expire.Stop()
	for {
		select {
		case <-c.n.ctx.Done():
			c.fail(errNoLeader)
			return
		case <-c.kick:
		}
		for {
			c.mu.Lock()
			take := min(len(c.queue), fsm.MaxBatch)
			batch := c.queue[:take:take]
			c.queue = c.queue[take:]
			more := len(c.queue) > 0
			c.mu.Unlock()
			if take == 0 {
				break
			}
			if more {
				// Another proposer may be idle: the rest need not wait for this batch.
				c.wake()
			}
			expire.Reset(c.n.cfg.RequestTimeout)
			c.propose(batch, expire.C)
			expire.Stop()
		}
	}
}

func (c *coalescer) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// propose puts one batch through the log and hands each waiter its result; expire ends the
// wait (the outcome is then unknown to the waiters, as when their own context ends).
func (c *coalescer) propose(batch []*waiter, expire <-chan time.Time) {
	defer c.queued.Add(-int64(len(batch)))
	if len(batch) == 1 {
		res, err := c.n.proposeUntil(c.n.ctx, batch[0].cmd, expire)
		batch[0].settle(outcome{res, err})
		return
	}
	cmd := fsm.Command{Kind: fsm.KindBatch, Batch: make([]fsm.Command, len(batch))}
	for i, w := range batch {
		cmd.Batch[i] = w.cmd
	}
	res, err := c.n.proposeUntil(c.n.ctx, cmd, expire)
	for i, w := range batch {
		switch {
		case err != nil:
			w.settle(outcome{err: err})
		case len(res.Batch) != len(batch): // a batch the fsm refused as a whole
			w.settle(outcome{res: fsm.Result{Code: res.Code, Message: res.Message}})
		default:
			w.settle(outcome{res: res.Batch[i]})
		}
	}
}

// fail answers everything still queued when the node stops.
func (c *coalescer) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.queue {
		w.settle(outcome{err: err})
	}
	c.queue = nil
}
