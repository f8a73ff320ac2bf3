package node

import (
	"context"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// leadershipLoop reacts to winning leadership: it commits a no-op of the new term (raft's
// own no-op never reaches the fsm, so the fsm's applied index could otherwise not reach the
// commit index), which makes strong reads possible, and records this node's address.
func (g *Group) leadershipLoop() {
	for {
		select {
		case <-g.ctx.Done():
			return
		case isLeader := <-g.raft.LeaderCh():
			if !isLeader {
				g.log.Info("lost leadership")
				continue
			}
			term := g.raft.CurrentTerm()
			g.log.Info("won leadership", "term", term)
			if !g.commitTermNoop(term) {
				continue
			}
			if g.raft.CurrentTerm() == term {
				g.startClock(g.ctx, term)
				g.setTermReady(term)
				g.checkLevel()
			}
		}
	}
}

// commitTermNoop commits a no-op of term and reports whether it did while this node still
// leads in term. A failed no-op is tried again for as long as the node leads in term: a
// leader serves nothing until an entry of its term commits (waitTermReady), so giving up
// would leave it leading and refusing every request. That happens when a leadership
// transfer is in progress as it wins (the placement controller handing the group back to
// a preferred leader the network has cut off): raft refuses the no-op until the transfer
// times out, and the leader stays.
func (g *Group) commitTermNoop(term uint64) bool {
	for {
		// raft may leave a future unresolved across its shutdown: wait with the node's
		// context, so stopping never hangs here.
		err := waitFuture(g.ctx, g.raft.Apply(nil, g.cfg.RequestTimeout))
		if err == nil {
			return true
		}
		if g.ctx.Err() != nil || g.raft.State() != raft.Leader || g.raft.CurrentTerm() != term {
			g.log.Info("no-op of the new term failed; no longer leading in it", "term", term, "error", err)
			return false
		}
		g.log.Warn("no-op of the new term failed; trying again", "term", term, "error", err)
		select {
		case <-g.ctx.Done():
			return false
		case <-time.After(g.cfg.HeartbeatTimeout / 4):
		}
	}
}

// expireLoop proposes ExpireHolds with the leader's clock. It also keeps the log clock
// moving while no buyer writes, which is what ages the exactly-once table.
func (g *Group) expireLoop() {
	g.every(g.cfg.ExpireInterval, func() bool {
		for g.raft.State() == raft.Leader {
			ctx, cancel := context.WithTimeout(g.ctx, g.cfg.RequestTimeout)
			res, err := g.propose(ctx, fsm.Command{Kind: fsm.KindExpireHolds})
			cancel()
			if err != nil {
				g.log.Debug("expire holds", "error", err)
				break
			}
			if res.Expired > 0 {
				g.log.Debug("released expired holds", "count", res.Expired)
			}
			if res.Expired < fsm.MaxExpirePerCommand {
				break // a full batch means more are due: go again at once
			}
		}
		return true
	})
}

func (n *Node) handleTransfer(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	var req api.TransferRequest
	if err == nil && len(body) > 0 {
		err = decodeStrict(body, &req)
	}
	if err != nil {
		n.writeError(w, err)
		return
	}
	c := n.clusterGroup()
	if req.ID == n.cfg.ID && c.raft.State() == raft.Leader {
		n.transferToSelf(w, r)
		return
	}
	n.leaderOnly(w, r, body, func(ctx context.Context) error {
		if req.ID == "" {
			return waitFuture(ctx, c.raft.LeadershipTransfer())
		}
		cfg, _, err := c.configuration()
		if err != nil {
			return err
		}
		for _, s := range cfg.Servers {
			if string(s.ID) == req.ID {
				return waitFuture(ctx, c.raft.LeadershipTransferToServer(s.ID, s.Address))
			}
		}
		return api.Errorf(api.NotFound, "member %q not found", req.ID)
	})
}

// transferToSelf answers a transfer to the member that already leads: the caller has what
// it asked for, so it succeeds and changes nothing, as with etcd's MoveLeader (it returns
// once the target leads, at once here) and Nomad's transfer-leadership (a no-op), not
// raft's "cannot transfer leadership to itself" as a 500. A script moving leadership to a
// node need not look first. The answer names the leader once a heartbeat round confirms it.
func (n *Node) transferToSelf(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := n.requestContext(r)
	defer cancel()
	if err := waitFuture(ctx, n.clusterGroup().raft.VerifyLeader()); err != nil {
		n.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "leader": n.cfg.ID})
}
