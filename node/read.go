package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// readIndex makes strong reads linearizable without writing to the log (the recipe in
// docs/RAFT-NOTES.md): the leader must have applied an entry of its current term; it records the
// commit index, confirms that a quorum still follows it in that term, and the read then
// waits until the fsm has applied that index. Only answers to requests sent after the round
// began confirm it (acks.go): VerifyLeader alone would also count answers sent before the
// leader was paused or cut off. Reads that arrive while a round is running share the next
// round, as etcd's ReadIndex batches them, so a read burst costs one heartbeat round, not
// one each.
type readIndex struct {
	n       *Group
	mu      sync.Mutex
	waiting []chan readResult
	kick    chan struct{}
}

type readResult struct {
	index uint64
	err   error
}

func newReadIndex(n *Group) *readIndex {
	return &readIndex{n: n, kick: make(chan struct{}, 1)}
}

// index returns a log index that covers every write completed before the call; reading the
// fsm once it has applied that index is linearizable.
func (r *readIndex) index(ctx context.Context) (uint64, error) {
	ch := make(chan readResult, 1)
	r.mu.Lock()
	r.waiting = append(r.waiting, ch)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	select {
	case res := <-ch:
		return res.index, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (r *readIndex) run() {
	for {
		select {
		case <-r.n.ctx.Done():
			r.flush(readResult{err: errNoLeader})
			return
		case <-r.kick:
		}
		r.mu.Lock()
		batch := r.waiting
		r.waiting = nil
		r.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		idx, err := r.round()
		for _, ch := range batch {
			ch <- readResult{idx, err}
		}
	}
}

func (r *readIndex) flush(res readResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range r.waiting {
		ch <- res
	}
	r.waiting = nil
}

func (r *readIndex) round() (uint64, error) {
	n := r.n
	if n.raft.State() != raft.Leader {
		return 0, errNotLeader
	}
	// A new leader learns the commit index only when an entry of its own term commits;
	// until its no-op is applied, CommitIndex may be behind what was acknowledged.
	term := n.raft.CurrentTerm()
	if err := n.waitTermReady(n.ctx, term, 2*n.cfg.ElectionTimeout); err != nil {
		return 0, err
	}
	idx := n.raft.CommitIndex()
	start := n.trans.acks.mark()
	// VerifyLeader sends every follower a heartbeat now (or right after the one in flight),
	// and fails early if this node is no longer leader; the answers to those heartbeats are
	// what confirms the round.
	verify := n.raft.VerifyLeader()
	n.readRounds.Add(1)
	if err := verify.Error(); err != nil {
		return 0, fmt.Errorf("verify leadership: %w", err)
	}
	if err := n.confirmSince(start, term); err != nil {
		return 0, err
	}
	if n.raft.CurrentTerm() != term {
		return 0, &api.Error{Code: api.NotLeader, Message: "term changed during the read"}
	}
	return idx, nil
}

// confirmSince waits until a quorum of voters, this node included, has answered in term a
// request sent after start. It gives up when a follower answers with a newer term, when this
// node stops leading, or after an election timeout without a quorum: by then another leader
// may exist.
func (g *Group) confirmSince(start, term uint64) error {
	timer := time.NewTimer(g.cfg.ElectionTimeout)
	defer timer.Stop()
	for {
		cf := g.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return fmt.Errorf("read configuration: %w", err)
		}
		var others []raft.ServerID
		voters, self := 0, 0
		for _, s := range cf.Configuration().Servers {
			switch {
			case s.Suffrage != raft.Voter:
			case s.ID == raft.ServerID(g.cfg.ID):
				voters, self = voters+1, 1
			default:
				voters++
				others = append(others, s.ID)
			}
		}
		answered, deposed, changed := g.trans.acks.since(start, term, others)
		if deposed || g.raft.State() != raft.Leader || g.raft.CurrentTerm() != term {
			return errNotLeader
		}
		if self+answered > voters/2 {
			return nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return &api.Error{Code: api.NoLeader, Message: "no quorum confirmed the leader within an election timeout"}
		case <-g.ctx.Done():
			return errNoLeader
		}
	}
}

// waitTermReady waits until the leader's no-op of term has been applied and its cluster
// time started, for at most limit.
func (g *Group) waitTermReady(ctx context.Context, term uint64, limit time.Duration) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		g.mu.Lock()
		ready, ch := g.readyTerm.Load(), g.termReady
		g.mu.Unlock()
		if ready == term {
			return nil
		}
		if ready > term || g.raft.State() != raft.Leader {
			return errNotLeader
		}
		select {
		case <-ch:
		case <-timer.C:
			return &api.Error{Code: api.NoLeader, Message: "the new leader has not committed an entry of its term yet"}
		case <-g.ctx.Done():
			return errNoLeader
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *Group) setTermReady(term uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.readyTerm.Store(term)
	close(g.termReady)
	g.termReady = make(chan struct{})
}

// strongRead returns once the fsm has applied everything committed before the call; a
// local read after it is linearizable.
func (g *Group) strongRead(ctx context.Context) error {
	idx, err := g.reads.index(ctx)
	if err != nil {
		return err
	}
	return g.fsm.WaitApplied(ctx, idx)
}
