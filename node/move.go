package node

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

// forecastRounds bounds the planner rounds a forecast plays: far more than any cluster
// takes to settle (a round moves one step of every group), so it only stops a bug.
const forecastRounds = 1000

// handleGroupMove is POST /v1/groups/{id}/move: an operator's move of one replica,
// recorded as a pin that the controller carries out.
func (n *Node) handleGroupMove(w http.ResponseWriter, r *http.Request) {
	var req api.MoveRequest
	body, err := readRequest(w, r, &req)
	var id uint64
	if err == nil {
		id, err = pathGroupID(r)
	}
	if err == nil && (req.From == "" || req.To == "" || req.From == req.To) {
		err = api.Errorf(api.InvalidArgument, "a move names two different nodes, from and to; got %q and %q", req.From, req.To)
	}
	if err != nil {
		n.writeError(w, err)
		return
	}
	n.changePlacement(w, r, body, func(p *api.Placement, live []string, reports map[string]api.Node) (*api.Placement, meta.Command, error) {
		q, err := placement.MoveReplica(p, id, req.From, req.To)
		if err == nil {
			err = placement.CheckLive(q, live, id, req.To)
		}
		// The group's leader would refuse the replica (checkDataReplicaLevel) on every
		// pass of the controller, for as long as the pin stands: say so now.
		if l, level := dataReported(reports[req.To]), n.dataLevel(); err == nil && l < level {
			err = buildLevelRefusal(req.To, dataLevelName, l, "the data groups' logs", level)
		}
		return q, meta.Command{Kind: meta.MoveReplica, From: p.Version, Move: &meta.Move{Group: id, From: req.From, To: req.To}}, err
	})
}

// handleGroupLeader is POST /v1/groups/{id}/leader: an operator's choice of a group's
// leader, recorded as a pin.
func (n *Node) handleGroupLeader(w http.ResponseWriter, r *http.Request) {
	var req api.LeaderRequest
	body, err := readRequest(w, r, &req)
	var id uint64
	if err == nil {
		id, err = pathGroupID(r)
	}
	if err == nil && req.Node == "" {
		err = api.Errorf(api.InvalidArgument, "node is required")
	}
	if err != nil {
		n.writeError(w, err)
		return
	}
	n.changePlacement(w, r, body, func(p *api.Placement, live []string, _ map[string]api.Node) (*api.Placement, meta.Command, error) {
		q, err := placement.PinLeader(p, id, req.Node)
		if err == nil {
			err = placement.CheckLive(q, live, id, req.Node)
		}
		return q, meta.Command{Kind: meta.PinLeader, From: p.Version, Lead: &meta.Lead{Group: id, Node: req.Node}}, err
	})
}

// handlePlacementBalance is POST /v1/placement/balance: clear every pin, so that the
// controller balances every group again at once; a dry run only forecasts.
func (n *Node) handlePlacementBalance(w http.ResponseWriter, r *http.Request) {
	var req api.BalanceRequest
	body, err := readRequest(w, r, &req)
	if err != nil {
		n.writeError(w, err)
		return
	}
	n.changePlacement(w, r, body, func(p *api.Placement, _ []string, _ map[string]api.Node) (*api.Placement, meta.Command, error) {
		q := placement.Unpin(p)
		if req.DryRun {
			q.Version = p.Version // forecast from it, propose nothing
		}
		return q, meta.Command{Kind: meta.Unpin, From: p.Version}, nil
	})
}

// pathGroupID is the {id} of a /v1/groups/{id}/... route.
func pathGroupID(r *http.Request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, api.Errorf(api.InvalidArgument, "group id must be a number, got %q", r.PathValue("id"))
	}
	return id, nil
}

// placementCheck is one operator change: from the placement and the live nodes (and
// their reports, probeNodes), the placement it makes (at p's version when it changes
// nothing) and the command that records it, or the rule it breaks.
type placementCheck func(p *api.Placement, live []string, reports map[string]api.Node) (*api.Placement, meta.Command, error)

// changePlacement runs an operator's change on the meta group's leader, forwarding from
// any other node: it checks the change against the placement as it is and the nodes that
// answer, proposes the command that records it, guarded by the version it checked, and
// answers the new version and the steps the controller should now take. A command made
// stale by another change (the controller's step, another operator's) is checked again
// against the newer placement, so operators racing are ordered, each judged by what the
// other did.
func (n *Node) changePlacement(w http.ResponseWriter, r *http.Request, body []byte, check placementCheck) {
	g := n.metaGroup
	if g == nil {
		n.writeError(w, api.Errorf(api.FailedPrecondition, "this cluster has one raft group and no placement to change: its leader moves with stockctl cluster transfer, its replicas with cluster join and leave"))
		return
	}
	if g.failed() != nil {
		n.writeError(w, api.Errorf(api.Internal, "this node's replica of the meta group has stopped: %v", g.failed()))
		return
	}
	if g.raft.State() != raft.Leader {
		n.forward(w, r, g, body)
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	out, err := n.recordPlacementChange(ctx, check)
	if err != nil {
		n.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) recordPlacementChange(ctx context.Context, check placementCheck) (api.PlacementChange, error) {
	g := n.metaGroup
	for range 8 {
		p := g.meta.Placement()
		if p.Version == 0 {
			return api.PlacementChange{}, api.Errorf(api.NoLeader, "the placement is not bootstrapped yet")
		}
		reports := n.probeNodes(ctx, &p)
		live := liveOf(&p, reports)
		q, cmd, err := check(&p, live, reports)
		if err != nil {
			return api.PlacementChange{}, err
		}
		if q.Version != p.Version {
			res, err := g.proposeMeta(ctx, cmd)
			switch {
			case err != nil:
				return api.PlacementChange{}, err
			case errors.Is(res.Err, placement.ErrStale):
				continue
			case res.Err != nil:
				// Checked against the same version it applied to: only a bug gets here.
				return api.PlacementChange{}, res.Err
			}
			n.log.Info("placement changed by an operator", "kind", cmd.Kind, "version", res.Version)
		}
		steps, err := placement.Forecast(q, live, forecastRounds)
		if err != nil {
			return api.PlacementChange{}, err
		}
		out := api.PlacementChange{PlacementVersion: q.Version, Steps: make([]api.PlannedStep, len(steps))}
		for i, s := range steps {
			out.Steps[i] = api.PlannedStep{Group: s.Group, Kind: string(s.Kind), Node: s.Node}
		}
		return out, nil
	}
	return api.PlacementChange{}, api.Errorf(api.FailedPrecondition, "the placement kept changing while recording the change; ask again")
}
