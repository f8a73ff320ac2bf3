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
	tp := &trackedPipeline{AppendPipeline: p, set: t.pipes, answers: make(chan raft.AppendFuture), stop: make(chan struct{})}
	t.pipes.mu.Lock()
	defer t.pipes.mu.Unlock()
	if t.pipes.closed {
		_ = p.Close()
		return nil, raft.ErrPipelineShutdown
	}
	t.pipes.open[tp] = struct{}{}
	go tp.relay(p.Consumer())
	return tp, nil
}

// closeAll closes every open pipeline, and any opened after.
func (s *pipelines) closeAll() {
	s.mu.Lock()
	open := s.open
	s.open, s.closed = map[*trackedPipeline]struct{}{}, true
	s.mu.Unlock()
	for p := range open {
		p.closeOnce.Do(func() { close(p.stop) })
		_ = p.AppendPipeline.Close()
	}
}

// trackedPipeline is one open pipeline: closed by raft when its replication ends, or by
// closeAll, and read by raft through a relay.
//
// The relay is what keeps replication from deadlocking. raft's decoder (pipelineDecode)
// stops reading answers at the first refused append (a stale term, a missing entry: common
// around leadership changes), and the sender may send a few more before it sees the decoder
// gone. In NetworkTransport the response reader then blocks handing over an answer nobody
// takes, the queue of requests in flight fills, and the next send blocks for good, before
// the sender can notice anything: replication to that follower stops until the leader
// restarts, and raft's Shutdown waits for it (the multi-group tests hung so). The relay
// always takes the next answer, and holds what raft has not read until it reads it or the
// pipeline closes: no more than raft sent before it saw its decoder gone.
type trackedPipeline struct {
	raft.AppendPipeline
	set       *pipelines
	answers   chan raft.AppendFuture // Consumer, as raft reads it
	stop      chan struct{}          // closed by Close: the relay ends
	closeOnce sync.Once
}

// Consumer is the pipeline's answers, in order, through the relay.
func (p *trackedPipeline) Consumer() <-chan raft.AppendFuture { return p.answers }

func (p *trackedPipeline) relay(in <-chan raft.AppendFuture) {
	var held []raft.AppendFuture
	for {
		var out chan raft.AppendFuture
		var next raft.AppendFuture
		if len(held) > 0 {
			out, next = p.answers, held[0]
		}
		select {
		case f := <-in:
			held = append(held, f)
		case out <- next:
			held[0] = nil
			held = held[1:]
		case <-p.stop:
			return
		}
	}
}

func (p *trackedPipeline) Close() error {
	p.set.mu.Lock()
	delete(p.set.open, p)
	p.set.mu.Unlock()
	p.closeOnce.Do(func() { close(p.stop) })
	return p.AppendPipeline.Close()
}
