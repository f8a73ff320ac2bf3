package node

import (
	"sync"

	"github.com/hashicorp/raft"
)

// closingTransport is a group's transport as raft gets it: serialTransport, whose
// AppendEntries pipelines it keeps, so that stopping the group closes them.
//
// hashicorp/raft v1.7.3 can leave a leader's replication goroutine blocked for good in a
// pipeline: when a follower answers slowly, the sender fills the pipeline's queue of
// requests in flight and blocks adding one more; if the response decoder then stops (a
// failed or refused answer), nothing drains that queue, and only the pipeline's own
// Close, which raft defers until that very send returns, would unblock it. raft's
// Shutdown waits for the goroutine, so stopping the group (a removed replica, the
// process) hung with it. Closing the pipelines after raft's shutdown began ends the
// blocked send with ErrPipelineShutdown; raft's deferred Close is then a no-op.
type closingTransport struct {
	serialTransport
	pipes *pipelines
}

// pipelines is the set of a transport's open AppendEntries pipelines.
type pipelines struct {
	mu     sync.Mutex
	open   map[*trackedPipeline]struct{}
	closed bool
}

func newClosingTransport(t serialTransport) closingTransport {
	return closingTransport{t, &pipelines{open: map[*trackedPipeline]struct{}{}}}
}

// AppendEntriesPipeline opens a pipeline as NetworkTransport does and keeps it until it
// closes.
func (t closingTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	tp := &trackedPipeline{AppendPipeline: p, set: t.pipes}
	t.pipes.mu.Lock()
	defer t.pipes.mu.Unlock()
	if t.pipes.closed {
		_ = p.Close()
		return nil, raft.ErrPipelineShutdown
	}
	t.pipes.open[tp] = struct{}{}
	return tp, nil
}

// closeAll closes every open pipeline, and any opened after.
func (s *pipelines) closeAll() {
	s.mu.Lock()
	open := s.open
	s.open, s.closed = map[*trackedPipeline]struct{}{}, true
	s.mu.Unlock()
	for p := range open {
		_ = p.AppendPipeline.Close()
	}
}

type trackedPipeline struct {
	raft.AppendPipeline
	set *pipelines
}

func (p *trackedPipeline) Close() error {
	p.set.mu.Lock()
	delete(p.set.open, p)
	p.set.mu.Unlock()
	return p.AppendPipeline.Close()
}
