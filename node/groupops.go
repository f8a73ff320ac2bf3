package node

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/flashstock/flashstock/api"
)

// queryGroup is the group an operation on one replica names in its "group" query parameter
// (debug state, backup): group 1 when it names none, which is all a single-group cluster
// has and what these routes answered before groups existed.
func queryGroup(r *http.Request) (uint64, error) {
	v := r.URL.Query().Get("group")
	if v == "" {
		return legacyGroup, nil
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, api.Errorf(api.InvalidArgument, "group must be a group id (a number), got %q", v)
	}
	return id, nil
}

// opGroup is this node's running replica of group id, for an operation that acts on one
// group by its id (leadership transfer, backup, debug state), as groupFor is for one that
// acts on a SKU. A group the cluster does not have is not_found, naming the ones it has; a
// group this node hosts no running replica of is not_leader, naming the node the
// placement steers the group's leadership to, where the caller sends it again.
func (n *Node) opGroup(id uint64) (*Group, error) {
	if n.metaGroup == nil {
		if id != legacyGroup {
			return nil, api.Errorf(api.NotFound, "this is a single-group cluster: its only group is 1, not %d", id)
		}
		return n.cluster, nil
	}
	p := n.placement.Load()
	if p == nil {
		return nil, api.Errorf(api.NoLeader, "the placement is not loaded yet (the meta group has no leader or is replaying its log)")
	}
	i := slices.IndexFunc(p.Groups, func(g api.Group) bool { return g.ID == id })
	if i < 0 {
		return nil, api.Errorf(api.NotFound, "placement version %d has no group %d: %s", p.Version, id, groupChoices(p))
	}
	if g := n.group(id); g != nil && g.failed() == nil {
		return g, nil
	}
	pg := p.Groups[i]
	nodes := make([]string, len(pg.Replicas))
	for j, r := range pg.Replicas {
		nodes[j] = r.Node
	}
	return nil, &api.Error{Code: api.NotLeader, Leader: n.placedHTTP(pg.PreferredLeader),
		Message: fmt.Sprintf("this node hosts no running replica of group %d; its replicas are on %s", id, strings.Join(nodes, ", "))}
}

// dataOpGroup is the data group an operation on one replica's stock state names in its
// query (debug state, backup): the meta group holds the placement, no stock, and is read
// through GET /v1/cluster.
func (n *Node) dataOpGroup(r *http.Request) (*Group, error) {
	id, err := queryGroup(r)
	if err != nil {
		return nil, err
	}
	if id == api.MetaGroupID && n.metaGroup != nil {
		return nil, errMetaGroupOp
	}
	return n.opGroup(id)
}

// errMetaGroupOp refuses a stock operation on the meta group.
var errMetaGroupOp = api.Errorf(api.InvalidArgument, "group 0 is the meta group: it holds the placement (GET /v1/cluster), no stock state")

// groupChoices names the groups of p for an error that asks the caller to pick one.
func groupChoices(p *api.Placement) string {
	gs := slices.Clone(p.Groups)
	slices.SortFunc(gs, func(a, b api.Group) int { return cmp.Compare(a.ID, b.ID) })
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = strconv.FormatUint(g.ID, 10)
		if g.Kind == api.GroupMeta {
			ids[i] += " (meta)"
		}
	}
	return "its groups are " + strings.Join(ids, ", ")
}
