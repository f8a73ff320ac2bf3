package node

import (
	"context"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/fsm"
)

// leadershipLoop reacts to winning leadership: it commits a no-op of the new term (raft's
// own no-op never reaches the fsm, so the fsm's applied index could otherwise not reach the
// commit index), which makes strong reads possible, and records this node's address.
func (n *Node) leadershipLoop() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case isLeader := <-n.raft.LeaderCh():
			if !isLeader {
				n.log.Info("lost leadership")
				continue
			}
			term := n.raft.CurrentTerm()
			n.log.Info("won leadership", "term", term)
			// raft may leave a future unresolved across its shutdown: wait with the node's
			// context, so stopping never hangs here.
			if err := waitFuture(n.ctx, n.raft.Apply(nil, n.cfg.RequestTimeout)); err != nil {
				n.log.Warn("no-op of the new term failed", "term", term, "error", err)
				continue
			}
			if n.raft.CurrentTerm() == term {
				n.startClock(n.ctx, term)
				n.setTermReady(term)
				n.kickLevel()
			}
		}
	}
}

// expireLoop proposes ExpireHolds with the leader's clock. It also keeps the log clock
// moving while no buyer writes, which is what ages the exactly-once table.
func (n *Node) expireLoop() {
	n.every(n.cfg.ExpireInterval, func() bool {
		for n.raft.State() == raft.Leader {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
			res, err := n.propose(ctx, fsm.Command{Kind: fsm.KindExpireHolds})
			cancel()
			if err != nil {
				n.log.Debug("expire holds", "error", err)
				break
			}
			if res.Expired > 0 {
				n.log.Debug("released expired holds", "count", res.Expired)
			}
			if res.Expired < fsm.MaxExpirePerCommand {
				break // a full batch means more are due: go again at once
			}
		}
		return true
	})
}
