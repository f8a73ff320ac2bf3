package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

// heldGroups reads which groups a data dir holds: the ids under groups/ (sorted), and the
// number of data groups, 0 when the dir holds no raft state at all. Group 1 lives at the
// root; a dir with a meta group was created by --groups G (dataGroupsFileName records G)
// or joined a multi-group cluster, and holds the groups the placement gave it.
func heldGroups(dataDir string) (others []uint64, dataGroups int, err error) {
	if err := finishRemovals(dataDir); err != nil {
		return nil, 0, err
	}
	if !HasState(dataDir) && !joinedDir(dataDir) && !HasState(groupDir(dataDir, api.MetaGroupID)) {
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
	if g, ok, err := readDataGroups(dataDir); err != nil || ok {
		return others, g, err
	}
	return others, len(others), nil // a bootstrap of an older build: the meta group and data groups 2..G, G in all
}

// startGroups opens the groups of a multi-group node (start has opened group 1 of a
// single-group one): those the data dir holds, group 1 among them when its files are at
// the root, or, for a new cluster bootstrapped with Groups > 1, the meta group and data
// groups 1..G, each with this node as its only voter. It runs before the HTTP server
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
	switch {
	case held == 0 && joining:
		// A node joining a multi-group cluster starts an empty replica of the meta group,
		// which the controller adds; the data groups follow as the placement names them.
		if err := markJoined(n.cfg.DataDir); err != nil {
			return err
		}
		others = []uint64{api.MetaGroupID}
	case held == 0:
		if !n.cfg.Bootstrap || want == 1 {
			return nil
		}
		// Recorded before any group exists: once group 1 has moved to other nodes, the
		// dirs no longer tell how many groups this dir was bootstrapped with.
		if err := writeDataGroups(n.cfg.DataDir, want); err != nil {
			return err
		}
		voters = []raft.Server{{ID: raft.ServerID(n.cfg.ID), Address: raft.ServerAddress(n.raftAddr), Suffrage: raft.Voter}}
		others = []uint64{api.MetaGroupID}
		for id := uint64(1); id <= uint64(want); id++ {
			others = append(others, id)
		}
	case n.cluster == nil && HasState(n.cfg.DataDir):
		// Group 1's files at the root are a data group's like any other's: reopened
		// while this node hosts it.
		others = append([]uint64{api.MetaGroupID, legacyGroup}, slices.DeleteFunc(others, func(id uint64) bool { return id == api.MetaGroupID })...)
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
// It also keeps this node hosting what the placement gives it: it starts the replicas the
// placement adds here, deletes those it took away (dropUnplaced), and stops the process
// once it has been drained and removed (checkLeft). It looks again every
// placementRecheck without a new version, since whether a placement is current, or a
// drained node removed, changes without one.
func (n *Node) placementLoop() {
	var seen uint64
	for {
		ctx, cancel := context.WithTimeout(n.ctx, placementRecheck)
		p, err := n.metaGroup.meta.WaitVersion(ctx, seen+1)
		cancel()
		switch {
		case err == nil:
			n.placement.Store(&p)
			seen = p.Version
			n.hostPlaced(&p)
		case n.ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded):
			return // the process stops, or the meta group failed (reported as such)
		}
		cur := n.placement.Load()
		if cur == nil {
			continue
		}
		n.dropUnplaced(cur)
		if n.checkLeft(cur) {
			return
		}
	}
}

// placementRecheck is how often placementLoop looks again without a new placement.
const placementRecheck = time.Second

// groupFor is the group a request about sku acts on: the one place routes pick a group.
// Without a meta group every SKU is group 1's; with one, the group owning the SKU's slot
// in the local placement.
func (n *Node) groupFor(sku string) (groupStore, error) {
	if !n.stores.placed() {
		return n.stores.store(legacyGroup), nil
	}
	p := n.placement.Load()
	if p == nil {
		return nil, api.Errorf(api.NoLeader, "the placement is not loaded yet (the meta group has no leader or is replaying its log)")
	}
	pg := p.GroupOf(sku)
	if pg == nil {
		return nil, api.Errorf(api.Internal, "placement version %d: no group owns slot %d", p.Version, api.SlotOf(sku))
	}
	g := n.stores.store(pg.ID)
	if g == nil {
		return nil, &notHostedError{id: pg.ID, leader: n.placedHTTP(pg.PreferredLeader)}
	}
	return g, nil
}

// notHostedError is groupFor's answer for a group this node hosts no replica of: the
// request goes to the group's leader (forwardAway), whom the placement's preferred
// leader is, or knows.
type notHostedError struct {
	id     uint64
	leader string // the preferred leader's HTTP address, "" when unknown
}

func (e *notHostedError) Error() string {
	return fmt.Sprintf("this node hosts no replica of group %d", e.id)
}

// apiError is the answer when the request cannot be forwarded (it was forwarded here
// already, or is one item of a batch): not_leader, naming the group's likely leader.
func (e *notHostedError) apiError() *api.Error {
	return &api.Error{Code: api.NotLeader, Message: e.Error(), Leader: e.leader}
}

// groupForCommand is the group of a mutation: its SKU's, its lines' (all in one group,
// else cross_group until cross-group orders exist), or for a command naming only an
// order, the group holding that order.
func (n *Node) groupForCommand(r *http.Request, cmd fsm.Command) (groupStore, error) {
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
					cmd.Lines[0].SKU, g.groupID(), l.SKU, h.groupID())
			}
		}
		return g, nil
	case cmd.OrderID != "":
		return n.groupForOrder(r, cmd.OrderID)
	}
	return n.legacyGroup()
}

// groupForOrder is the group holding order id. Order ids do not name their group, and an
// order never leaves the group it was reserved in: a multi-group node first looks in its
// own replicas, and when none has the order (this node may be behind the group that
// does: a reserve acknowledged by the leader a moment ago), asks each group where it is
// led, so that an order is never reported missing because this node lags. An order id
// must be unique across the cluster (the client chooses it): a reuse in another group is
// not refused until cross-group orders give every order a home group.
func (n *Node) groupForOrder(r *http.Request, id string) (groupStore, error) {
	if !n.stores.placed() {
		return n.stores.store(legacyGroup), nil
	}
	for _, g := range n.stores.data() {
		if _, err := g.state().GetOrder(id, 0); err == nil {
			return g, nil
		}
	}
	ctx, cancel := n.requestContext(r) // only for the lookup abroad: the common case above costs none
	defer cancel()
	ids := n.dataGroupIDs()
	found := make([]bool, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, gid := range ids {
		wg.Go(func() { found[i], errs[i] = n.hasOrder(ctx, r, gid, id) })
	}
	wg.Wait()
	if i := slices.Index(found, true); i >= 0 {
		if g := n.stores.store(ids[i]); g != nil {
			return g, nil
		}
		if nh := n.notHosted(ids[i]); nh != nil {
			return nil, nh // hosted() forwards the request there
		}
		return nil, errNoLeader // the placement changed meanwhile: the client retries
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return nil, api.Errorf(api.NotFound, "order %q not found", id)
}

// hasOrder says whether data group gid holds order id, linearizably: read here after a
// strong read when this node leads it, else asked where it is led (askGroup: GET
// /v1/orders/{id}?group=N).
func (n *Node) hasOrder(ctx context.Context, r *http.Request, gid uint64, id string) (bool, error) {
	g := n.stores.store(gid)
	if g != nil && g.leads() {
		if err := g.strongRead(ctx); err != nil {
			return false, err
		}
		_, err := g.state().GetOrder(id, 0)
		return err == nil, nil
	}
	sub, err := http.NewRequestWithContext(ctx, http.MethodGet, "/v1/orders/"+url.PathEscape(id)+"?group="+strconv.FormatUint(gid, 10), nil)
	if err != nil {
		return false, err
	}
	sub.Header = r.Header.Clone() // the client's credential: the leader checks it again
	var ae *api.Error
	switch err := n.askGroup(ctx, sub, g, gid, nil); {
	case err == nil:
		return true, nil
	case errors.As(err, &ae) && ae.Code == api.NotFound:
		return false, nil
	default:
		return false, err
	}
}

// legacyGroup is group 1 for what has no SKU to route by: hosted here, or, in a
// multi-group cluster, the group's leader elsewhere (a notHostedError).
func (n *Node) legacyGroup() (groupStore, error) {
	if g := n.stores.store(legacyGroup); g != nil {
		return g, nil
	}
	var leader string
	if p := n.placement.Load(); p != nil {
		for _, pg := range p.Groups {
			if pg.ID == legacyGroup {
				leader = n.placedHTTP(pg.PreferredLeader)
			}
		}
	}
	return nil, &notHostedError{id: legacyGroup, leader: leader}
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
