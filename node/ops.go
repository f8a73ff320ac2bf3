package node

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"

	"github.com/flashstock/flashstock/api"
)

// handleBackup streams a consistent snapshot of this node's replica of a data group
// (?group=N, 1 by default: a single-group cluster's whole state), the same stream raft
// sends to a lagging follower; the applied index is in the header and in the stream.
func (n *Node) handleBackup(w http.ResponseWriter, r *http.Request) {
	g, err := n.dataOpGroup(r)
	if err != nil {
		n.writeError(w, err)
		return
	}
	snap, err := g.fsm.Snapshot()
	if err != nil {
		n.writeError(w, err)
		return
	}
	defer snap.Release()
	name := fmt.Sprintf("flashstock-%s-%d.snap", n.cfg.ID, snap.AppliedIndex())
	if g.id != legacyGroup {
		name = fmt.Sprintf("flashstock-%s-g%d-%d.snap", n.cfg.ID, g.id, snap.AppliedIndex())
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", "attachment; filename="+name)
	w.Header().Set(api.HeaderAppliedIndex, strconv.FormatUint(snap.AppliedIndex(), 10))
	if _, err := snap.WriteTo(w); err != nil {
		n.log.Warn("backup stream interrupted", "error", err)
	}
}

// handleDebugState reports this node's replica of a data group (?group=N, 1 by default):
// its applied index, state hash and invariant check, for checkers comparing replicas (the
// chaos suite). The hash and the index are read from one snapshot, so they belong together
// even while applies go on.
func (n *Node) handleDebugState(w http.ResponseWriter, r *http.Request) {
	g, err := n.dataOpGroup(r)
	if err != nil {
		n.writeError(w, err)
		return
	}
	applied, hash, err := g.fsm.HashAt()
	if err != nil {
		n.writeError(w, err)
		return
	}
	out := api.DebugState{ID: n.cfg.ID, Group: g.id, AppliedIndex: applied, StateHash: hex.EncodeToString(hash[:]), Invariants: "ok"}
	if err := g.fsm.CheckInvariants(); err != nil {
		out.Invariants = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}

// maxReadyLag is how many entries a node may trail the commit index it knows and still
// call itself ready.
const maxReadyLag = 1000
