package node

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Cluster time is the clock stamped into commands, and so the only clock the state machine
// knows: hold TTLs, expires_at_ms, the exactly-once window and ledger times all count it.
// A leader's wall clock is never copied into the log as it is; a leader whose clock is
// hours off would otherwise expire every hold and forget every request id at once
// (LogCabin #90). The rule (docs/DESIGN.md, "Cluster time"):
//
//  1. Only a leader stamps, and only once its term's no-op is applied, so the log time of
//     every earlier entry (fsm.Machine.LogTime) is known.
//  2. At the start of its term the leader asks the voters for their wall clocks and takes
//     the smallest reading among the first majority to answer (itself included), each
//     carried forward by this node's monotonic clock from when it arrived: a lower bound
//     on the clock of at least one member of every majority. Cluster time starts at the
//     larger of that and the log time. So it never runs backwards, and it moves forward to
//     real time after a whole-cluster restart, but no clock that only a minority of voters
//     shares can move it forward. Without a majority's answer within clockSampleLimit it
//     starts at the log time.
//  3. Through the term it advances by the leader's monotonic clock alone (which no wall
//     clock step moves), strictly increasing in log order.
//
// Followers estimate cluster time for reads from the last log time they applied, carried
// forward by their own monotonic clock.
type clusterClock struct {
	mu     sync.Mutex
	term   uint64    // the term the leader's clock was started for; 0: none
	base   int64     // cluster time (ms) at origin
	origin time.Time // a monotonic reading
	last   int64     // the last time stamped, so stamps never repeat a smaller value

	seen   int64     // the largest log time this node has applied
	seenAt time.Time // when it was first applied here (monotonic)
}

// clockSampleLimit bounds the wait for a majority's wall clocks at the start of a term;
// commands wait for it (the term is not ready before), so it must stay well inside an
// election's time.
const clockSampleLimit = 300 * time.Millisecond

// startTerm starts the leader's clock for term at base, now.
func (c *clusterClock) startTerm(term uint64, base int64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.term, c.base, c.origin = term, max(base, c.last), now
}

// read is the leader's cluster time for term; ok is false when the clock was not started
// for that term.
func (c *clusterClock) read(term uint64, now time.Time) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.term != term || term == 0 {
		return 0, false
	}
	return max(c.base+now.Sub(c.origin).Milliseconds(), c.last), true
}

// stamp is read for a command about to enter the log: it never goes below a time stamped
// before. The caller stamps and appends under one lock (Node.proposeMu), so stamps never
// decrease in log order either.
func (c *clusterClock) stamp(term uint64, now time.Time) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.term != term || term == 0 {
		return 0, false
	}
	c.last = max(c.base+now.Sub(c.origin).Milliseconds(), c.last)
	return c.last, true
}

// observe records the log time after an applied batch.
func (c *clusterClock) observe(logTime int64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if logTime > c.seen {
		c.seen, c.seenAt = logTime, now
	}
}

// estimate is the cluster time a read should judge by: the leader's clock while it leads
// term, otherwise the last applied log time carried forward by the monotonic clock.
func (c *clusterClock) estimate(term uint64, now time.Time) int64 {
	if t, ok := c.read(term, now); ok {
		return t
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seenAt.IsZero() {
		return c.seen
	}
	return c.seen + now.Sub(c.seenAt).Milliseconds()
}

// wallClock is this node's wall clock: the one source every absolute time reading of the
// node goes through (the faults build shifts it).
func (n *Node) wallClock() time.Time {
	if n.cfg.WallClock != nil {
		return n.cfg.WallClock()
	}
	return time.Now()
}

// clusterNow is the cluster time (ms) this node judges reads by.
func (n *Node) clusterNow() int64 {
	return n.clock.estimate(n.raft.CurrentTerm(), time.Now())
}

// startClock starts cluster time for term (rule 2 above). Called once the term's no-op is
// applied.
func (n *Node) startClock(ctx context.Context, term uint64) {
	floor, ok := n.majorityWallClock(ctx)
	now := time.Now()
	base := n.fsm.LogTime()
	if ok {
		base = max(base, floor(now))
	} else {
		n.log.Warn("no majority reported its wall clock in time: cluster time continues from the log's", "term", term)
	}
	if lag := n.wallClock().UnixMilli() - base; lag > time.Minute.Milliseconds() || lag < -time.Minute.Milliseconds() {
		n.log.Warn("this node's wall clock is far from cluster time; cluster time follows the majority and the log, not this clock",
			"term", term, "wall_minus_cluster_ms", lag)
	}
	n.clock.startTerm(term, base, now)
}

// majorityWallClock asks every voter for its wall clock, in parallel, and returns, once a
// majority has answered, the smallest of their readings as a function of a later
// monotonic time. A reading w that arrived at monotonic time t bounds that member's clock
// at a later time T from below by w + (T - t): the member read its clock before the
// answer arrived.
func (n *Node) majorityWallClock(ctx context.Context) (func(time.Time) int64, bool) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil, false
	}
	var voters []raft.Server
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters = append(voters, s)
		}
	}
	need := len(voters)/2 + 1
	type reading struct {
		wall int64
		at   time.Time
	}
	ctx, cancel := context.WithTimeout(ctx, clockSampleLimit)
	defer cancel()
	answers := make(chan reading, len(voters))
	asked := 0
	for _, s := range voters {
		if string(s.ID) == n.cfg.ID {
			now := time.Now()
			answers <- reading{n.wallClock().UnixMilli(), now}
			asked++
			continue
		}
		addr := n.memberHTTP(string(s.ID))
		if addr == "" {
			continue
		}
		asked++
		go func() {
			got, err := n.askSelf(ctx, addr)
			if err != nil || got.WallClockMS == 0 {
				answers <- reading{}
				return
			}
			answers <- reading{got.WallClockMS, time.Now()}
		}()
	}
	var got []reading
	for range asked {
		select {
		case r := <-answers:
			if r.wall != 0 {
				got = append(got, r)
			}
		case <-ctx.Done():
		}
		if len(got) >= need || ctx.Err() != nil {
			break
		}
	}
	if len(got) < need {
		return nil, false
	}
	return func(now time.Time) int64 {
		floor := int64(0)
		for i, r := range got {
			if v := r.wall + now.Sub(r.at).Milliseconds(); i == 0 || v < floor {
				floor = v
			}
		}
		return floor
	}, true
}
