package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/version"
	"github.com/hashicorp/raft"
)

// The cluster view: each member's own report of itself, and the view that gathers them.

// lastContactMS is how long since this node heard from the leader; 0 on the leader.
func (g *Group) lastContactMS() int64 {
	if g.raft.State() == raft.Leader {
		return 0
	}
	lc := g.raft.LastContact()
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

// self is this node's own entry of the cluster view: its role, applied index and last
// contact in the cluster's group (clusterGroup: the meta group in a multi-group
// cluster), its placement state, and the groups it hosts. Cluster time and the apply
// level are its data groups' (group 1's alone in a single-group cluster); with several,
// the lowest-id group's time and the lowest level, the one every command must respect.
func (n *Node) self() api.Node {
	build := version.Get()
	c := n.clusterGroup()
	out := api.Node{ID: n.cfg.ID, RaftAddr: n.raftAddr, HTTPAddr: n.httpAddr, Role: roleOf(c.raft.State()),
		AppliedIndex: c.appliedIndex(), LastContactMS: c.lastContactMS(), WallClockMS: c.wallClock().UnixMilli(),
		MaxApplyLevel: n.maxApplyLevel(), Version: build.Version, Revision: build.Revision, Groups: n.groupReports()}
	if dg := n.dataGroups(); len(dg) > 0 {
		out.ClusterTimeMS, out.ApplyLevel = dg[0].clusterNow(), dg[0].fsm.Level()
		for _, g := range dg[1:] {
			out.ApplyLevel = min(out.ApplyLevel, g.fsm.Level())
		}
	}
	out.MaxMetaLevel = n.maxMetaLevel()
	if n.metaGroup != nil {
		out.MetaLevel = n.metaGroup.meta.Level()
	}
	if pn := n.placedNode(n.cfg.ID); pn != nil {
		out.State = pn.State
	}
	return out
}

// groupReports is each hosted group's line of the member's own report, in id order.
func (n *Node) groupReports() []api.NodeGroup {
	groups := n.groupList()
	sort.Slice(groups, func(i, j int) bool { return groups[i].id < groups[j].id })
	out := make([]api.NodeGroup, len(groups))
	for i, g := range groups {
		out[i] = api.NodeGroup{ID: g.id, Role: roleOf(g.raft.State()), AppliedIndex: g.appliedIndex()}
		if err := g.failed(); err != nil {
			out[i].Failed = err.Error()
		}
	}
	return out
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
	c := n.clusterGroup()
	cfg, cfgIndex, err := c.configuration()
	if err != nil {
		n.writeError(w, err)
		return
	}
	_, leader := c.raft.LeaderWithID()
	out := api.Cluster{Leader: string(leader), Term: c.raft.CurrentTerm(), Nodes: n.clusterNodes(cfg), ConfigIndex: cfgIndex}
	out.Groups, out.PlacementVersion = n.clusterGroups(cfg)
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range out.Nodes {
		if out.Nodes[i].ID == n.cfg.ID {
			suffrage, state := out.Nodes[i].Suffrage, out.Nodes[i].State
			out.Nodes[i] = n.self()
			out.Nodes[i].Suffrage, out.Nodes[i].State = suffrage, state
			continue
		}
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
				dst.MetaLevel, dst.MaxMetaLevel = got.MetaLevel, got.MaxMetaLevel
				dst.Version, dst.Revision = got.Version, got.Revision
			}
		}(&out.Nodes[i])
	}
	wg.Wait()
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].ID < out.Nodes[j].ID })
	writeJSON(w, http.StatusOK, out)
}

// clusterNodes is the view's nodes before each is asked about itself: the servers of the
// cluster group's configuration cfg, or in a multi-group cluster the placement's nodes
// (draining ones included, with their state), each with its suffrage in the meta group
// ("" for a node the meta group does not have yet, or any more).
func (n *Node) clusterNodes(cfg raft.Configuration) []api.Node {
	suffrage := make(map[string]string, len(cfg.Servers))
	for _, s := range cfg.Servers {
		suffrage[string(s.ID)] = api.Voter
		if s.Suffrage != raft.Voter {
			suffrage[string(s.ID)] = api.Nonvoter
		}
	}
	if p := n.placement.Load(); p != nil && n.metaGroup != nil {
		out := make([]api.Node, len(p.Nodes))
		for i, pn := range p.Nodes {
			out[i] = api.Node{ID: pn.ID, RaftAddr: pn.RaftAddr, HTTPAddr: pn.HTTPAddr, State: pn.State,
				Role: api.RoleUnknown, Suffrage: suffrage[pn.ID], LastContactMS: -1}
		}
		return out
	}
	out := make([]api.Node, len(cfg.Servers))
	for i, s := range cfg.Servers {
		out[i] = api.Node{ID: string(s.ID), RaftAddr: string(s.Address), HTTPAddr: n.clusterGroup().memberHTTP(string(s.ID)),
			Role: api.RoleUnknown, Suffrage: suffrage[string(s.ID)], LastContactMS: -1}
	}
	return out
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
