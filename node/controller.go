package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

// joinedFileName marks a data dir whose node joined a multi-group cluster: it hosts the
// groups the placement gives it, whatever their number, so its --groups (the bootstrapping
// node's business) is not checked against the groups its dir holds. The dirs under groups/
// are the record of which groups it hosts; a restart reopens each of them.
const joinedFileName = "joined"

func joinedDir(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, groupsDirName, joinedFileName))
	return err == nil
}

func markJoined(dataDir string) error {
	dir := filepath.Join(dataDir, groupsDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", groupsDirName, err)
	}
	// Durable before the node goes on: a restart that lost it would check --groups against
	// a joiner's dir and refuse to start.
	if err := writeSynced(filepath.Join(dir, joinedFileName), nil); err != nil {
		return fmt.Errorf("mark the data dir as joined: %w", err)
	}
	return nil
}

// joinPlacement asks the join addresses to list this node in the placement (add_node),
// until one has; the controller then adds it to the meta group and moves replicas onto it.
func (n *Node) joinPlacement() {
	self := api.JoinRequest{ID: n.cfg.ID, RaftAddr: n.raftAddr, HTTPAddr: n.httpAddr}
	backoff := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
		err := n.metaGroup.joinVia(ctx, n.cfg.Join, self)
		cancel()
		if err == nil {
			return
		}
		// A refusal (a build too old for the cluster's levels) is the operator's to fix:
		// say it where they look; anything else is a cluster still starting.
		if ae := (*api.Error)(nil); errors.As(err, &ae) && ae.Code == api.FailedPrecondition {
			n.log.Warn("the cluster refuses this node", "error", err)
		} else {
			n.log.Debug("not listed in the placement yet", "error", err)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// addPlacementNode is the meta leader's side of a join: it lists the node in the
// placement. A node listed already with the same addresses is not an error (a restart
// asks again); a placement that moved under the proposal is read again.
func (n *Node) addPlacementNode(ctx context.Context, req api.JoinRequest) error {
	g := n.metaGroup
	if err := g.checkJoinerLevel(ctx, req); err != nil {
		return err
	}
	// The data groups' levels are not the meta log's: where this leader hosts a data group
	// it can tell at once that the joiner would be listed only to be refused every replica
	// (changeMembership); elsewhere the controller holds replicas off it (fitForData).
	if err := n.checkBuildLevel(ctx, req.ID, req.HTTPAddr, dataLevelName, "the data groups' log", n.dataLevel(), dataReported, false); err != nil {
		return err
	}
	for range 8 {
		p := g.meta.Placement()
		if p.Version == 0 {
			return api.Errorf(api.NoLeader, "the placement is not bootstrapped yet")
		}
		for _, pn := range p.Nodes {
			switch {
			case pn.ID == req.ID && pn.RaftAddr == req.RaftAddr && pn.HTTPAddr == req.HTTPAddr:
				return nil
			case pn.ID == req.ID:
				return api.Errorf(api.AlreadyExists, "node %q is in the placement with raft %s and http %s", pn.ID, pn.RaftAddr, pn.HTTPAddr)
			case pn.RaftAddr == req.RaftAddr:
				return api.Errorf(api.AlreadyExists, "raft address %s belongs to node %q", req.RaftAddr, pn.ID)
			}
		}
		res, err := g.proposeMeta(ctx, meta.Command{Kind: meta.AddNode, From: p.Version,
			Node: &api.PlacementNode{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr}})
		switch {
		case err != nil:
			return err
		case res.Err == nil:
			n.log.Info("node added to the placement", "id", req.ID, "version", res.Version)
			return nil
		case !errors.Is(res.Err, placement.ErrStale):
			return res.Err
		}
	}
	return api.Errorf(api.FailedPrecondition, "the placement kept changing while adding node %q; retry", req.ID)
}

// placedHTTP is node id's HTTP address in the local placement, "" without one.
func (n *Node) placedHTTP(id string) string {
	if pn := n.placedNode(id); pn != nil {
		return pn.HTTPAddr
	}
	return ""
}

func (n *Node) placedNode(id string) *api.PlacementNode {
	p := n.placement.Load()
	if p == nil {
		return nil
	}
	for i := range p.Nodes {
		if p.Nodes[i].ID == id {
			return &p.Nodes[i]
		}
	}
	return nil
}

// hostPlaced starts an empty, unbootstrapped replica of each data group p puts on this
// node that it does not host yet: the group's leader, which added it, fills it.
func (n *Node) hostPlaced(p *api.Placement) {
	for _, pg := range p.Groups {
		if pg.Kind != api.GroupData || n.group(pg.ID) != nil ||
			!slices.ContainsFunc(pg.Replicas, func(r api.Replica) bool { return r.Node == n.cfg.ID }) {
			continue
		}
		g, err := n.addGroup(pg.ID, nil)
		if err != nil {
			n.log.Error("cannot start a replica the placement names", "group", pg.ID, "error", err)
			continue
		}
		if n.ctx.Err() != nil {
			// Shutdown cancels n.ctx before it stops the groups it sees: one published
			// after that is this loop's to stop.
			_ = g.stop()
			return
		}
		n.log.Info("hosting a replica of a group", "group", pg.ID, "version", p.Version)
	}
}

// Controller timing: how long a live probe may take, the pause between passes with nothing
// to do, the bound on the pause after a failed step, and how long a promotion waits for
// its nonvoter to catch up.
const (
	liveProbeTimeout  = time.Second
	controllerIdle    = 500 * time.Millisecond
	controllerBackoff = 5 * time.Second
	catchUpWait       = 10 * time.Second
	// promoteLag is how far (in log entries) a nonvoter's applied index may trail the
	// leader's commit index and still be promoted: configuration entries are not applied
	// to a state machine, so an exact match may never come.
	promoteLag = 64
)

// controllerLoop is the placement controller. It runs on every multi-group node and acts
// only while this node leads the meta group: a deposed controller's recording is refused
// by the version guard, so two of them racing cannot both apply a plan.
func (n *Node) controllerLoop() {
	wait := controllerIdle
	failures := 0
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
		g := n.metaGroup
		if g.failed() != nil || g.raft.State() != raft.Leader {
			wait, failures = controllerIdle, 0
			continue
		}
		progressed, err := n.controlPass()
		switch {
		case err != nil:
			failures++
			wait = min(controllerIdle<<min(failures, 4), controllerBackoff)
			n.log.Warn("placement step failed; planning again after a pause", "error", err, "pause", wait)
		case progressed:
			wait, failures = 0, 0
		default:
			wait, failures = controllerIdle, 0
		}
	}
}

// controlPass plans from the meta machine's placement and the live nodes, carries the
// steps out and records them, each recording chained on the version the last produced. It
// reports whether it recorded any step.
func (n *Node) controlPass() (bool, error) {
	g := n.metaGroup
	p := g.meta.Placement()
	if p.Version == 0 {
		return false, nil
	}
	budget := catchUpWait + 2*n.cfg.RequestTimeout
	g.leaderMu.Lock()
	moved := g.leaderMoved
	g.leaderMu.Unlock()
	if g.raft.State() != raft.Leader {
		return false, nil
	}
	// A pass ends as soon as this node's meta leadership may have ended: a step it started
	// is then the next controller's to plan again.
	ctx, cancel := context.WithTimeout(n.ctx, budget)
	defer cancel()
	go func() {
		select {
		case <-moved:
			cancel()
		case <-ctx.Done():
		}
	}()
	live := n.fitForData(&p, n.probeNodes(ctx, &p))
	// The planner hands leadership away from a voter it removes only if it knows who
	// leads: a leader cannot remove itself.
	steps, err := placement.Plan(n.withLeaders(&p), live)
	if err != nil {
		return false, err
	}
	if len(steps) == 0 {
		if forgot, err := n.forgetDrained(ctx, &p); forgot || err != nil {
			return forgot, err
		}
		return false, n.balanceLeaders(ctx, &p, live)
	}
	from, done := p.Version, false
	for _, s := range steps {
		if g.raft.State() != raft.Leader {
			return done, nil
		}
		// Handing the meta group's leadership away ends this node's right to record, so
		// that step is recorded first; should the transfer then fail, balanceLeaders
		// sends leadership after the recorded preference.
		metaTransfer := s.Group == api.MetaGroupID && s.Kind == placement.TransferLeader
		if !metaTransfer {
			if err := n.carryOut(ctx, &p, s); err != nil {
				n.metrics.placementSteps.WithLabelValues(string(s.Kind), "failed").Inc()
				return done, fmt.Errorf("%s: %w", s, err)
			}
		}
		res, err := g.proposeMeta(ctx, meta.Command{Kind: meta.RecordStep, From: from, Step: &s})
		switch {
		case err != nil:
			return done, fmt.Errorf("record %s: %w", s, err)
		case errors.Is(res.Err, placement.ErrStale):
			return done, nil // someone else moved the placement: plan again from it
		case res.Err != nil:
			n.metrics.placementSteps.WithLabelValues(string(s.Kind), "failed").Inc()
			return done, fmt.Errorf("record %s: %w", s, res.Err)
		}
		n.metrics.placementSteps.WithLabelValues(string(s.Kind), "done").Inc()
		n.log.Info("placement step", "group", s.Group, "kind", s.Kind, "node", s.Node, "version", res.Version)
		from, done = res.Version, true
		if metaTransfer {
			// Not ctx: it ends with the leadership this step hands away.
			tctx, tcancel := context.WithTimeout(n.ctx, budget)
			err := n.carryOut(tctx, &p, s)
			tcancel()
			if err != nil {
				return done, fmt.Errorf("%s (recorded): %w", s, err)
			}
			return done, nil // the next leader plans on
		}
	}
	return done, nil
}

// balanceLeaders moves each group's leadership back to its preferred leader where raft
// elected another (placement.BalanceLeaders); such a move changes no placement, so it is
// carried out and not recorded. A group this node hosts no replica of shows no leader
// here: its preferred leader is asked whether it leads it (leadsGroup), so that a
// leadership an operator pinned, or the balance rule spread, comes back after an
// election wherever the meta leader is.
func (n *Node) balanceLeaders(ctx context.Context, p *api.Placement, live []string) error {
	q := placement.Clone(p)
	for i := range q.Groups {
		pg := &q.Groups[i]
		if g := n.group(pg.ID); g != nil && g.failed() == nil {
			_, id := g.raft.LeaderWithID()
			pg.Leader = string(id)
		} else if slices.Contains(live, pg.PreferredLeader) && n.leadsGroup(ctx, pg.PreferredLeader, pg.ID) {
			pg.Leader = pg.PreferredLeader
		}
	}
	steps, err := placement.BalanceLeaders(q, live)
	if err != nil {
		return err
	}
	// The meta group's goes last: it ends this node's pass, and its wait must not end with
	// the leadership it hands away (ctx does).
	if len(steps) > 1 && steps[0].Group == api.MetaGroupID { // steps come in group order
		steps = append(steps[1:], steps[0])
	}
	for _, s := range steps {
		sctx, scancel := ctx, context.CancelFunc(func() {})
		if s.Group == api.MetaGroupID {
			sctx, scancel = context.WithTimeout(n.ctx, catchUpWait)
		}
		err := n.carryOut(sctx, p, s)
		scancel()
		if err != nil {
			return fmt.Errorf("rebalance %s: %w", s, err)
		}
		n.log.Info("leadership back to its preferred leader", "group", s.Group, "node", s.Node)
	}
	return nil
}

// withLeaders is p with each group's Leader filled in: from this node's replica where it
// hosts one, else taken to be the preferred leader (balanceLeaders asks it: leadsGroup).
func (n *Node) withLeaders(p *api.Placement) *api.Placement {
	q := placement.Clone(p)
	for i := range q.Groups {
		q.Groups[i].Leader = q.Groups[i].PreferredLeader
		if g := n.group(q.Groups[i].ID); g != nil && g.failed() == nil {
			_, id := g.raft.LeaderWithID()
			q.Groups[i].Leader = string(id)
		}
	}
	return q
}

// leadsGroup reports whether node id says, within liveProbeTimeout, that it leads group.
// No answer is a no: the transfer it leads to is a no-op on a node that leads already.
func (n *Node) leadsGroup(ctx context.Context, id string, group uint64) bool {
	addr := n.placedHTTP(id)
	if addr == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, liveProbeTimeout)
	defer cancel()
	var self api.Node
	if err := n.getJSON(ctx, addr, "/v1/cluster/self", &self); err != nil || self.ID != id {
		return false
	}
	return slices.ContainsFunc(self.Groups, func(g api.NodeGroup) bool { return g.ID == group && g.Role == api.RoleLeader })
}

// liveOf is the placement's nodes that answered probeNodes, in the placement's order.
func liveOf(p *api.Placement, reports map[string]api.Node) []string {
	var out []string
	for _, pn := range p.Nodes {
		if _, ok := reports[pn.ID]; ok {
			out = append(out, pn.ID)
		}
	}
	return out
}

// probeNodes is the report of each of the placement's nodes that answers GET
// /v1/cluster/self within liveProbeTimeout, this one always. Probing over HTTP, rather
// than reading raft's last contact, also catches a process whose raft answers but whose
// API does not: such a node serves nothing, and should not be given replicas.
func (n *Node) probeNodes(ctx context.Context, p *api.Placement) map[string]api.Node {
	reports := make([]*api.Node, len(p.Nodes))
	var wg sync.WaitGroup
	for i, pn := range p.Nodes {
		if pn.ID == n.cfg.ID {
			self := n.self()
			reports[i] = &self
			continue
		}
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, liveProbeTimeout)
			defer cancel()
			var self api.Node
			if n.getJSON(pctx, pn.HTTPAddr, "/v1/cluster/self", &self) == nil && self.ID == pn.ID {
				reports[i] = &self
			}
		})
	}
	wg.Wait()
	out := make(map[string]api.Node, len(p.Nodes))
	for i, pn := range p.Nodes {
		if reports[i] != nil {
			out[pn.ID] = *reports[i]
		}
	}
	return out
}

// fitForData is the live nodes (those reports holds, in placement order) the planner may
// count on for data replicas: not one whose build knows a lower apply level than a data
// group's log is at (the highest this node hosts or any node reports), which every data
// group's leader would refuse as a replica (checkDataReplicaLevel). Planned as down, such a
// node is given no replica, so no step is refused over and over in front of the other
// groups' and a group that needs a replica places it elsewhere; it still hosts the meta
// group, as a nonvoter. Each change of the nodes held off is logged once.
func (n *Node) fitForData(p *api.Placement, reports map[string]api.Node) []string {
	var held []string
	if h := n.heldOffData.Load(); h != nil {
		held = *h
	}
	level := n.dataLevel()
	for _, r := range reports {
		level = max(level, r.ApplyLevel)
	}
	var live, off []string
	for _, pn := range p.Nodes {
		r, ok := reports[pn.ID]
		switch {
		case !ok:
		case dataReported(r) < level:
			off = append(off, pn.ID)
			if !slices.Contains(held, pn.ID) {
				n.log.Warn("node gets no data replicas until it is upgraded: its build knows a lower apply level than the data groups' logs",
					"id", pn.ID, "max_apply_level", dataReported(r), "apply_level", level)
			}
		default:
			live = append(live, pn.ID)
		}
	}
	for _, id := range held {
		if !slices.Contains(off, id) {
			n.log.Info("node may host data replicas again", "id", id)
		}
	}
	n.heldOffData.Store(&off)
	return live
}

// carryOut performs s on its group's raft through the group's leader: this node's
// membership route when it hosts the group (it forwards to the leader), else a node of the
// placement that does.
func (n *Node) carryOut(ctx context.Context, p *api.Placement, s placement.Step) error {
	addr := n.httpAddr
	if n.group(s.Group) == nil {
		addr = ""
		for _, pg := range p.Groups {
			if pg.ID == s.Group && len(pg.Replicas) > 0 {
				addr = n.placedHTTP(pg.Replicas[0].Node)
			}
		}
		if addr == "" {
			return api.Errorf(api.NotFound, "no node hosting group %d is known", s.Group)
		}
	}
	body, _ := json.Marshal(api.MembershipRequest{Op: string(s.Kind), Node: s.Node})
	req, err := n.peerRequest(ctx, http.MethodPost, addr, "/v1/groups/"+strconv.FormatUint(s.Group, 10)+"/membership", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.fwd.Do(req)
	if err != nil {
		return err
	}
	if apiErr := readAPIError(resp); apiErr != nil {
		return apiErr
	}
	return nil
}

// handleGroupMembership is the internal admin route the controller carries steps out
// through: one raft membership change or leadership transfer on group id, served by its
// leader.
func (n *Node) handleGroupMembership(w http.ResponseWriter, r *http.Request) {
	var req api.MembershipRequest
	body, err := readRequest(w, r, &req)
	if err != nil {
		n.writeError(w, err)
		return
	}
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		n.writeError(w, api.Errorf(api.InvalidArgument, "group id must be a number, got %q", r.PathValue("id")))
		return
	}
	g := n.group(id)
	if g == nil || g.failed() != nil {
		n.writeError(w, api.Errorf(api.NotFound, "this node hosts no running replica of group %d", id))
		return
	}
	n.groupLeaderOnly(w, r, g, body, func(ctx context.Context) error { return g.changeMembership(ctx, req) })
}

// changeMembership is the leader's side of one step. Each op is idempotent (a step done
// on raft but not yet recorded is planned again after a leader change, and done again).
func (g *Group) changeMembership(ctx context.Context, req api.MembershipRequest) error {
	cfg, index, err := g.configuration()
	if err != nil {
		return err
	}
	if index, err = expectConfig(index, req.ConfigIndex); err != nil {
		return err
	}
	pn := g.srv.placedNode(req.Node)
	if pn == nil {
		return api.Errorf(api.NotFound, "node %q is not in the placement", req.Node)
	}
	id, addr := raft.ServerID(pn.ID), raft.ServerAddress(pn.RaftAddr)
	present, voter := false, false
	for _, s := range cfg.Servers {
		if s.ID == id {
			present, voter = true, s.Suffrage == raft.Voter
		}
	}
	timeout := g.cfg.RequestTimeout
	var f raft.Future
	switch placement.StepKind(req.Op) {
	case placement.AddNonvoter:
		if present {
			return nil
		}
		if err := g.checkDataReplicaLevel(ctx, pn); err != nil {
			return err
		}
		f = g.raft.AddNonvoter(id, addr, index, timeout)
	case placement.Promote:
		if voter {
			return nil
		}
		if !present {
			return api.Errorf(api.FailedPrecondition, "group %d: %q is not a member to promote", g.id, req.Node)
		}
		if err := g.checkDataReplicaLevel(ctx, pn); err != nil {
			return err
		}
		if err := g.awaitCaughtUp(ctx, pn); err != nil {
			return err
		}
		f = g.raft.AddVoter(id, addr, index, timeout)
	case placement.Demote:
		if !voter {
			return nil
		}
		f = g.raft.DemoteVoter(id, index, timeout)
	case placement.Remove:
		if !present {
			return nil
		}
		if string(id) == g.cfg.ID {
			// The planner removes no preferred leader: it handed the leadership away
			// before, and an election gave it back. Hand it away again, so that the
			// controller's next try reaches a leader that can remove this node; refusing
			// alone would have it retry here until some election moved the leadership.
			if _, err := g.handOver(ctx); err != nil {
				return err
			}
			return api.Errorf(api.FailedPrecondition, "group %d: its leader %q cannot remove itself; it handed leadership over: ask the new leader", g.id, req.Node)
		}
		f = g.raft.RemoveServer(id, index, timeout)
	case placement.TransferLeader:
		if string(id) == g.cfg.ID {
			return nil
		}
		if !voter {
			return api.Errorf(api.FailedPrecondition, "group %d: %q is not a voter to lead", g.id, req.Node)
		}
		if err := waitFuture(ctx, g.raft.LeadershipTransferToServer(id, addr)); err != nil {
			return fmt.Errorf("group %d: transfer leadership to %s: %w", g.id, id, err)
		}
		g.log.Info("leadership transferred", "to", id)
		return nil
	default:
		return api.Errorf(api.InvalidArgument, "op must be one of add_nonvoter, promote, demote, remove, transfer_leader; got %q", req.Op)
	}
	if err := waitFuture(ctx, f); err != nil {
		return g.membershipError(err, index)
	}
	g.log.Info("membership changed", "op", req.Op, "node", req.Node)
	return nil
}

// awaitCaughtUp waits, within catchUpWait, until node's replica of g has applied the log
// to within promoteLag of this leader's commit index: a voter that is far behind would
// count toward quorum without being able to help form one.
func (g *Group) awaitCaughtUp(ctx context.Context, pn *api.PlacementNode) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	var applied uint64
	for {
		var self api.Node
		if err := g.srv.getJSON(ctx, pn.HTTPAddr, "/v1/cluster/self", &self); err == nil {
			hosted := false
			for _, ng := range self.Groups {
				if ng.ID == g.id && ng.Failed == "" {
					hosted, applied = true, ng.AppliedIndex
				}
			}
			if hosted && applied+promoteLag >= g.raft.CommitIndex() {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return api.Errorf(api.FailedPrecondition, "group %d: nonvoter %q has not caught up (applied %d, commit %d)", g.id, pn.ID, applied, g.raft.CommitIndex())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
