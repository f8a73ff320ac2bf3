package client

import (
	"context"
	"net/http"
	"strconv"

	"github.com/flashstock/flashstock/api"
)

// MoveReplica asks for data group's replica on node from to move to node to. The move is
// recorded as a pin that the cluster's placement controller carries out in single raft
// steps; the answer comes once it is recorded, with the steps the controller is
// expected to take. The move is done when ClusterStatus shows to as a voter of the group
// and from not in it. Refusals are *api.Error with code not_found, failed_precondition or
// invalid_argument, their messages naming the placement rule (already_replica,
// not_replica, node_draining, node_down, no_quorum, pinned_leader, group_moving,
// meta_group_pin). Asking again for a move already asked for succeeds.
func (c *Client) MoveReplica(ctx context.Context, group uint64, from, to string) (api.PlacementChange, error) {
	return c.changePlacement(ctx, "/v1/groups/"+strconv.FormatUint(group, 10)+"/move", api.MoveRequest{From: from, To: to})
}

// PinLeader asks for data group's leadership to be pinned to node, one of the voters
// the group is steered to. The controller makes it the group's preferred leader and
// transfers leadership to it. Refusals as for MoveReplica.
func (c *Client) PinLeader(ctx context.Context, group uint64, node string) (api.PlacementChange, error) {
	return c.changePlacement(ctx, "/v1/groups/"+strconv.FormatUint(group, 10)+"/leader", api.LeaderRequest{Node: node})
}

// Balance clears every pin (MoveReplica's and PinLeader's), so that the controller
// balances every group again now, and returns the steps it is expected to take. With
// dryRun it changes nothing and only returns them.
func (c *Client) Balance(ctx context.Context, dryRun bool) (api.PlacementChange, error) {
	return c.changePlacement(ctx, "/v1/placement/balance", api.BalanceRequest{DryRun: dryRun})
}

// changePlacement sends an operator's placement change. Every one of them is safe to
// repeat (the same wish recorded twice is recorded once), so it is retried like a read.
func (c *Client) changePlacement(ctx context.Context, path string, body any) (api.PlacementChange, error) {
	var out api.PlacementChange
	r, err := mutation(http.MethodPost, path, body, "")
	if err == nil {
		err = c.do(ctx, c.pool, r, decodeInto(&out))
	}
	return out, err
}
