package node

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/fsm"
)

// stateMachine adapts fsm.Machine to raft.BatchingFSM. raft calls Apply, ApplyBatch and
// Restore from its single FSM goroutine, and Snapshot from it too; Persist runs on the
// snapshot goroutine while later applies go on.
type stateMachine struct {
	m replica
	// fatal stops the process: the replica must not go on after its state failed.
	fatal func(error)
	// applied is called after each batch with the commands and their results, on the FSM
	// goroutine; it must not block (watchers are fed without waiting).
	applied func(entries []fsm.Entry, results []fsm.Result)
	// restored is called after a snapshot replaced the whole state (a follower catching
	// up), on the FSM goroutine; it must not block. No entry names what the snapshot
	// changed, so watchers of every SKU look again.
	restored func()
}

var _ raft.BatchingFSM = (*stateMachine)(nil)

// replica is what raft's side of the node needs of the state machine (fsm.Machine): apply
// batches in order (an error poisons it), snapshot while applies go on, restore whole.
type replica interface {
	ApplyBatch(entries []fsm.Entry) ([]fsm.Result, error)
	Snapshot() (*fsm.Snapshot, error)
	Restore(r io.Reader) error
}

var _ replica = (*fsm.Machine)(nil)

// applyFailed is the response raft hands back for an entry when the replica failed; the
// node answers 500 internal for it.
type applyFailed struct{ err error }

func (s *stateMachine) Apply(l *raft.Log) any {
	return s.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch receives command and configuration entries. Configuration entries are no-ops
// for the fsm but advance its applied index, so that a read waiting for the commit index
// is not left waiting for an entry the fsm never sees.
func (s *stateMachine) ApplyBatch(logs []*raft.Log) []any {
	entries := make([]fsm.Entry, len(logs))
	for i, l := range logs {
		entries[i].Index = l.Index
		if l.Type == raft.LogCommand {
			entries[i].Data = l.Data
		}
	}
	out := make([]any, len(logs))
	results, err := s.m.ApplyBatch(entries)
	if err != nil {
		s.fatal(fmt.Errorf("state machine: %w", err))
		for i := range out {
			out[i] = applyFailed{err}
		}
		return out
	}
	for i := range results {
		out[i] = results[i]
	}
	if s.applied != nil {
		s.applied(entries, results)
	}
	return out
}

func (s *stateMachine) Snapshot() (raft.FSMSnapshot, error) {
	snap, err := s.m.Snapshot()
	if err != nil {
		return nil, err
	}
	return fsmSnapshot{snap}, nil
}

func (s *stateMachine) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := s.m.Restore(rc); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if s.restored != nil {
		s.restored()
	}
	return nil
}

type fsmSnapshot struct{ s *fsm.Snapshot }

func (f fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := f.s.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (f fsmSnapshot) Release() { f.s.Release() }
