package node

import (
	"context"
	"slices"
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
//  2. A new term's cluster time starts from the log's last time carried forward by this
//     node's monotonic clock: from when it applied that entry (carried), or from its last
//     contact with a leader, whichever says later (both are after the entry was stamped,
//     so neither runs ahead of real time). So an election costs cluster time only the
//     moments between the last entry and the last heartbeat.
//  3. The leader also asks the voters (itself included) for their wall clocks and takes
//     the largest reading that a minority of wrong clocks cannot have pushed up
//     (majorityWallClock: the median when all answer). Only when that is more than
//     clockCatchUp ahead (an outage of the cluster, which no election explains) does
//     cluster time move up to it: every forward move ends the holds made while it lagged
//     early by the lag, so small lags are kept, never caught up. No clock that only a
//     minority of voters shares can move it forward, and it never runs backwards.
//  4. Through the term it advances by the leader's monotonic clock alone (which no wall
//     clock step moves), never decreasing in log order.
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

// clockCatchUp is the least lag behind the voters' clocks that a new term's cluster time
// catches up: more than an election and the idle time before it can account for, so only
// an outage of the whole cluster (or of a majority) moves it forward.
const clockCatchUp = 2 * time.Second

// clockGrace is how much longer the voters beyond a majority may take to answer.
const clockGrace = 50 * time.Millisecond

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
	return c.readLocked(term, now)
}

// stamp is read for a command about to enter the log: it never goes below a time stamped
// before. The caller stamps and appends under one lock (Node.proposeMu), so stamps never
// decrease in log order either.
func (c *clusterClock) stamp(term uint64, now time.Time) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.readLocked(term, now)
	if ok {
		c.last = t
	}
	return t, ok
}

func (c *clusterClock) readLocked(term uint64, now time.Time) (int64, bool) {
	if c.term != term || term == 0 {
		return 0, false
	}
	return max(c.base+now.Sub(c.origin).Milliseconds(), c.last), true
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
// term, otherwise carried.
func (c *clusterClock) estimate(term uint64, now time.Time) int64 {
	if t, ok := c.read(term, now); ok {
		return t
	}
	return c.carried(now)
}

// carried is the last log time this node applied, carried forward by its monotonic clock
// from when it applied it. A leader stamps no more than real time and the entry was
// applied here after it was stamped, so this too is at most real time, and it goes on
// through an election: a new leader that starts from it loses no time to the election.
func (c *clusterClock) carried(now time.Time) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seenAt.IsZero() {
		return c.seen
	}
	return c.seen + now.Sub(c.seenAt).Milliseconds()
}

// wallClock is this node's wall clock: the one source every absolute time reading of the
// node goes through (the faults build shifts it).
func (g *Group) wallClock() time.Time {
	if g.cfg.WallClock != nil {
		return g.cfg.WallClock()
	}
	return time.Now()
}

// clusterNow is the cluster time (ms) this node judges reads by.
func (g *Group) clusterNow() int64 {
	return g.clock.estimate(g.raft.CurrentTerm(), time.Now())
}

// startClock starts cluster time for term (rules 2 and 3 above). Called once the term's
// no-op is applied.
func (g *Group) startClock(ctx context.Context, term uint64) {
	floor, ok := g.majorityWallClock(ctx)
	now := time.Now()
	logTime := g.fsm.LogTime()
	base := max(logTime, g.clock.carried(now))
	// raft sets its last contact when a leader's AppendEntries (or a snapshot) succeeds,
	// when it grants a vote, and when it steps down from leading: each time after every
	// entry in this node's log was stamped. So the log time carried from there is at most
	// real time too, and it loses no time to entries applied only once this term began.
	if lc := g.raft.LastContact(); !lc.IsZero() {
		base = max(base, logTime+now.Sub(lc).Milliseconds())
	}
	var voters int64
	if ok {
		// Only a gap an election cannot explain (an outage) moves cluster time up to the
		// voters' clocks: every forward move ends the holds made while it lagged early.
		if voters = floor(now); voters-base > clockCatchUp.Milliseconds() {
			base = voters
		}
	} else {
		g.log.Warn("no majority reported its wall clock in time: cluster time continues from the log's", "term", term)
	}
	g.log.Info("cluster time started", "term", term, "cluster_ms", base, "log_ms", logTime, "voters_ms", voters)
	if lag := g.wallClock().UnixMilli() - base; lag > time.Minute.Milliseconds() || lag < -time.Minute.Milliseconds() {
		g.log.Warn("this node's wall clock is far from cluster time; cluster time follows the majority and the log, not this clock",
			"term", term, "wall_minus_cluster_ms", lag)
	}
	g.clock.startTerm(term, base, now)
}

// majorityWallClock asks every voter for its wall clock, in parallel, and returns the
// largest reading a minority of wrong clocks cannot have pushed up, as a function of a later
// monotonic time; ok is false when fewer than a majority answered within clockSampleLimit.
//
// Of N voters, at most f = (N-1)/2 clocks are assumed wrong. With k answers sorted, the
// (k-f)-th smallest is at most some right clock: were it above every right one, it and the
// f larger ones would be f+1 wrong clocks. All answers (k = N) give the median; a bare
// majority (k = f+1) the smallest. Once a majority has answered the rest get clockGrace
// more, so a dead voter costs little. A reading w that arrived at monotonic time t bounds
// that member's clock at a later T from below by w + (T - t): it read its clock before
// the answer arrived.
func (g *Group) majorityWallClock(ctx context.Context) (func(time.Time) int64, bool) {
	f := g.raft.GetConfiguration()
	if f.Error() != nil {
		return nil, false
	}
	var voters []raft.Server
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters = append(voters, s)
		}
	}
	wrong := (len(voters) - 1) / 2
	type reading struct {
		wall int64
		at   time.Time
	}
	ctx, cancel := context.WithTimeout(ctx, clockSampleLimit)
	defer cancel()
	answers := make(chan reading, len(voters))
	asked := 0
	for _, s := range voters {
		if string(s.ID) == g.cfg.ID {
			answers <- reading{g.wallClock().UnixMilli(), time.Now()}
			asked++
			continue
		}
		addr := g.memberHTTP(string(s.ID))
		if addr == "" {
			continue
		}
		asked++
		go func() {
			got, err := g.srv.askSelf(ctx, addr)
			if err != nil || got.WallClockMS == 0 {
				answers <- reading{}
				return
			}
			answers <- reading{got.WallClockMS, time.Now()}
		}()
	}
	var got []reading
	var grace <-chan time.Time
collect:
	for range asked {
		select {
		case r := <-answers:
			if r.wall != 0 {
				got = append(got, r)
			}
		case <-ctx.Done():
			break collect
		case <-grace:
			break collect
		}
		if len(got) == wrong+1 {
			t := time.NewTimer(clockGrace)
			defer t.Stop()
			grace = t.C
		}
	}
	if len(got) <= wrong {
		return nil, false
	}
	return func(now time.Time) int64 {
		vals := make([]int64, len(got))
		for i, r := range got {
			vals[i] = r.wall + now.Sub(r.at).Milliseconds()
		}
		return trustedReading(vals, wrong)
	}, true
}

// trustedReading is the (k-wrong)-th smallest of k readings (k > wrong): the largest one
// that wrong clocks, however far ahead, cannot have pushed up. It sorts readings.
func trustedReading(readings []int64, wrong int) int64 {
	slices.Sort(readings)
	return readings[len(readings)-wrong-1]
}
