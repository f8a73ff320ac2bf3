package node

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"

	"github.com/flashstock/flashstock/api"
)

// handleBackup streams a consistent snapshot of this node's state (the same stream raft
// sends to a lagging follower); the applied index is in the header and in the stream.
// In a multi-group cluster it is group 1's, from a node that hosts it.
func (n *Node) handleBackup(w http.ResponseWriter, _ *http.Request) {
	g, err := n.legacyGroup()
	if err != nil {
		n.writeError(w, err)
		return
	}
	snap, err := g.state().Snapshot()
	if err != nil {
		n.writeError(w, err)
		return
	}
	defer snap.Release()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=flashstock-%s-%d.snap", n.cfg.ID, snap.AppliedIndex()))
	w.Header().Set(api.HeaderAppliedIndex, strconv.FormatUint(snap.AppliedIndex(), 10))
	if _, err := snap.WriteTo(w); err != nil {
		n.log.Warn("backup stream interrupted", "error", err)
	}
}

// handleDebugState reports this replica's applied index, state hash and invariant check,
// for checkers comparing replicas (the chaos suite). The hash and the index are read from
// one snapshot, so they belong together even while applies go on. ?group=N names a data
// group this node hosts (default group 1): each group is its own state, so replicas are
// compared group by group.
func (n *Node) handleDebugState(w http.ResponseWriter, r *http.Request) {
	g, err := n.legacyGroup()
	if q := r.URL.Query().Get("group"); q != "" {
		g, err = n.dataGroup(q)
	}
	if err != nil {
		n.writeError(w, err)
		return
	}
	applied, hash, err := g.state().HashAt()
	if err != nil {
		n.writeError(w, err)
		return
	}
	out := api.DebugState{ID: n.cfg.ID, Group: g.groupID(), AppliedIndex: applied, StateHash: hex.EncodeToString(hash[:]), Invariants: "ok"}
	if err := g.state().CheckInvariants(); err != nil {
		out.Invariants = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}

// maxReadyLag is how many entries a node may trail the commit index it knows and still
// call itself ready.
const maxReadyLag = 1000
