package node

import (
	"fmt"
	"net/http"

	"github.com/flashstock/flashstock/api"
)

func (n *Node) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.Health{Status: "ok", ID: n.cfg.ID})
}

// handleReady: ready means a member of a cluster with a known leader, caught up with it.
func (n *Node) handleReady(w http.ResponseWriter, _ *http.Request) {
	_, leader := n.raft.LeaderWithID()
	h := api.Health{Status: "ok", ID: n.cfg.ID, Leader: string(leader)}
	switch {
	case n.diskStalled.Load():
		h.Status = "disk stalled: a raft log write has not returned"
	case leader == "":
		h.Status = "no leader known"
	case n.raft.CommitIndex() > n.fsm.AppliedIndex()+maxReadyLag:
		h.Status = fmt.Sprintf("catching up: applied %d of %d", n.fsm.AppliedIndex(), n.raft.CommitIndex())
	}
	if h.Status != "ok" {
		writeJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: &api.Error{Code: api.NoLeader, Message: h.Status, Leader: n.leaderHTTP()}})
		return
	}
	writeJSON(w, http.StatusOK, h)
}
