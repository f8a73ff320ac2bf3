package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

// heldGroups reads which groups a data dir holds: the ids under groups/ (sorted), and the
// number of data groups, 0 when the dir holds no raft state at all. Group 1 lives at the
// root; a dir with a meta group was created by --groups G and holds G data groups.
func heldGroups(dataDir string) (others []uint64, dataGroups int, err error) {
	if !HasState(dataDir) && !joinedDir(dataDir) {
		return nil, 0, nil
	}
	entries, err := os.ReadDir(filepath.Join(dataDir, groupsDirName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("read %s: %w", groupsDirName, err)
	}
	hasMeta := false
	for _, e := range entries {
		id, perr := strconv.ParseUint(e.Name(), 10, 64)
		if !e.IsDir() || perr != nil || id == legacyGroup {
			continue
		}
		others = append(others, id)
		hasMeta = hasMeta || id == api.MetaGroupID
	}
	if !hasMeta && joinedDir(dataDir) {
		// A joiner that stopped after marking its dir and before its meta group replica
		// had a dir of its own: it is still a multi-group cluster's node, and its restart
		// must not ask --join again (nor join as a single-group member).
		others, hasMeta = append(others, api.MetaGroupID), true
	}
	slices.Sort(others)
	if !hasMeta {
		// Groups added beside group 1 without a meta group (tests of the seam) are not
		// a multi-group cluster's.
		return others, 1, nil
	}
	return others, len(others), nil // the meta group and data groups 2..G: G in all
}

// startGroups opens the groups beside group 1 (which start has opened): those the data
// dir holds, or, for a new cluster bootstrapped with Groups > 1, the meta group and data
// groups 2..G, each with this node as its only voter. It runs before the HTTP server
// serves, so routes see metaGroup set or never set. A data dir's number of data groups is
// fixed at bootstrap, so a Groups that does not match it is refused rather than read as a
// request to change.
func (n *Node) startGroups(others []uint64, held int, joining bool) error {
	want := max(n.cfg.Groups, 1)
	joined := joinedDir(n.cfg.DataDir)
	if held > 0 && held != want && !joined {
		return &ConfigError{Field: "Groups", Got: want,
			Rule: fmt.Sprintf("must be %d, the number of data groups the data dir holds: a cluster's groups are fixed when it is bootstrapped", held)}
	}
	var voters []raft.Server
	if held == 0 && joining {
		// A node joining a multi-group cluster starts an empty replica of the meta group,
		// which the controller adds; the data groups follow as the placement names them.
		if err := markJoined(n.cfg.DataDir); err != nil {
			return err
		}
		others = []uint64{api.MetaGroupID}
	} else if held == 0 {
		if !n.cfg.Bootstrap || want == 1 {
			return nil
		}
		voters = []raft.Server{{ID: raft.ServerID(n.cfg.ID), Address: raft.ServerAddress(n.raftAddr), Suffrage: raft.Voter}}
		others = []uint64{api.MetaGroupID}
		for id := uint64(2); id <= uint64(want); id++ {
			others = append(others, id)
		}
	}
	for _, id := range others {
		g, err := n.addGroup(id, voters)
		if err != nil {
			return err
		}
		if id == api.MetaGroupID {
			n.metaGroup = g
		}
	}
	return nil
}

// startPlacement follows the meta group's placement and, on a bootstrapping node, records
// the first one; it needs the HTTP address the placement lists.
func (n *Node) startPlacement() {
	if n.metaGroup == nil {
		return
	}
	n.spawn(n.placementLoop)
	n.spawn(n.controllerLoop)
	if !n.metaGroup.hadState && !n.cfg.Bootstrap && len(n.cfg.Join) > 0 {
		n.spawn(n.joinPlacement)
	}
	if n.cfg.Bootstrap {
		n.spawn(func() { n.bootstrapPlacement(max(n.cfg.Groups, 1)) })
	}
}

// bootstrapPlacement records the first placement: this node and want data groups. It is
// proposed on every start with Bootstrap set, since a crash may have come between
// creating the groups and committing it; once a placement exists the version guard
// refuses it as stale and nothing changes.
func (n *Node) bootstrapPlacement(want int) {
	g := n.metaGroup
	cmd := meta.Command{Kind: meta.Bootstrap, DataGroups: want,
		Nodes: []api.PlacementNode{{ID: n.cfg.ID, RaftAddr: n.raftAddr, HTTPAddr: n.httpAddr}}}
	for n.ctx.Err() == nil {
		if g.raft.State() == raft.Leader {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
			res, err := g.proposeMeta(ctx, cmd)
			cancel()
			switch {
			case err == nil && res.Err == nil:
				n.log.Info("placement bootstrapped", "data_groups", want, "version", res.Version)
				return
			case err == nil && errors.Is(res.Err, placement.ErrStale):
				return // a placement exists already
			case err == nil:
				n.log.Error("placement bootstrap refused", "error", res.Err)
				return
			}
			n.log.Debug("placement bootstrap", "error", err)
		}
		select {
		case <-n.ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// placementLoop keeps n.placement at the meta machine's newest version, so routing reads
// a pointer rather than copying the document per request.
func (n *Node) placementLoop() {
	var seen uint64
	for {
		p, err := n.metaGroup.meta.WaitVersion(n.ctx, seen+1)
		if err != nil {
			return // the process stops, or the meta group failed (reported as such)
		}
		n.placement.Store(&p)
		seen = p.Version
		n.hostPlaced(&p)
	}
}

// groupFor is the group a request about sku acts on: the one place routes pick a group.
// Without a meta group every SKU is group 1's; with one, the group owning the SKU's slot
// in the local placement.
func (n *Node) groupFor(sku string) (*Group, error) {
	if n.metaGroup == nil {
		return n.cluster, nil
	}
	p := n.placement.Load()
	if p == nil {
		return nil, api.Errorf(api.NoLeader, "the placement is not loaded yet (the meta group has no leader or is replaying its log)")
	}
	pg := p.GroupOf(sku)
	if pg == nil {
		return nil, api.Errorf(api.Internal, "placement version %d: no group owns slot %d", p.Version, api.SlotOf(sku))
	}
	g := n.group(pg.ID)
	if g == nil {
		return nil, api.Errorf(api.NotLeader, "this node hosts no replica of group %d", pg.ID)
	}
	return g, nil
}

// groupForCommand is the group of a mutation: its SKU's, its lines' (all in one group,
// else cross_group until cross-group orders exist), or for a command naming only an
// order, the group holding that order.
func (n *Node) groupForCommand(cmd fsm.Command) (*Group, error) {
	switch {
	case cmd.SKU != "":
		return n.groupFor(cmd.SKU)
	case len(cmd.Lines) > 0:
		g, err := n.groupFor(cmd.Lines[0].SKU)
		if err != nil {
			return nil, err
		}
		for _, l := range cmd.Lines[1:] {
			h, err := n.groupFor(l.SKU)
			if err != nil {
				return nil, err
			}
			if h != g {
				return nil, api.Errorf(api.CrossGroup, "order lines %q (group %d) and %q (group %d) live in different groups; an order's lines must share one until cross-group orders exist",
					cmd.Lines[0].SKU, g.id, l.SKU, h.id)
			}
		}
		return g, nil
	case cmd.OrderID != "":
		return n.groupForOrder(cmd.OrderID)
	}
	return n.cluster, nil
}

// groupForOrder is the group holding order id. Order ids do not name their group, so a
// multi-group node looks in each data group it hosts; an order in none is group 1's to
// refuse (not_found), as in a single-group cluster.
func (n *Node) groupForOrder(id string) (*Group, error) {
	if n.metaGroup == nil {
		return n.cluster, nil
	}
	for _, g := range n.dataGroups() {
		if _, err := g.fsm.GetOrder(id, g.clusterNow()); err == nil {
			return g, nil
		}
	}
	return n.cluster, nil
}

// group is the running or failed replica of group id this process hosts, or nil.
func (n *Node) group(id uint64) *Group {
	n.groupsMu.RLock()
	defer n.groupsMu.RUnlock()
	return n.groups[id]
}

// dataGroups is the data groups of the placement this process hosts, by id: group 1
// alone without a meta group (groups beside it are then not the placement's).
func (n *Node) dataGroups() []*Group {
	if n.metaGroup == nil {
		return []*Group{n.cluster}
	}
	var out []*Group
	for _, g := range n.groupList() {
		if !g.isMeta() {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b *Group) int { return cmp.Compare(a.id, b.id) })
	return out
}

// clusterGroups is /v1/cluster's groups: the local placement's, each hosted group's
// leader filled in from its raft; without a meta group, group 1 as the placement would
// show it. A group this node does not host shows no leader.
func (n *Node) clusterGroups(cfg raft.Configuration) ([]api.Group, uint64) {
	if n.metaGroup == nil {
		g := api.Group{ID: legacyGroup, Kind: api.GroupData, Slots: []api.SlotRange{{From: 0, To: api.SlotCount}},
			Replicas: make([]api.Replica, len(cfg.Servers))}
		_, leader := n.cluster.raft.LeaderWithID()
		g.Leader = string(leader)
		for i, s := range cfg.Servers {
			g.Replicas[i] = api.Replica{Node: string(s.ID), Role: api.Voter}
			if s.Suffrage != raft.Voter {
				g.Replicas[i].Role = api.Nonvoter
			}
		}
		return []api.Group{g}, 0
	}
	p := n.placement.Load()
	if p == nil {
		return []api.Group{}, 0
	}
	out := placement.Clone(p).Groups
	for i := range out {
		if g := n.group(out[i].ID); g != nil && g.failed() == nil {
			_, id := g.raft.LeaderWithID()
			out[i].Leader = string(id)
		}
	}
	slices.SortFunc(out, func(a, b api.Group) int { return cmp.Compare(a.ID, b.ID) })
	return out, p.Version
}
