package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/fsm"
)

// stalledCoalescer is a 1-node cluster whose log writes hang while stalled is set, with
// one SKU "hot"; release lets every hung write go on.
func stalledCoalescer(t *testing.T, tweak func(*Config)) (g *Group, stalled *atomic.Bool, release func()) {
	t.Helper()
	stalled = &atomic.Bool{}
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.ExpireInterval = time.Hour // no entries of the node's own during the test
		cfg.DiskStallTimeout = 0
		cfg.WrapLogStore = func(s raft.LogStore) raft.LogStore { return stallingStore{s, stalled, ch} }
		if tweak != nil {
			tweak(cfg)
		}
	})
	// Runs before the cluster's own cleanup: a node cannot stop while its write hangs.
	t.Cleanup(release)
	c.createSKU("hot", 1000)
	_, l := c.WaitLeader()
	return l.group(1), stalled, release
}

func deductCmd(id string) fsm.Command {
	return fsm.Command{Kind: fsm.KindDeduct, SKU: "hot", Qty: 1, RequestID: id, UserID: "u"}
}

// While every proposer waits on the log, new commands queue; the first proposer free takes
// all of them into one entry.
func TestCoalescer_CommandsQueuedWhileAllProposersBusyLeaveInOneEntry(t *testing.T) {
	g, stalled, release := stalledCoalescer(t, func(cfg *Config) { cfg.RequestTimeout = time.Minute })
	before := g.raft.LastIndex()
	stalled.Store(true)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	submit := func(id string) {
		defer wg.Done()
		o := g.coalesce.submit(context.Background(), []fsm.Command{deductCmd(id)})[0]
		if o.err != nil || !o.res.OK() {
			errs <- fmt.Errorf("%s: %v %+v", id, o.err, o.res)
		}
	}
	// One at a time, so that each is a batch of its own and every proposer is busy.
	for i := range maxBatchesInFlight {
		wg.Add(1)
		go submit(fmt.Sprintf("busy-%d", i))
		eventually(t, 10*time.Second, func() error {
			if n := g.coalesce.queued.Load(); n != int64(i+1) {
				return fmt.Errorf("%d commands in flight", n)
			}
			g.coalesce.mu.Lock()
			defer g.coalesce.mu.Unlock()
			if len(g.coalesce.queue) != 0 {
				return fmt.Errorf("%d still queued", len(g.coalesce.queue))
			}
			return nil
		})
	}
	const late = 20
	for i := range late {
		wg.Add(1)
		go submit(fmt.Sprintf("late-%d", i))
	}
	eventually(t, 10*time.Second, func() error {
		g.coalesce.mu.Lock()
		defer g.coalesce.mu.Unlock()
		if len(g.coalesce.queue) != late {
			return fmt.Errorf("%d queued, %d counted", len(g.coalesce.queue), g.coalesce.queued.Load())
		}
		return nil
	})
	stalled.Store(false)
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// One entry per busy proposer, and one for all the late commands.
	if got := g.raft.LastIndex() - before; got != maxBatchesInFlight+1 {
		t.Errorf("%d log entries for %d lone commands and %d queued ones, want %d", got, maxBatchesInFlight, late, maxBatchesInFlight+1)
	}
	eventually(t, 10*time.Second, func() error {
		if n := g.coalesce.queued.Load(); n != 0 {
			return fmt.Errorf("%d commands still counted in flight", n)
		}
		return nil
	})
}

// A batch the log does not resolve within RequestTimeout is answered as timed out (its
// outcome unknown), and its proposer goes on to the next batch.
func TestCoalescer_BatchPastRequestTimeoutTimesOutAndFreesItsProposer(t *testing.T) {
	g, stalled, release := stalledCoalescer(t, func(cfg *Config) { cfg.RequestTimeout = 300 * time.Millisecond })
	stalled.Store(true)
	var wg sync.WaitGroup
	outs := make([]outcome, maxBatchesInFlight+1)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = g.coalesce.submit(context.Background(), []fsm.Command{deductCmd(fmt.Sprintf("t-%d", i))})[0]
		}()
	}
	wg.Wait() // every proposer timed out at least once, and the last command was proposed too
	for i, o := range outs {
		if !errors.Is(o.err, context.DeadlineExceeded) {
			t.Errorf("command %d: %v %+v, want a timeout", i, o.err, o.res)
		}
	}
	// A proposer settles its waiters before it stops counting their commands.
	eventually(t, 10*time.Second, func() error {
		if n := g.coalesce.queued.Load(); n != 0 {
			return fmt.Errorf("%d commands still counted in flight", n)
		}
		return nil
	})
	stalled.Store(false)
	release()
	// The proposers are free again: a new command goes through.
	eventually(t, 10*time.Second, func() error {
		o := g.coalesce.submit(context.Background(), []fsm.Command{deductCmd("after")})[0]
		if o.err != nil || !o.res.OK() {
			return fmt.Errorf("after the stall: %v %+v", o.err, o.res)
		}
		return nil
	})
}
