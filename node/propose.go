package node

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// propose puts a command through the log and returns its result once it is committed and
// applied. The leader stamps cluster time (clusterclock.go) into the command here, outside
// apply, so every replica sees the same time.
//
// Admission is not done here but where clients' commands enter (the coalescer, which
// counts commands, not entries); the node's own proposals (hold expiry, member records,
// term no-ops) come from loops that wait for each one, so they are bounded already.
func (g *Group) propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	return g.proposeUntil(ctx, cmd, nil)
}

// proposeUntil is propose that also stops waiting when expire fires (a nil expire never
// does): the coalescer's proposers wait on a timer of their own rather than a context per
// batch.
func (g *Group) proposeUntil(ctx context.Context, cmd fsm.Command, expire <-chan time.Time) (fsm.Result, error) {
	if g.raft.State() != raft.Leader {
		return fsm.Result{}, errNotLeader
	}
	// Commands carry cluster time, which a leader has only once its term is ready.
	term := g.raft.CurrentTerm()
	if err := g.waitTermReady(ctx, term, 2*g.cfg.ElectionTimeout); err != nil {
		return fsm.Result{}, err
	}
	timeout := g.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 { // raft reads 0 as "wait forever"
		return fsm.Result{}, context.DeadlineExceeded
	}
	// Stamp and append under one lock, so the times in the log never decrease.
	g.proposeMu.Lock()
	now, ok := g.clock.stamp(term, time.Now())
	if !ok {
		g.proposeMu.Unlock()
		return fsm.Result{}, errNotLeader // a newer term started since the wait
	}
	cmd.Time = now
	for i := range cmd.Batch {
		cmd.Batch[i].Time = now
	}
	data, err := fsm.Encode(cmd)
	if err != nil {
		g.proposeMu.Unlock()
		return fsm.Result{}, &api.Error{Code: api.InvalidArgument, Message: err.Error()}
	}
	g.inflight.Add(1)
	f := g.raft.Apply(data, timeout)
	g.proposeMu.Unlock()
	// raft resolves every future (commit, lost leadership or shutdown), so this goroutine
	// ends; the caller stops waiting earlier if its context ends.
	resolved := make(chan error, 1)
	go func() {
		resolved <- f.Error()
		g.inflight.Add(-1)
	}()
	select {
	case err := <-resolved:
		if err != nil {
			return fsm.Result{}, err
		}
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	case <-expire:
		return fsm.Result{}, context.DeadlineExceeded
	}
	switch r := f.Response().(type) {
	case fsm.Result:
		return r, nil
	case applyFailed:
		return fsm.Result{}, fmt.Errorf("apply failed on the leader: %w", r.err)
	default:
		return fsm.Result{}, fmt.Errorf("unexpected apply response %T", r)
	}
}
