package node

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// coalescer packs the mutations that arrive while earlier ones are in flight into one Batch
// log entry, so a hot SKU costs one entry (and, with raft's own batching, a share of one
// fsync) per batch of buyers, not per buyer. It adds no delay: an idle coalescer proposes
// at once; only while all proposal slots are busy do commands wait, and they then leave
// together.
type coalescer struct {
	n     *Node
	mu    sync.Mutex
	queue []*waiter
	kick  chan struct{}
	slots chan struct{} // batches in flight at once
	// queued counts commands waiting or in flight: the admission bound applies to it.
	queued atomic.Int64
}

type waiter struct {
	cmd  fsm.Command
	done chan outcome // buffered: the proposer never blocks on a caller that left
}

type outcome struct {
	res fsm.Result
	err error
}

// maxBatchesInFlight lets several batches pipeline through raft while the next one fills.
const maxBatchesInFlight = 8

func newCoalescer(n *Node) *coalescer {
	return &coalescer{n: n, kick: make(chan struct{}, 1), slots: make(chan struct{}, maxBatchesInFlight)}
}

// submit proposes cmds (through the next batches) and waits for their results, or until
// ctx ends: then the outcome of what was queued is unknown to the caller. Past the
// admission bound nothing is queued and every command gets overloaded.
func (c *coalescer) submit(ctx context.Context, cmds []fsm.Command) []outcome {
	out := make([]outcome, len(cmds))
	if c.queued.Add(int64(len(cmds))) > int64(c.n.cfg.MaxInflight) {
		c.queued.Add(-int64(len(cmds)))
		for i := range out {
			out[i].err = errOverloaded
		}
		return out
	}
	ws := make([]*waiter, len(cmds))
	c.mu.Lock()
	for i, cmd := range cmds {
		ws[i] = &waiter{cmd: cmd, done: make(chan outcome, 1)}
		c.queue = append(c.queue, ws[i])
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	for i, w := range ws {
		select {
		case out[i] = <-w.done:
		case <-ctx.Done():
			for j := i; j < len(out); j++ {
				out[j].err = ctx.Err()
			}
			return out
		}
	}
	return out
}

var errOverloaded = &api.Error{Code: api.Overloaded, Message: "too many commands in flight; retry after a moment"}

// run takes queued commands into batches while a proposal slot is free.
func (c *coalescer) run() {
	for {
		select {
		case <-c.n.ctx.Done():
			c.fail(errNoLeader)
			return
		case <-c.kick:
		}
		for {
			select {
			case c.slots <- struct{}{}:
			case <-c.n.ctx.Done():
				c.fail(errNoLeader)
				return
			}
			c.mu.Lock()
			take := min(len(c.queue), fsm.MaxBatch)
			batch := c.queue[:take:take]
			c.queue = c.queue[take:]
			c.mu.Unlock()
			if take == 0 {
				<-c.slots
				break
			}
			c.n.spawn(func() {
				defer func() { <-c.slots }()
				c.propose(batch)
			})
		}
	}
}

// propose puts one batch through the log and hands each waiter its result.
func (c *coalescer) propose(batch []*waiter) {
	defer c.queued.Add(-int64(len(batch)))
	ctx, cancel := context.WithTimeout(c.n.ctx, c.n.cfg.RequestTimeout)
	defer cancel()
	if len(batch) == 1 {
		res, err := c.n.propose(ctx, batch[0].cmd)
		batch[0].done <- outcome{res, err}
		return
	}
	cmd := fsm.Command{Kind: fsm.KindBatch, Batch: make([]fsm.Command, len(batch))}
	for i, w := range batch {
		cmd.Batch[i] = w.cmd
	}
	res, err := c.n.propose(ctx, cmd)
	for i, w := range batch {
		switch {
		case err != nil:
			w.done <- outcome{err: err}
		case len(res.Batch) != len(batch): // a batch the fsm refused as a whole
			w.done <- outcome{res: fsm.Result{Code: res.Code, Message: res.Message}}
		default:
			w.done <- outcome{res: res.Batch[i]}
		}
	}
}

// fail answers everything still queued when the node stops.
func (c *coalescer) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.queue {
		w.done <- outcome{err: err}
	}
	c.queue = nil
}
