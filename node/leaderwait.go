package node

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// A request that reaches a follower during an election waits here for the new leader
// instead of bouncing back to the client as no_leader: the follower learns the winner from
// its first heartbeat, the moment there is one, while a client that bounced would learn it
// only by trying again after a backoff that grows while the election lasts.

// watchLeader fans raft's leader changes out to the requests waiting for one, until the
// node stops. The observation only wakes them: each waiter reads raft's current leader
// itself, so a change dropped because the channel was full loses nothing.
func (g *Group) watchLeader() {
	obs := make(chan raft.Observation, 16)
	o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	g.raft.RegisterObserver(o)
	defer g.raft.DeregisterObserver(o)
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-obs:
			g.leaderMu.Lock()
			close(g.leaderMoved)
			g.leaderMoved = make(chan struct{})
			g.leaderMu.Unlock()
		}
	}
}

// electionWait bounds a wait for a new leader: an election after a leader's death ends
// about 2.1 heartbeat timeouts after its last heartbeat and seldom later than 3 (see
// DefaultConfig); a round that failed (two followers timed out together and split the
// vote) is retried within 2 election timeouts. Past it the cluster is probably without a
// quorum, and the client hears no_leader.
func (g *Group) electionWait() time.Duration {
	return 3*g.cfg.HeartbeatTimeout + 2*g.cfg.ElectionTimeout
}

// awaitLeader returns the HTTP address of the leader this node knows, other than not (""
// accepts any), waiting up to electionWait or ctx for one; "" if none came. It returns
// this node's own address when this node has won.
func (g *Group) awaitLeader(ctx context.Context, not string) string {
	var timeout <-chan time.Time
	for {
		g.leaderMu.Lock()
		moved := g.leaderMoved // taken before reading the leader: a change after closes it
		g.leaderMu.Unlock()
		if l := g.leaderHTTP(); l != "" && l != not {
			return l
		}
		if timeout == nil {
			t := time.NewTimer(g.electionWait())
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-moved:
		case <-timeout:
			return ""
		case <-ctx.Done():
			return ""
		}
	}
}
