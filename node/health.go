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
	_, leader := n.cluster.raft.LeaderWithID()
	h := api.Health{Status: "ok", ID: n.cfg.ID, Leader: string(leader)}
	switch {
	case n.cluster.diskStalled.Load():
		h.Status = "disk stalled: a raft log write has not returned"
	case leader == "":
		h.Status = "no leader known"
	case n.cluster.raft.CommitIndex() > n.cluster.fsm.AppliedIndex()+maxReadyLag:
		h.Status = fmt.Sprintf("catching up: applied %d of %d", n.cluster.fsm.AppliedIndex(), n.cluster.raft.CommitIndex())
	}
	if h.Status == "ok" {
		h.Status = n.failedGroups()
	}
	if h.Status != "ok" {
		writeJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: &api.Error{Code: api.NoLeader, Message: h.Status, Leader: n.cluster.leaderHTTP()}})
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// failedGroups is "ok", or names the first hosted group that failed: the process is up,
// but a replica it should serve is not.
func (n *Node) failedGroups() string {
	for _, g := range n.groupReports() {
		if g.Failed != "" {
			return fmt.Sprintf("group %d failed: %s", g.ID, g.Failed)
		}
	}
	return "ok"
}
