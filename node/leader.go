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
	var g *Group
	if err == nil {
		g, err = n.transferGroup(req.Group)
	}
	if err != nil {
		n.writeError(w, err)
		return
	}
	if req.ID == n.cfg.ID && g.raft.State() == raft.Leader {
		n.transferToSelf(w, r, g)
		return
	}
	n.groupLeaderOnly(w, r, g, body, func(ctx context.Context) error { return g.transferLeadership(ctx, req.ID) })
}

// transferGroup is the group a leadership transfer moves. A multi-group cluster's request
// must name one: without a name it would have to mean group 1 (which has no special
// standing there: the process's views and the placement are the meta group's) or every
// group the answering node leads (which depends on which node answers, since any node
// takes the request): either would move leaderships the operator did not pick.
func (n *Node) transferGroup(id *uint64) (*Group, error) {
	if id != nil {
		return n.opGroup(*id)
	}
	if n.metaGroup == nil {
		return n.cluster, nil
	}
	p := n.placement.Load()
	if p == nil {
		return nil, api.Errorf(api.NoLeader, "the placement is not loaded yet (the meta group has no leader or is replaying its log)")
	}
	return nil, api.Errorf(api.InvalidArgument, "this cluster has several raft groups: name the one whose leadership moves (\"group\": N; stockctl cluster transfer-leader --group N); %s", groupChoices(p))
}

// transferLeadership hands g's leadership to its member id, or to the most up-to-date
// follower when id is "". In a multi-group cluster the placement controller steers a
// group's leadership back to its preferred leader (balanceLeaders): this moves it for
// now, as raft alone would, not for good.
func (g *Group) transferLeadership(ctx context.Context, id string) error {
	if id == "" {
		return waitFuture(ctx, g.raft.LeadershipTransfer())
	}
	cfg, _, err := g.configuration()
	if err != nil {
		return err
	}
	for _, s := range cfg.Servers {
		if string(s.ID) == id {
			return waitFuture(ctx, g.raft.LeadershipTransferToServer(s.ID, s.Address))
		}
	}
	if g.srv.metaGroup == nil {
		return api.Errorf(api.NotFound, "member %q not found", id)
	}
	return api.Errorf(api.NotFound, "group %d has no member %q", g.id, id)
}

// transferToSelf answers a transfer to the member that already leads: the caller has what
// it asked for, so it succeeds and changes nothing, as with etcd's MoveLeader (it returns
// once the target leads, at once here) and Nomad's transfer-leadership (a no-op), not
// raft's "cannot transfer leadership to itself" as a 500. A script moving leadership to a
// node need not look first. The answer names the leader once a heartbeat round confirms it.
func (n *Node) transferToSelf(w http.ResponseWriter, r *http.Request, g *Group) {
	ctx, cancel := n.requestContext(r)
	defer cancel()
	if err := waitFuture(ctx, g.raft.VerifyLeader()); err != nil {
		n.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "leader": n.cfg.ID})
}
