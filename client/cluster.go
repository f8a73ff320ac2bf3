package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/flashstock/flashstock/api"
)

// ClusterStatus returns the cluster as the leader sees it: its members with their roles,
// suffrage, applied index and time since they heard from the leader.
func (c *Client) ClusterStatus(ctx context.Context) (api.Cluster, error) {
	var out api.Cluster
	err := c.do(ctx, c.pool, &request{method: http.MethodGet, path: "/v1/cluster", route: toLeader}, decodeInto(&out))
	return out, err
}

// AddMember adds a node to the cluster (as a voter, or a nonvoter with Nonvoter). The node
// must be running with its raft address reachable; adding a member that is already there
// with the same addresses succeeds.
func (c *Client) AddMember(ctx context.Context, m api.JoinRequest) error {
	r, err := mutation(http.MethodPost, "/v1/cluster/members", m, "")
	if err == nil {
		err = c.do(ctx, c.pool, r, discard)
	}
	return err
}

// RemoveMember removes a node from the cluster. A removal that would leave fewer healthy
// voters than a majority of the remaining ones is refused with ErrFailedPrecondition, and
// so is removing the last voter.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	return c.removeMember(ctx, id, "")
}

// ForceRemoveMember removes a node even when the remaining voters look unable to form a
// majority (the leader judges health by asking each member; a member whose API is down but
// whose raft runs looks unhealthy). Forcing a removal the check was right about leaves the
// cluster unable to commit until the missing members return. The last voter is never
// removed.
func (c *Client) ForceRemoveMember(ctx context.Context, id string) error {
	return c.removeMember(ctx, id, "?force=true")
}

func (c *Client) removeMember(ctx context.Context, id, query string) error {
	r := &request{method: http.MethodDelete, path: "/v1/cluster/members/" + url.PathEscape(id) + query, route: toLeader}
	err := c.do(ctx, c.pool, r, discard)
	if r.unknown && errors.Is(err, ErrNotFound) {
		// An earlier try may have removed it before its answer was lost: the member is gone,
		// which is what was asked.
		return nil
	}
	return err
}

// TransferLeadership asks the leader to hand leadership to the member id, or to the most
// up-to-date follower when id is "". It is not retried once it may have been carried out
// (a second transfer would move leadership again). A multi-group cluster refuses it
// (ErrInvalidArgument, naming its groups): there, TransferGroupLeadership names the group.
func (c *Client) TransferLeadership(ctx context.Context, id string) error {
	return c.transfer(ctx, c.pool, api.TransferRequest{ID: id})
}

// TransferGroupLeadership is TransferLeadership of one raft group: group 0 is a
// multi-group cluster's meta group, 1..G its data groups; a single-group cluster has group
// 1 alone. The placement controller steers a multi-group cluster's leaderships back to
// their preferred leaders: the move lasts until it does.
func (c *Client) TransferGroupLeadership(ctx context.Context, group uint64, id string) error {
	return c.transfer(ctx, c.router.knownPool(group), api.TransferRequest{ID: id, Group: &group})
}

func (c *Client) transfer(ctx context.Context, p *pool, req api.TransferRequest) error {
	r, err := mutation(http.MethodPost, "/v1/cluster/leader", req, "")
	if err != nil {
		return err
	}
	r.noRepeat = true
	if err = c.do(ctx, p, r, discard); err == nil {
		// The old leader no longer leads; the health checks find the new one.
		if l := p.leader.Load(); l != nil {
			p.notLeader(l)
		}
	}
	return err
}

func discard(*http.Response, *Endpoint) error { return nil }
