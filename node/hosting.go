package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/flashstock/flashstock/api"
)

// nameGroup says in the answer's headers which group a multi-group cluster's request is
// about, and names that group's leader in place of the cluster group's: a client learns
// where the SKU's writes go, and writeError hints at the same leader. A single-group
// answer keeps its headers as they are.
func (n *Node) nameGroup(w http.ResponseWriter, id uint64, leader string) {
	if !n.stores.placed() {
		return
	}
	h := w.Header()
	h.Set(api.HeaderGroup, strconv.FormatUint(id, 10))
	if leader != "" {
		h.Set(api.HeaderLeader, leader)
	} else {
		h.Del(api.HeaderLeader)
	}
}

// answerLeader is the leader an error answer to w names: that of the group nameGroup put
// in its headers, as of now, or else (or without w) the cluster group's.
func (n *Node) answerLeader(w http.ResponseWriter) string {
	if !n.stores.placed() || w == nil {
		return n.clusterLeader()
	}
	if v := w.Header().Get(api.HeaderGroup); v != "" {
		if id, err := strconv.ParseUint(v, 10, 64); err == nil {
			if g := n.stores.store(id); g != nil {
				return g.leaderHTTP()
			}
			return w.Header().Get(api.HeaderLeader) // not hosted: the placement's, named already
		}
	}
	return n.clusterLeader()
}

// hosted finishes a route's choice of group (groupFor and its kin give g or err): it names
// the group in the answer, and reports whether the route goes on to serve it here. A
// group this node hosts no replica of is served by forwarding the request to that group's
// leader (forwardAway; a watch, which any replica serves, is relayed by relayWatch before
// it gets here). Any other error is answered.
func (n *Node) hosted(w http.ResponseWriter, r *http.Request, body []byte, g groupStore, err error) bool {
	if err == nil {
		if n.stores.placed() {
			n.nameGroup(w, g.groupID(), g.leaderHTTP())
		}
		return true
	}
	var nh *notHostedError
	if !errors.As(err, &nh) {
		n.writeError(w, err)
		return false
	}
	n.nameGroup(w, nh.id, nh.leader)
	n.forwardAway(w, r, body, nh)
	return false
}

// forwardAway sends a request for a group this node does not host to the group's preferred
// leader, which leads it unless leadership has moved; a replica that does not lead it
// answers not_leader naming the leader, and the request goes there once more. Past that
// the client gets the answer and the hint, as from forward.
func (n *Node) forwardAway(w http.ResponseWriter, r *http.Request, body []byte, nh *notHostedError) {
	if r.Header.Get(api.HeaderForwardedBy) != "" || nh.leader == "" || nh.leader == n.httpAddr {
		n.writeError(w, nh.apiError())
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	leader := nh.leader
	resp, err := n.forwardTo(ctx, r, body, leader)
	if err == nil && resp.StatusCode == api.NotLeader.HTTPStatus() {
		if hint := resp.Header.Get(api.HeaderLeader); hint != "" && hint != leader && hint != n.httpAddr {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			leader = hint
			resp, err = n.forwardTo(ctx, r, body, leader)
		}
	}
	switch {
	case err != nil && notSent(err):
		n.writeError(w, &api.Error{Code: api.NoLeader, Message: "the leader of group " + strconv.FormatUint(nh.id, 10) + " could not be reached (" + err.Error() + "); the request was not sent: retry with the same request_id", Leader: leader})
	case err != nil:
		n.writeError(w, &api.Error{Code: api.Timeout, Message: "forwarding to the leader failed (" + err.Error() + "); the outcome is unknown: retry with the same request_id", Leader: leader})
	default:
		n.nameGroup(w, nh.id, leader)
		copyAnswer(w, resp)
	}
}

// notHosted is the notHostedError of data group id when the placement has it and this
// node hosts no replica of it; nil otherwise.
func (n *Node) notHosted(id uint64) *notHostedError {
	p := n.placement.Load()
	if p == nil || n.stores.store(id) != nil {
		return nil
	}
	for _, pg := range p.Groups {
		if pg.ID == id && pg.Kind == api.GroupData {
			return &notHostedError{id: id, leader: n.placedHTTP(pg.PreferredLeader)}
		}
	}
	return nil
}

// groupHosts is the HTTP addresses of the nodes the placement puts data group id on, its
// preferred leader's first (it leads the group unless leadership has moved, so its state
// is the newest), this node's never: where a request any replica answers from its own
// state goes when this node hosts none.
func (n *Node) groupHosts(id uint64) []string {
	p := n.placement.Load()
	if p == nil {
		return nil
	}
	var out []string
	add := func(node string) {
		if a := n.placedHTTP(node); a != "" && a != n.httpAddr && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, pg := range p.Groups {
		if pg.ID == id && pg.Kind == api.GroupData {
			add(pg.PreferredLeader)
			for _, r := range pg.Replicas {
				add(r.Node)
			}
		}
	}
	return out
}

// dataGroupIDs is every data group of the cluster, by id: the placement's, hosted here or
// not; without a placement, the groups this process serves.
func (n *Node) dataGroupIDs() []uint64 {
	var ids []uint64
	if p := n.placement.Load(); p != nil && n.stores.placed() {
		for _, pg := range p.Groups {
			if pg.Kind == api.GroupData {
				ids = append(ids, pg.ID)
			}
		}
		slices.Sort(ids)
		return ids
	}
	for _, g := range n.stores.data() {
		ids = append(ids, g.groupID())
	}
	return ids
}

// askGroup sends sub, a GET about group id alone (its ?group=id set), to where the group
// is led: g's leader when this node hosts a replica g, else the group's preferred leader,
// and once more to the leader that one names if it does not lead (the request is marked
// forwarded, so it is answered there, never passed on). The 2xx answer is decoded into
// out; any other is returned as its api error. A request that was itself forwarded here
// is not sent on (one hop per request, as forward).
func (n *Node) askGroup(ctx context.Context, sub *http.Request, g groupStore, id uint64, out any) error {
	if sub.Header.Get(api.HeaderForwardedBy) != "" {
		return errNotLeader
	}
	var leader string
	switch {
	case g != nil:
		leader = g.awaitLeader(ctx, "")
	case n.notHosted(id) != nil:
		leader = n.notHosted(id).leader
	}
	for try := 0; ; try++ {
		if leader == "" || leader == n.httpAddr {
			return errNoLeader
		}
		resp, err := n.forwardTo(ctx, sub, nil, leader)
		if err != nil {
			return &api.Error{Code: api.NoLeader, Message: fmt.Sprintf("group %d's leader at %s: %v", id, leader, err), Leader: leader}
		}
		hint := resp.Header.Get(api.HeaderLeader)
		apiErr := readJSON(resp, out)
		if apiErr == nil {
			return nil
		}
		if apiErr.Leader != "" {
			hint = apiErr.Leader
		}
		if apiErr.Code != api.NotLeader || try > 0 || hint == "" || hint == leader {
			return apiErr
		}
		leader = hint
	}
}
