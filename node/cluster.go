package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// memberCache holds the member records as of a fsm.MembersVersion: the leader's address is
// needed on every answer and every forward, and records change rarely.
type memberCache struct {
	version uint64
	http    map[string]string // id → HTTP address
}

// memberHTTP maps a member id to its HTTP address from the replicated member records,
// which the membership group keeps for the whole process.
func (g *Group) memberHTTP(id string) string {
	if addr := g.srv.placedHTTP(id); addr != "" {
		return addr
	}
	if g.srv.metaGroup != nil {
		return "" // the placement is a multi-group cluster's one record of addresses
	}
	if m := g.srv.cluster; !g.membership && m != nil {
		return m.memberHTTP(id)
	}
	c := g.members.Load()
	if v := g.fsm.MembersVersion(); c == nil || c.version != v {
		members, err := g.fsm.Members()
		if err != nil {
			return ""
		}
		c = &memberCache{version: v, http: make(map[string]string, len(members))}
		for _, m := range members {
			c.http[m.ID] = m.HTTPAddr
		}
		g.members.Store(c)
	}
	return c.http[id]
}

// leaderHTTP is the leader's HTTP address, or "" when no leader is known.
func (g *Group) leaderHTTP() string {
	_, id := g.raft.LeaderWithID()
	if id == "" {
		return ""
	}
	if string(id) == g.cfg.ID {
		return g.srv.httpAddr
	}
	return g.memberHTTP(string(id))
}

// configuration returns raft's latest configuration and the log index it was written at:
// the prevIndex that makes a membership change fail if another one got in first.
//
// GetConfiguration's Index() is always 0 in hashicorp/raft v1.7.3 (and raft skips the
// prevIndex check for 0), so two racing changes would both win; the index is looked up in
// the log instead: the newest configuration entry, or the newest snapshot's if the log
// holds none. Membership changes are rare, so the backwards scan is affordable.
func (g *Group) configuration() (raft.Configuration, uint64, error) {
	f := g.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, 0, err
	}
	index, err := g.configurationIndex()
	if err != nil {
		return raft.Configuration{}, 0, fmt.Errorf("find the configuration's index: %w", err)
	}
	return f.Configuration(), index, nil
}

func (g *Group) configurationIndex() (uint64, error) {
	first, err := g.logStore.FirstIndex()
	if err != nil {
		return 0, err
	}
	last, err := g.logStore.LastIndex()
	if err != nil {
		return 0, err
	}
	var l raft.Log
	for i := last; i >= first && i > 0; i-- {
		if err := g.logStore.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				break // compacted under us: the snapshot below covers it
			}
			return 0, err
		}
		if l.Type == raft.LogConfiguration {
			return i, nil
		}
	}
	snaps, err := g.snaps.List()
	if err != nil || len(snaps) == 0 {
		return 0, err
	}
	return snaps[0].ConfigurationIndex, nil
}

// membershipLoop keeps this node in the cluster as configured: a new node asks the join
// addresses to add it, and every member makes sure the replicated record of its HTTP
// address is right (a leader writes it, a follower asks the leader to). It also notices
// when raft shut itself down because this node was removed.
func (g *Group) membershipLoop() {
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-time.After(backoff):
		}
		if g.raft.State() == raft.Shutdown {
			if g.ctx.Err() != nil {
				return // our own Shutdown, which ends g.ctx before it stops raft
			}
			// Else raft stopped itself: ShutdownOnRemove.
			g.log.Warn("raft stopped: this node was removed from the cluster; stopping the node")
			g.leftCluster.Store(true)
			go g.srv.stopSelf()
			return
		}
		if g.srv.metaGroup == nil && g.removed() { // a multi-group node hosts what the placement says, group 1 included
			g.log.Warn("this node is no longer in the cluster's configuration; stopping")
			g.leftCluster.Store(true)
			go g.srv.stopSelf()
			return
		}
		if err := g.reconcileMembership(); err != nil {
			g.log.Debug("membership not settled yet", "error", err)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		if err := g.pruneMemberRecords(g.ctx); err != nil {
			g.log.Debug("pruning stale member records", "error", err)
		}
		backoff = 5 * time.Second
	}
}

var errNotInConfig = errors.New("not in the raft configuration yet")

// selfStopGrace bounds the graceful part of a shutdown the node starts on its own: open
// requests get this long, then their connections are closed (a watch stream never ends by
// itself, and a removed node must not linger answering for a cluster it left).
const selfStopGrace = 3 * time.Second

// stopSelf shuts the node down from one of its own loops (not n.spawn: Shutdown waits for
// the spawned loops).
func (n *Node) stopSelf() {
	ctx, cancel := context.WithTimeout(context.Background(), selfStopGrace)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		n.log.Warn("shutdown after leaving the cluster", "error", err)
	}
}

// removed finds out whether this node was removed from the cluster. hashicorp/raft stops
// replicating to a removed follower before it sees its removal, so the follower would sit
// there holding pre-vote elections forever; once it has not heard from a leader for a
// while, it asks the other members, and a leader's configuration without it settles it.
func (g *Group) removed() bool {
	if g.raft.State() == raft.Leader || time.Since(g.raft.LastContact()) < 3*g.cfg.ElectionTimeout {
		return false
	}
	members, err := g.fsm.Members()
	if err != nil {
		return false
	}
	// Only members of this node's own configuration are asked: records inherited from
	// another cluster (a restored backup, a recovered quorum) may name nodes of a cluster
	// that never had this node, and their "not a member" would be no answer about ours.
	cfg, _, err := g.configuration()
	if err != nil {
		return false
	}
	inConfig := map[string]bool{}
	for _, s := range cfg.Servers {
		inConfig[string(s.ID)] = true
	}
	ctx, cancel := context.WithTimeout(g.ctx, 2*time.Second)
	defer cancel()
	for _, m := range members {
		if m.ID == g.cfg.ID || !inConfig[m.ID] {
			continue
		}
		var cl api.Cluster
		if err := g.srv.getJSON(ctx, m.HTTPAddr, "/v1/cluster", &cl); err != nil || cl.Leader == "" {
			continue
		}
		for _, peer := range cl.Nodes {
			if peer.ID == g.cfg.ID {
				return false
			}
		}
		return len(cl.Nodes) > 0
	}
	return false
}

func (g *Group) reconcileMembership() error {
	cfg, cfgIndex, err := g.configuration()
	if err != nil {
		return err
	}
	inConfig := false
	for _, s := range cfg.Servers {
		inConfig = inConfig || string(s.ID) == g.cfg.ID
	}
	ctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
	defer cancel()
	self := api.JoinRequest{ID: g.cfg.ID, RaftAddr: g.srv.raftAddr, HTTPAddr: g.srv.httpAddr, Nonvoter: g.cfg.JoinAsNonvoter}
	if !inConfig {
		if g.srv.metaGroup != nil {
			// A multi-group cluster adds a node to the meta group and the controller puts
			// replicas on it: group 1 is one of them, never joined by hand (joinPlacement).
			return errNotInConfig
		}
		if g.hadState || g.wasMember.Load() || len(g.cfg.Join) == 0 {
			// Bootstrap pending, waiting to be added by an operator, or removed: --join
			// is for a first start, never for undoing a removal.
			return errNotInConfig
		}
		if err := g.joinVia(ctx, g.cfg.Join, self); err != nil {
			return err
		}
		g.wasMember.Store(true)
		return nil
	}
	g.wasMember.Store(true)
	mine := fsm.Member{ID: g.cfg.ID, RaftAddr: g.srv.raftAddr, HTTPAddr: g.srv.httpAddr}
	members, err := g.fsm.Members()
	if err != nil {
		return err
	}
	for _, m := range members {
		if m == mine {
			return nil
		}
	}
	if g.srv.metaGroup != nil && g.raft.State() != raft.Leader {
		// Members' addresses are the placement's there (placedHTTP): a follower has no
		// record to ask for, and a join would only repeat its add_node.
		return nil
	}
	if g.raft.State() == raft.Leader {
		_, err := g.propose(ctx, fsm.Command{Kind: fsm.KindSetMember, Member: mine})
		return err
	}
	leader := g.leaderHTTP()
	if leader == "" {
		return errNoLeader
	}
	// Only the member record is missing: the join must not add this node back if an
	// operator removed it since the configuration it saw (its removal may not have reached
	// it), so it names that configuration and the leader refuses a newer one without it.
	self.ConfigIndex = cfgIndex
	return g.joinVia(ctx, []string{leader}, self)
}

// leaveAsWiped runs before raft starts on a node that has no raft state yet is told to
// join. If the cluster still lists this id, the node has lost its data (a wiped disk, a
// replaced machine) and must not rejoin as that member: the leader would simply replicate
// to it, and until it caught up its empty log could vote for a candidate that lacks
// committed entries. So it asks for the old member's removal first — once that commits on
// a majority of the others, they hold every committed entry — and joins afresh after
// (membershipLoop). A cluster it cannot reach, or that refuses, is reported and left as is.
func (g *Group) leaveAsWiped() {
	ctx, cancel := context.WithTimeout(g.ctx, g.cfg.RequestTimeout)
	defer cancel()
	for _, addr := range g.cfg.Join {
		var cl api.Cluster
		if err := g.srv.getJSON(ctx, addr, "/v1/cluster", &cl); err != nil {
			continue
		}
		if !slices.ContainsFunc(cl.Nodes, func(m api.Node) bool { return m.ID == g.cfg.ID }) {
			return // a new member: nothing to remove
		}
		g.log.Warn("this id is a member already but the data dir is empty: asking to remove the old member before joining again", "via", addr)
		req, err := g.srv.peerRequest(ctx, http.MethodDelete, addr, "/v1/cluster/members/"+url.PathEscape(g.cfg.ID), nil)
		if err == nil {
			var resp *http.Response
			if resp, err = g.srv.fwd.Do(req); err == nil {
				if apiErr := readAPIError(resp); apiErr != nil {
					err = apiErr
				}
			}
		}
		if err != nil {
			g.log.Error("could not remove the old member; joining anyway (remove it by hand: stockctl cluster leave)", "id", g.cfg.ID, "error", err)
		}
		return
	}
	g.log.Warn("no join address answered; cannot check whether this id is an old member", "join", strings.Join(g.cfg.Join, ","))
}

// joinVia asks each address in turn to add this node; any member accepts and forwards.
func (g *Group) joinVia(ctx context.Context, addrs []string, req api.JoinRequest) error {
	body, _ := json.Marshal(req)
	var errs []error
	for _, addr := range addrs {
		hreq, err := g.srv.peerRequest(ctx, http.MethodPost, addr, "/v1/cluster/members", bytes.NewReader(body))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hreq.Header.Set("Content-Type", "application/json")
		resp, err := g.srv.fwd.Do(hreq)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		apiErr := readAPIError(resp)
		if apiErr == nil {
			g.log.Info("joined the cluster", "via", addr)
			return nil
		}
		errs = append(errs, fmt.Errorf("join via %s: %w", addr, apiErr))
	}
	return errors.Join(errs...)
}

// addMember is the leader's side of a join. A member already present with the same address
// and suffrage is not an error: a restarted node asks again.
func (g *Group) addMember(ctx context.Context, req api.JoinRequest) error {
	cfg, index, err := g.configuration()
	if err != nil {
		return err
	}
	want := raft.Voter
	if req.Nonvoter {
		want = raft.Nonvoter
	}
	present := false
	for _, s := range cfg.Servers {
		switch {
		case string(s.ID) == req.ID && string(s.Address) == req.RaftAddr && s.Suffrage == want:
			present = true
		case string(s.ID) != req.ID && string(s.Address) == req.RaftAddr:
			return api.Errorf(api.AlreadyExists, "raft address %s belongs to member %q", req.RaftAddr, s.ID)
		}
	}
	if !present {
		if err := g.checkJoinerLevel(ctx, req); err != nil {
			return err
		}
		// A member already present makes this a retry or a restart's join: it needs no
		// change, so the caller's view of the configuration matters only here.
		if index, err = expectConfig(index, req.ConfigIndex); err != nil {
			return err
		}
		// prevIndex: of two racing changes made against the same configuration, one fails.
		var f raft.IndexFuture
		if req.Nonvoter {
			f = g.raft.AddNonvoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), index, g.cfg.RequestTimeout)
		} else {
			f = g.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), index, g.cfg.RequestTimeout)
		}
		if err := waitFuture(ctx, f); err != nil {
			return g.membershipError(err, index)
		}
		g.log.Info("member added", "id", req.ID, "raft", req.RaftAddr, "nonvoter", req.Nonvoter)
	}
	_, err = g.propose(ctx, fsm.Command{Kind: fsm.KindSetMember,
		Member: fsm.Member{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr}})
	return err
}

// removeMember is the leader's side of a leave. A removal that would leave the cluster
// unable to commit is refused unless forced (see checkRemoval); removing the last voter
// is refused always.
func (g *Group) removeMember(ctx context.Context, id string, force bool, seen uint64) error {
	cfg, index, err := g.configuration()
	if err != nil {
		return err
	}
	if index, err = expectConfig(index, seen); err != nil {
		return err
	}
	found, voters, isVoter := false, 0, false
	for _, s := range cfg.Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		if string(s.ID) == id {
			found, isVoter = true, s.Suffrage == raft.Voter
		}
	}
	if !found {
		return api.Errorf(api.NotFound, "member %q not found", id)
	}
	if isVoter && voters == 1 {
		return api.Errorf(api.FailedPrecondition, "member %q is the last voter; removing it would leave no cluster", id)
	}
	if isVoter && !force {
		if err := g.checkRemoval(ctx, cfg, id); err != nil {
			return err
		}
	}
	if isVoter && id == g.cfg.ID {
		// A leader that removed itself would step down once the change committed, and the
		// others would hold an election only after noticing its silence: no leader for a
		// few heartbeat timeouts. It hands leadership to the most up-to-date voter first
		// and has the new leader remove it.
		leader, err := g.handOver(ctx)
		if err == nil {
			return g.removeThrough(ctx, leader, id, force, index)
		}
		if g.raft.State() != raft.Leader {
			// Leadership moved anyway: the client sends the removal to the new leader.
			return fmt.Errorf("%w (%v)", errNotLeader, err)
		}
		g.log.Warn("could not hand leadership over; removing this node as the leader", "error", err)
	}
	// The record goes first: if the raft change then fails, the member's own loop puts the
	// record back, while a record left behind for a removed member would linger forever.
	if _, err := g.propose(ctx, fsm.Command{Kind: fsm.KindRemoveMember, Member: fsm.Member{ID: id}}); err != nil {
		return err
	}
	if err := waitFuture(ctx, g.raft.RemoveServer(raft.ServerID(id), index, g.cfg.RequestTimeout)); err != nil {
		return g.membershipError(err, index)
	}
	g.log.Info("member removed", "id", id)
	return nil
}

// handOver transfers leadership to the most up-to-date voter and returns the new leader's
// HTTP address once this node knows it.
func (g *Group) handOver(ctx context.Context) (string, error) {
	if err := waitFuture(ctx, g.raft.LeadershipTransfer()); err != nil {
		return "", fmt.Errorf("hand leadership over: %w", err)
	}
	leader := g.awaitLeader(ctx, g.srv.httpAddr)
	if leader == "" || leader == g.srv.httpAddr {
		return "", fmt.Errorf("hand leadership over: %w", errNoLeader)
	}
	g.log.Info("handed leadership over before removing this node", "leader", leader)
	return leader, nil
}

// removeThrough asks the leader at addr to remove member id, from the configuration at
// index: if membership changed since this node checked it, the leader refuses.
func (g *Group) removeThrough(ctx context.Context, addr, id string, force bool, index uint64) error {
	q := url.Values{"config_index": {strconv.FormatUint(index, 10)}}
	if force {
		q.Set("force", "true")
	}
	req, err := g.srv.peerRequest(ctx, http.MethodDelete, addr, "/v1/cluster/members/"+url.PathEscape(id)+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set(api.HeaderForwardedBy, g.cfg.ID) // a leader that lost it since answers not_leader
	resp, err := g.srv.fwd.Do(req)
	if err != nil {
		return &api.Error{Code: api.Timeout, Message: "asking the new leader to remove this node failed (" + err.Error() + "); the outcome is unknown: read the cluster and retry", Leader: addr}
	}
	if apiErr := readAPIError(resp); apiErr != nil {
		return apiErr
	}
	return nil
}

// expectConfig checks a caller's view of the configuration (0: none given) against the
// current one and returns the prevIndex to change it with: the caller's, so that raft
// itself refuses the change if another one gets in between.
func expectConfig(current, seen uint64) (uint64, error) {
	if seen == 0 {
		return current, nil
	}
	if seen != current {
		return 0, api.Errorf(api.FailedPrecondition, "membership changed since configuration %d (it is now %d); read the cluster and retry", seen, current)
	}
	return seen, nil
}

// membershipError maps a failed configuration change. One that raft refused because another
// change got in first (the configuration is no longer the one at index) is a conflict the
// caller resolves by reading the cluster again. A wait that ended on a deadline is not: the
// change may have committed (then the index moved because of it), so the outcome stays
// unknown and a retry finds out.
func (g *Group) membershipError(err error, index uint64) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	if _, now, cerr := g.configuration(); cerr == nil && now != index {
		return api.Errorf(api.FailedPrecondition, "membership changed concurrently (configuration %d is now %d); read the cluster and retry: %v", index, now, err)
	}
	return err
}

// leaderOnly runs a change of the cluster's own (clusterGroup) on its leader, forwarding
// from a follower.
func (n *Node) leaderOnly(w http.ResponseWriter, r *http.Request, body []byte, fn func(ctx context.Context) error) {
	n.groupLeaderOnly(w, r, n.clusterGroup(), body, fn)
}

// groupLeaderOnly runs a change on g's leader, forwarding from a follower.
func (n *Node) groupLeaderOnly(w http.ResponseWriter, r *http.Request, g *Group, body []byte, fn func(ctx context.Context) error) {
	if g.raft.State() != raft.Leader {
		n.forward(w, r, g, body)
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
	if n.metaGroup != nil {
		// The node is listed in the placement; the controller moves replicas onto it.
		n.groupLeaderOnly(w, r, n.metaGroup, body, func(ctx context.Context) error { return n.addPlacementNode(ctx, req) })
		return
	}
	n.leaderOnly(w, r, body, func(ctx context.Context) error { return n.cluster.addMember(ctx, req) })
}

func (n *Node) handleLeave(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if n.metaGroup != nil {
		n.handleDrain(w, r, id)
		return
	}
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
	n.leaderOnly(w, r, nil, func(ctx context.Context) error { return n.cluster.removeMember(ctx, id, force, seen) })
}
