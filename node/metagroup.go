package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

// metaStateMachine adapts placement/meta.Machine, the meta group's state machine, to
// raft.FSM. The meta group is a Group like any other (same stores, transport, raft
// wiring); only its state machine and the loops it runs differ (Group.isMeta).
type metaStateMachine struct {
	m *meta.Machine
	// fatal stops the group: an entry this build cannot read poisons the machine, and a
	// replica that skipped it would route by a diverging placement.
	fatal func(error)
}

var _ raft.FSM = (*metaStateMachine)(nil)

// Apply answers a command entry with its meta.Result. Other entries (configuration
// changes) are not the machine's: it keeps its own applied index of commands.
func (s *metaStateMachine) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	res := s.m.Apply(l.Index, l.Data)
	if res.Err != nil && errors.Is(res.Err, placement.ErrUnknownCommand) {
		s.fatal(fmt.Errorf("meta state machine: %w", res.Err))
	}
	return res
}

func (s *metaStateMachine) Snapshot() (raft.FSMSnapshot, error) {
	b, err := s.m.Snapshot()
	if err != nil {
		return nil, err
	}
	return metaSnapshot(b), nil
}

func (s *metaStateMachine) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read meta snapshot: %w", err)
	}
	if err := s.m.Restore(b); err != nil {
		return fmt.Errorf("restore meta snapshot: %w", err)
	}
	return nil
}

// metaSnapshot is the whole placement: a few KiB, so it is taken in memory.
type metaSnapshot []byte

func (b metaSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(b); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist meta snapshot: %w", err)
	}
	return sink.Close()
}

func (metaSnapshot) Release() {}

// proposeMeta puts a command through the meta group's log and returns its result once
// applied on this replica (the leader). A command the machine refused comes back as the
// Result's Err, not as the error: the caller decides (a stale one means plan again). A
// kind the log's meta apply level does not know yet is refused before it is written
// (awaitLevel): a member of an older build would stop its meta replica at it.
func (g *Group) proposeMeta(ctx context.Context, c meta.Command) (meta.Result, error) {
	if g.raft.State() != raft.Leader {
		return meta.Result{}, errNotLeader
	}
	if err := g.awaitLevel(ctx, string(c.Kind), meta.KindLevel(c.Kind)); err != nil {
		return meta.Result{}, err
	}
	data, err := meta.Encode(c)
	if err != nil {
		return meta.Result{}, &api.Error{Code: api.InvalidArgument, Message: err.Error()}
	}
	timeout := g.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 { // raft reads 0 as "wait forever"
		return meta.Result{}, context.DeadlineExceeded
	}
	f := g.raft.Apply(data, timeout)
	if err := waitFuture(ctx, f); err != nil {
		return meta.Result{}, err
	}
	r, ok := f.Response().(meta.Result)
	if !ok {
		return meta.Result{}, fmt.Errorf("unexpected meta apply response %T", f.Response())
	}
	return r, nil
}
