package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
	"github.com/flashstock/flashstock/internal/version"
)

// lastContactMS is how long since this node heard from the leader; 0 on the leader.
func (n *Node) lastContactMS() int64 {
	if n.raft.State() == raft.Leader {
		return 0
	}
	lc := n.raft.LastContact()
	if lc.IsZero() {
		return -1
	}
	return time.Since(lc).Milliseconds()
}

func roleOf(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return api.RoleLeader
	case raft.Follower:
		return api.RoleFollower
	case raft.Candidate:
		return api.RoleCandidate
	}
	return api.RoleUnknown
}

// self is this node's own entry of the cluster view.
func (n *Node) self() api.Node {
	build := version.Get()
	return api.Node{ID: n.cfg.ID, RaftAddr: n.raftAddr, HTTPAddr: n.httpAddr, Role: roleOf(n.raft.State()),
		AppliedIndex: n.fsm.AppliedIndex(), LastContactMS: n.lastContactMS(),
		WallClockMS: n.wallClock().UnixMilli(), ClusterTimeMS: n.clusterNow(),
		ApplyLevel: n.fsm.Level(), MaxApplyLevel: fsm.ApplyLevel,
		Version: build.Version, Revision: build.Revision}
}

func (n *Node) handleClusterSelf(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.self())
}

// handleCluster shows the configuration as this node sees it, with each member's own
// report of its role, applied index and build (asked in parallel, briefly); a member that
// does not answer shows role "unknown" and no version.
//
// A member's version is asked live, not kept in its replicated member record: a record
// would say what the member ran when it last wrote it, so a node upgraded and restarted
// would have to rewrite it through the log (and a node down would still show the version
// it may no longer run); and a new field in the record would change the state format that
// the old binaries still applying the log mid-upgrade must read.
func (n *Node) handleCluster(w http.ResponseWriter, r *http.Request) {
	cfg, cfgIndex, err := n.configuration()
	if err != nil {
		n.writeError(w, err)
		return
	}
	_, leader := n.raft.LeaderWithID()
	out := api.Cluster{Leader: string(leader), Term: n.raft.CurrentTerm(), Nodes: make([]api.Node, len(cfg.Servers)), ConfigIndex: cfgIndex}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, s := range cfg.Servers {
		suffrage := api.Voter
		if s.Suffrage != raft.Voter {
			suffrage = api.Nonvoter
		}
		if string(s.ID) == n.cfg.ID {
			out.Nodes[i] = n.self()
			out.Nodes[i].Suffrage = suffrage
			continue
		}
		out.Nodes[i] = api.Node{ID: string(s.ID), RaftAddr: string(s.Address), HTTPAddr: n.memberHTTP(string(s.ID)),
			Role: api.RoleUnknown, Suffrage: suffrage, LastContactMS: -1}
		if out.Nodes[i].HTTPAddr == "" {
			continue
		}
		wg.Add(1)
		go func(dst *api.Node) {
			defer wg.Done()
			if got, err := n.askSelf(ctx, dst.HTTPAddr); err == nil {
				dst.Role, dst.AppliedIndex, dst.LastContactMS = got.Role, got.AppliedIndex, got.LastContactMS
				dst.WallClockMS, dst.ClusterTimeMS = got.WallClockMS, got.ClusterTimeMS
				dst.ApplyLevel, dst.MaxApplyLevel = got.ApplyLevel, got.MaxApplyLevel
				dst.Version, dst.Revision = got.Version, got.Revision
			}
		}(&out.Nodes[i])
	}
	wg.Wait()
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].ID < out.Nodes[j].ID })
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) askSelf(ctx context.Context, addr string) (api.Node, error) {
	var out api.Node
	return out, n.getJSON(ctx, addr, "/v1/cluster/self", &out)
}

// getJSON asks another member for a JSON document.
func (n *Node) getJSON(ctx context.Context, addr, path string, out any) error {
	req, err := n.peerRequest(ctx, http.MethodGet, addr, path, nil)
	if err != nil {
		return err
	}
	req.Header.Set(api.HeaderForwardedBy, n.cfg.ID) // answer from local state, do not forward
	resp, err := n.fwd.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// leaderOnly runs a membership change on the leader, forwarding from a follower.
func (n *Node) leaderOnly(w http.ResponseWriter, r *http.Request, body []byte, fn func(ctx context.Context) error) {
	if n.raft.State() != raft.Leader {
		n.forward(w, r, body)
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	if err := fn(ctx); err != nil {
		n.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req api.JoinRequest
	body, err := readRequest(w, r, &req)
	if err == nil {
		err = fsm.Validate(fsm.Command{Kind: fsm.KindSetMember, Member: fsm.Member{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr}})
	}
	if err != nil {
		n.writeError(w, err)
		return
	}
	n.leaderOnly(w, r, body, func(ctx context.Context) error { return n.addMember(ctx, req) })
}

func (n *Node) handleLeave(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	force, err := queryBool(r.URL.Query().Get("force"))
	if err != nil {
		n.writeError(w, api.Errorf(api.InvalidArgument, "force: %v", err))
		return
	}
	var seen uint64
	if v := r.URL.Query().Get("config_index"); v != "" {
		if seen, err = strconv.ParseUint(v, 10, 64); err != nil || seen == 0 {
			n.writeError(w, api.Errorf(api.InvalidArgument, "config_index must be a positive integer, got %q", v))
			return
		}
	}
	n.leaderOnly(w, r, nil, func(ctx context.Context) error { return n.removeMember(ctx, id, force, seen) })
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
	if req.ID == n.cfg.ID && n.raft.State() == raft.Leader {
		n.transferToSelf(w, r)
		return
	}
	n.leaderOnly(w, r, body, func(ctx context.Context) error {
		if req.ID == "" {
			return waitFuture(ctx, n.raft.LeadershipTransfer())
		}
		cfg, _, err := n.configuration()
		if err != nil {
			return err
		}
		for _, s := range cfg.Servers {
			if string(s.ID) == req.ID {
				return waitFuture(ctx, n.raft.LeadershipTransferToServer(s.ID, s.Address))
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
	if err := waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
		n.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "leader": n.cfg.ID})
}

// handleBackup streams a consistent snapshot of this node's state (the same stream raft
// sends to a lagging follower); the applied index is in the header and in the stream.
func (n *Node) handleBackup(w http.ResponseWriter, _ *http.Request) {
	snap, err := n.fsm.Snapshot()
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
// one snapshot, so they belong together even while applies go on.
func (n *Node) handleDebugState(w http.ResponseWriter, _ *http.Request) {
	applied, hash, err := n.fsm.HashAt()
	if err != nil {
		n.writeError(w, err)
		return
	}
	out := api.DebugState{ID: n.cfg.ID, AppliedIndex: applied, StateHash: hex.EncodeToString(hash[:]), Invariants: "ok"}
	if err := n.fsm.CheckInvariants(); err != nil {
		out.Invariants = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.Health{Status: "ok", ID: n.cfg.ID})
}

// maxReadyLag is how many entries a node may trail the commit index it knows and still
// call itself ready.
const maxReadyLag = 1000

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

// handleWatch streams a SKU's state as server-sent events: the current state at once,
// then after each change. Served from local state by any node (each event carries the
// SKU's version, the log index of its last change).
func (n *Node) handleWatch(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	if err := n.awaitSKU(r.Context(), sku); err != nil {
		n.writeError(w, err)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		n.writeError(w, api.Errorf(api.Internal, "streaming unsupported"))
		return
	}
	changed, cancel := n.watch.subscribe(sku)
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	var last uint64
	send := func() bool {
		s, err := n.fsm.GetSKU(sku)
		if err != nil {
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", mustJSON(api.ErrorBody{Error: n.apiError(err)}))
			flusher.Flush()
			return false
		}
		if s.Version != last || last == 0 {
			last = s.Version
			fmt.Fprintf(w, "id: %d\nevent: sku\ndata: %s\n\n", s.Version, mustJSON(skuOut(s, false)))
			flusher.Flush()
		}
		return true
	}
	if !send() {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-n.ctx.Done():
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			flusher.Flush()
		case <-changed:
			if !send() {
				return
			}
		}
	}
}

// awaitSKU makes sure this node's state has the SKU before a watch starts. A follower may
// not yet have applied a SKU that was just created and acknowledged: it asks the leader
// (a strong read) and, if the SKU exists there, waits to apply the entry that made it.
func (n *Node) awaitSKU(ctx context.Context, sku string) error {
	_, err := n.fsm.GetSKU(sku)
	if err == nil || n.raft.State() == raft.Leader {
		return err
	}
	leader := n.leaderHTTP()
	if leader == "" {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	var s api.SKU
	req, rerr := n.peerRequest(ctx, http.MethodGet, leader, "/v1/skus/"+url.PathEscape(sku), nil)
	if rerr != nil {
		return rerr
	}
	req.Header.Set(api.HeaderForwardedBy, n.cfg.ID)
	resp, rerr := n.fwd.Do(req)
	if rerr != nil {
		return err
	}
	if apiErr := readJSON(resp, &s); apiErr != nil {
		return apiErr
	}
	if werr := n.fsm.WaitApplied(ctx, s.Version); werr != nil {
		return werr
	}
	_, err = n.fsm.GetSKU(sku)
	return err
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
