package node

import (
	"fmt"
	"net/http"

	"github.com/flashstock/flashstock/api"
)

func (n *Node) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.Health{Status: "ok", ID: n.cfg.ID})
}

// handleReady: ready means a member of a cluster with a known leader, caught up with it,
// every replica it hosts serving. The cluster's group (clusterGroup: group 1, or the meta
// group of a multi-group cluster) must know a leader and have no stalled log write; every
// group this node hosts, that one included, must not have failed, stalled or fallen more
// than maxReadyLag entries behind the commit index it knows. A data group between two
// leaders does not make the node unready: its requests wait for the next one
// (leaderwait.go), as a single-group node's do.
func (n *Node) handleReady(w http.ResponseWriter, _ *http.Request) {
	c := n.clusterGroup()
	_, leader := c.raft.LeaderWithID()
	h := api.Health{Status: "ok", ID: n.cfg.ID, Leader: string(leader)}
	switch {
	case c.diskStalled.Load():
		h.Status = "disk stalled: a raft log write has not returned"
	case leader == "":
		h.Status = "no leader known"
	case c.raft.CommitIndex() > c.appliedIndex()+maxReadyLag:
		h.Status = fmt.Sprintf("catching up: applied %d of %d", c.appliedIndex(), c.raft.CommitIndex())
	}
	if h.Status == "ok" {
		h.Status = n.failedGroups()
	}
	if h.Status == "ok" {
		h.Status = n.laggingGroups(c)
	}
	if h.Status != "ok" {
		writeJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: &api.Error{Code: api.NoLeader, Message: h.Status, Leader: c.leaderHTTP()}})
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

// laggingGroups is "ok", or names the first hosted group besides c (which handleReady
// judged already) whose log write is stalled or which is far behind its commit index.
func (n *Node) laggingGroups(c *Group) string {
	for _, g := range n.groupList() {
		switch {
		case g == c || g.failed() != nil:
		case g.diskStalled.Load():
			return fmt.Sprintf("group %d: disk stalled: a raft log write has not returned", g.id)
		case g.raft.CommitIndex() > g.appliedIndex()+maxReadyLag:
			return fmt.Sprintf("group %d: catching up: applied %d of %d", g.id, g.appliedIndex(), g.raft.CommitIndex())
		}
	}
	return "ok"
}
