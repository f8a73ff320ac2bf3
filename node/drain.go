package node

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

// Removing a node from a multi-group cluster is a drain, not one raft change: the node
// hosts replicas of several groups, and each must move to another node first.
//
//  1. DELETE /v1/cluster/members/{id} sets the node draining in the meta log
//     (meta.SetNodeState) and answers 202 at once: the moves take a while, and a request
//     must not hold them;
//  2. the placement controller moves the node's replicas off, as the planner says
//     (placement.Plan: a draining node gets no replica and keeps one only while no good
//     node can take it), handing its leaderships away first; its meta group replica
//     goes last;
//  3. once it hosts nothing, the controller unlists it (meta.RemoveNode, forgetDrained);
//  4. the drained process, which its meta replica cannot tell (it is no longer
//     replicated to), notices it is no longer listed by asking the other nodes
//     (checkLeft) and stops, as a removed single-group node does (Node.Removed).
//
// GET /v1/cluster shows the progress: the node's state (draining) and its replicas in
// each group's replicas.

// handleDrain is DELETE /v1/cluster/members/{id} of a multi-group cluster, served by the
// meta group's leader (a follower forwards).
func (n *Node) handleDrain(w http.ResponseWriter, r *http.Request, id string) {
	m := n.metaGroup
	if m.raft.State() != raft.Leader {
		n.forward(w, r, m, nil)
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	if err := n.drainNode(ctx, id); err != nil {
		n.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": api.NodeDraining, "node": id})
}

// drainNode sets node id draining in the placement. A node draining already is not an
// error (a retry); one the placement does not list is not_found (a retry after the drain
// finished, as a single-group removal's retry); the last active node cannot drain, since
// no node would be left to host the groups.
func (n *Node) drainNode(ctx context.Context, id string) error {
	g := n.metaGroup
	for range 8 {
		p := g.meta.Placement()
		if p.Version == 0 {
			return api.Errorf(api.NoLeader, "the placement is not bootstrapped yet")
		}
		i := slices.IndexFunc(p.Nodes, func(pn api.PlacementNode) bool { return pn.ID == id })
		switch {
		case i < 0:
			return api.Errorf(api.NotFound, "node %q is not in the placement", id)
		case p.Nodes[i].State == api.NodeDraining:
			return nil
		case !slices.ContainsFunc(p.Nodes, func(pn api.PlacementNode) bool { return pn.ID != id && pn.State == api.NodeActive }):
			return api.Errorf(api.FailedPrecondition, "node %q is the last active node: no node would be left to host the groups", id)
		}
		res, err := g.proposeMeta(ctx, meta.Command{Kind: meta.SetNodeState, From: p.Version, NodeID: id, State: api.NodeDraining})
		switch {
		case err != nil:
			return err
		case res.Err == nil:
			n.log.Info("node draining: its replicas move off, then it leaves", "id", id, "version", res.Version)
			return nil
		case !errors.Is(res.Err, placement.ErrStale):
			return res.Err
		}
	}
	return api.Errorf(api.FailedPrecondition, "the placement kept changing while draining node %q; retry", id)
}

// forgetDrained unlists a draining node that hosts no replica of any group any more, the
// meta group's included (placement.RemoveNode): the last step of its drain. It reports
// whether it recorded one.
func (n *Node) forgetDrained(ctx context.Context, p *api.Placement) (bool, error) {
	for _, pn := range p.Nodes {
		if pn.State != api.NodeDraining || slices.ContainsFunc(p.Groups, func(g api.Group) bool {
			return slices.ContainsFunc(g.Replicas, func(r api.Replica) bool { return r.Node == pn.ID })
		}) {
			continue
		}
		res, err := n.metaGroup.proposeMeta(ctx, meta.Command{Kind: meta.RemoveNode, From: p.Version, NodeID: pn.ID})
		switch {
		case err != nil:
			return false, err
		case errors.Is(res.Err, placement.ErrStale):
			return false, nil // plan again from the placement that moved
		case res.Err != nil:
			return false, res.Err
		}
		n.log.Info("drained node removed from the placement", "id", pn.ID, "version", res.Version)
		return true, nil
	}
	return false, nil
}
