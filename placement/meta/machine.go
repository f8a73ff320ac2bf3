package meta

import (
	"context"
	"fmt"
	"sync"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
)

// Machine holds the placement as of the last entry applied. Its methods may be called
// from any goroutine; raft calls Apply, Snapshot and Restore from its FSM goroutine.
type Machine struct {
	mu sync.Mutex
	// p is nil before Bootstrap. It is never changed in place: Apply replaces it, and
	// readers get copies.
	p       *api.Placement
	applied uint64
	// level is the meta apply level in force (level.go), raised only by SetLevel.
	level uint64
	// err is set by the first entry this build could not read; it stops the machine.
	err error
	// changed is closed, and replaced, whenever p's version changes, err is set or a
	// snapshot is restored: WaitVersion's waiters look again.
	changed chan struct{}
}

// Result is what applying one entry did.
type Result struct {
	// Version is the placement's version after the entry: 0 before Bootstrap, and
	// unchanged when the entry was refused or changed nothing.
	Version uint64
	// Err is nil when the command applied, else it refused it, a *placement.Error (match
	// its Rule with errors.Is): placement.ErrStale, a rule of the placement, or
	// placement.ErrUnknownCommand, which also stopped the machine.
	Err error
}

// New returns a machine with no placement, applied index 0.
func New() *Machine { return &Machine{changed: make(chan struct{})} }

// Apply applies the log entry at index. Entries at or below the applied index are
// skipped (a log replayed over a restored snapshot changes nothing) and answer with the
// current version. A refused command changes nothing but the applied index. An entry Decode refuses,
// or a SetLevel above this build's ApplyLevel, stops the machine: this and every later Apply, and Snapshot and Restore,
// return placement.ErrUnknownCommand, and the applied index stays before the entry.
func (m *Machine) Apply(index uint64, data []byte) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return Result{Version: version(m.p), Err: m.err}
	}
	if index <= m.applied {
		return Result{Version: version(m.p)}
	}
	c, err := Decode(data)
	if err == nil && c.Kind == SetLevel && c.Level > ApplyLevel {
		// Going on under older rules than the replicas that raised it would diverge.
		err = &placement.Error{Rule: placement.ErrUnknownCommand, Detail: fmt.Sprintf("the log raises the meta apply level to %d; this build applies up to %d: upgrade this node", c.Level, ApplyLevel)}
	}
	if err != nil {
		m.err = fmt.Errorf("meta: entry %d stops this replica: %w", index, err)
		m.wake()
		return Result{Version: version(m.p), Err: m.err}
	}
	m.applied = index
	if c.Kind == SetLevel {
		m.level = max(m.level, c.Level)
		return Result{Version: version(m.p)}
	}
	q, err := apply(m.p, c)
	if err != nil {
		return Result{Version: version(m.p), Err: err}
	}
	if q.Version != version(m.p) {
		m.p = q
		m.wake()
	}
	return Result{Version: q.Version}
}

// apply is c's change to p (nil before Bootstrap): the new placement, valid and without
// live state, or the error that refuses c.
func apply(p *api.Placement, c Command) (*api.Placement, error) {
	if v := version(p); c.From != v {
		return nil, &placement.Error{Rule: placement.ErrStale, Detail: fmt.Sprintf("%s planned from version %d, the placement is at version %d", c.Kind, c.From, v)}
	}
	// From is 0 only for Bootstrap and at least 1 for every other kind (check), so p is
	// nil exactly when c is a Bootstrap.
	var q *api.Placement
	var err error
	switch c.Kind {
	case Bootstrap:
		q, err = placement.Bootstrap(c.Nodes, c.DataGroups)
	case AddNode:
		q, err = placement.AddNode(p, *c.Node)
	case SetNodeState:
		q, err = placement.SetNodeState(p, c.NodeID, c.State)
	case RemoveNode:
		q, err = placement.RemoveNode(p, c.NodeID)
	case RecordStep:
		q, err = placement.Apply(p, *c.Step)
	case MoveReplica:
		q, err = placement.MoveReplica(p, c.Move.Group, c.Move.From, c.Move.To)
	case PinLeader:
		q, err = placement.PinLeader(p, c.Lead.Group, c.Lead.Node)
	case Unpin:
		q = placement.Unpin(p)
	default:
		panic("meta: apply of an unchecked command kind " + string(c.Kind)) // Decode checked it; Apply takes SetLevel
	}
	if err != nil {
		return nil, err
	}
	// Leader is live state (api.Group): the log records where leadership is steered
	// (PreferredLeader), never who led when a step was recorded.
	for i := range q.Groups {
		q.Groups[i].Leader = ""
	}
	if err := placement.Validate(q); err != nil {
		return nil, err
	}
	return q, nil
}

func version(p *api.Placement) uint64 {
	if p == nil {
		return 0
	}
	return p.Version
}

// wake tells the waiters that something changed; m.mu is held.
func (m *Machine) wake() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Placement returns a copy of the placement: Version 0 and nothing else before Bootstrap.
func (m *Machine) Placement() api.Placement {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copyOf(m.p)
}

func copyOf(p *api.Placement) api.Placement {
	if p == nil {
		return api.Placement{}
	}
	return *placement.Clone(p)
}

// Version is the placement's version, 0 before Bootstrap.
func (m *Machine) Version() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return version(m.p)
}

// Applied is the index of the last entry applied (or of the restored snapshot).
func (m *Machine) Applied() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

// Err is the error that stopped the machine, or nil.
func (m *Machine) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// WaitVersion returns the placement once its version is at least v, so a node reacts to a
// placement change without polling (WaitVersion(ctx, seen+1)). It returns early with
// ctx's error, or with the machine's error if it stops.
func (m *Machine) WaitVersion(ctx context.Context, v uint64) (api.Placement, error) {
	for {
		m.mu.Lock()
		reached, err, changed := version(m.p) >= v, m.err, m.changed
		var p api.Placement
		if reached {
			p = copyOf(m.p)
		}
		m.mu.Unlock()
		if reached {
			return p, nil
		}
		if err != nil {
			return api.Placement{}, err
		}
		select {
		case <-ctx.Done():
			return api.Placement{}, fmt.Errorf("meta: wait for placement version %d: %w", v, context.Cause(ctx))
		case <-changed:
		}
	}
}
