package node

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/testcluster"
)

// newMultiGroup starts a one-node cluster bootstrapped with groups data groups and waits
// until its placement is applied.
func newMultiGroup(t *testing.T, groups int) *testCluster {
	t.Helper()
	c := newCluster(t, 1, func(cfg *Config) { cfg.Groups = groups })
	waitPlacement(t, c.Node(0))
	return c
}

func waitPlacement(t *testing.T, n *Node) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if p := n.placement.Load(); p == nil || p.Version == 0 {
			return errors.New("no placement yet")
		}
		return nil
	})
}

// skusByGroup names n SKUs and sorts them by the group the placement puts them in.
func skusByGroup(t *testing.T, n *Node, count int) (all []string, by map[uint64][]string) {
	t.Helper()
	by = map[uint64][]string{}
	for i := range count {
		sku := fmt.Sprintf("sku-%03d", i)
		pg := n.placement.Load().GroupOf(sku)
		if pg == nil {
			t.Fatalf("no group owns %s", sku)
		}
		all = append(all, sku)
		by[pg.ID] = append(by[pg.ID], sku)
	}
	return all, by
}

// A one-node cluster with --groups 4: SKUs land in the group owning their slot, each held
// by that group's fsm alone; reads, exactly-once deductions, single-group orders, batches
// and merged lists work across groups; an order spanning groups is refused with
// cross_group; and all of it survives a restart from the same data dir.
func TestMultiGroup_RoutesBySlot(t *testing.T) {
	c := newMultiGroup(t, 4)
	n := c.Node(0)
	if got := len(n.dataGroups()); got != 4 || n.metaGroup == nil {
		t.Fatalf("%d data groups and meta %v, want 4 and a meta group", got, n.metaGroup != nil)
	}
	all, by := skusByGroup(t, n, 64)
	if len(by) < 2 {
		t.Fatalf("64 SKUs all in one group: %v", by)
	}
	for _, sku := range all {
		c.mustCall(n.HTTPAddr(), "PUT", "/v1/skus/"+sku, map[string]any{"stock": 10}, nil)
	}
	// Each SKU is in its own group's state, and in no other group's.
	for _, g := range n.dataGroups() {
		for id, skus := range by {
			for _, sku := range skus {
				_, err := g.fsm.GetSKU(sku)
				if (err == nil) != (id == g.id) {
					t.Fatalf("SKU %s (group %d) in group %d's state: %v", sku, id, g.id, err)
				}
			}
		}
	}
	for _, sku := range all {
		var s api.SKU
		c.mustCall(n.HTTPAddr(), "GET", "/v1/skus/"+sku, nil, &s)
		if s.SKU != sku || s.Available != 10 {
			t.Fatalf("read back %s: %+v", sku, s)
		}
	}

	// Exactly once per group: a retried request id answers the first answer.
	var groupIDs []uint64
	for id := range by {
		groupIDs = append(groupIDs, id)
	}
	slices.Sort(groupIDs)
	for _, id := range groupIDs {
		sku := by[id][0]
		var first, again api.DeductResponse
		c.mustCall(n.HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 2, RequestID: "once-" + sku, UserID: "u"}, &first)
		c.mustCall(n.HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 2, RequestID: "once-" + sku, UserID: "u"}, &again)
		if first.Remaining != 8 || again.Remaining != 8 || !again.Duplicate {
			t.Fatalf("group %d, %s: first %+v, retry %+v", id, sku, first, again)
		}
	}

	// A batch across groups: each item answered in its place by its own group.
	a, b := by[groupIDs[0]][1], by[groupIDs[1]][1]
	var batch api.BatchDeductResponse
	c.mustCall(n.HTTPAddr(), "POST", "/v1/batch/deduct", api.BatchDeductRequest{Items: []api.DeductItem{
		{SKU: a, Qty: 1, RequestID: "b1", UserID: "u"},
		{SKU: b, Qty: 3, RequestID: "b2", UserID: "u"},
		{SKU: a, Qty: 11, RequestID: "b3", UserID: "u"},
	}}, &batch)
	if len(batch.Results) != 3 || batch.Results[0].Error != nil || batch.Results[0].Remaining != 9 ||
		batch.Results[1].Error != nil || batch.Results[1].Remaining != 7 ||
		batch.Results[2].Error == nil || batch.Results[2].Error.Code != api.InsufficientStock {
		t.Fatalf("batch across groups: %+v", batch.Results)
	}

	// Orders: lines in two groups are refused, lines in one group reserve.
	_, err := c.call(n.HTTPAddr(), "POST", "/v1/orders", api.ReserveRequest{OrderID: "o-cross", UserID: "u", TTLMillis: 60000, RequestID: "r-cross",
		Lines: []api.Line{{SKU: a, Qty: 1}, {SKU: b, Qty: 1}}}, nil)
	if !errors.Is(err, &api.Error{Code: api.CrossGroup}) {
		t.Fatalf("order across groups: %v, want cross_group", err)
	}
	same := by[groupIDs[0]]
	var o api.Order
	c.mustCall(n.HTTPAddr(), "POST", "/v1/orders", api.ReserveRequest{OrderID: "o-one", UserID: "u", TTLMillis: 60000, RequestID: "r-one",
		Lines: []api.Line{{SKU: same[2], Qty: 1}, {SKU: same[3], Qty: 1}}}, &o)
	c.mustCall(n.HTTPAddr(), "POST", "/v1/orders/o-one/confirm", api.OrderActionRequest{RequestID: "c-one"}, &o)
	if o.Status != "confirmed" {
		t.Fatalf("order in one group: %+v", o)
	}
	c.mustCall(n.HTTPAddr(), "GET", "/v1/orders/o-one", nil, &o)

	checkList := func() {
		t.Helper()
		var got []string
		after := ""
		for range 20 {
			var page api.SKUList
			c.mustCall(n.HTTPAddr(), "GET", "/v1/skus?limit=10&after="+url.QueryEscape(after), nil, &page)
			if len(page.SKUs) == 0 {
				break
			}
			for _, s := range page.SKUs {
				got = append(got, s.SKU)
			}
			after = got[len(got)-1]
		}
		if !slices.Equal(got, all) {
			t.Fatalf("paged list across groups:\n got %v\nwant %v", got, all)
		}
	}
	checkList()

	// A restart from the same data dir reopens every group and the placement.
	n.Kill()
	n = c.Restart(0)
	waitPlacement(t, n)
	if got := len(n.dataGroups()); got != 4 {
		t.Fatalf("%d data groups after restart, want 4", got)
	}
	c.WaitLeader()
	for _, sku := range all {
		var s api.SKU
		eventually(t, 10*time.Second, func() error { _, err := c.call(n.HTTPAddr(), "GET", "/v1/skus/"+sku, nil, &s); return err })
	}
	var again api.DeductResponse
	sku := by[groupIDs[1]][0]
	c.mustCall(n.HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 2, RequestID: "once-" + sku, UserID: "u"}, &again)
	if again.Remaining != 8 || !again.Duplicate {
		t.Fatalf("retry after restart: %+v", again)
	}
	checkList()
}

// A data dir's number of groups is fixed at bootstrap: a restart with another --groups
// is refused, naming the field, and so is a multi-group bootstrap started on a
// single-group dir.
func TestMultiGroup_GroupsMustMatchTheDataDir(t *testing.T) {
	c := newMultiGroup(t, 4)
	c.Node(0).Kill()
	for _, groups := range []int{2, 1} {
		cfg := *c.Config(0)
		cfg.Groups = groups
		_, err := New(cfg)
		ces := ConfigErrors(err)
		if len(ces) != 1 || ces[0].Field != "Groups" {
			t.Fatalf("restart of a 4-group data dir with Groups %d: %v", groups, err)
		}
	}

	one := newCluster(t, 1, nil)
	one.Node(0).Kill()
	cfg := *one.Config(0)
	cfg.Groups = 3
	if _, err := New(cfg); len(ConfigErrors(err)) != 1 {
		t.Fatalf("a single-group data dir started with Groups 3: %v", err)
	}
}

// A multi-group cluster grows from one node to three: n2 and n3 join through n1, the
// controller on the meta group's leader adds each to the meta group and moves replicas
// onto them by raft's own membership changes, until every group has three voters, one on
// each node, and the data groups' leaderships are spread by the placement's balance rule.
// SKUs written before and after read back alike through every node, a request id retried
// after the moves answers duplicate, and a data group whose leader is killed elects
// another and serves.
func TestMultiGroup_GrowsFromOneToThreeNodes(t *testing.T) {
	testcluster.SkipShort(t)
	c := newMultiGroup(t, 3)
	n1 := c.Node(0)
	_, by := skusByGroup(t, n1, 48)
	var before, after []string
	for id := uint64(1); id <= 3; id++ {
		if len(by[id]) < 2 {
			t.Fatalf("group %d owns %d of 48 SKUs", id, len(by[id]))
		}
		before, after = append(before, by[id][0]), append(after, by[id][1])
	}
	for _, sku := range before {
		c.mustCall(n1.HTTPAddr(), "PUT", "/v1/skus/"+sku, map[string]any{"stock": 10}, nil)
		c.mustCall(n1.HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 1, RequestID: "pre-" + sku, UserID: "u"}, nil)
	}

	for _, id := range []string{"n2", "n3"} {
		cfg := c.NewConfig(id)
		cfg.Join = []string{n1.HTTPAddr()}
		c.Add(cfg)
	}
	ids := []string{"n1", "n2", "n3"}
	eventually(t, 90*time.Second, func() error {
		p := n1.placement.Load()
		if p == nil {
			return errors.New("no placement")
		}
		preferred := map[string]int{}
		for _, pg := range p.Groups {
			var voters []string
			for _, r := range pg.Replicas {
				if r.Role == api.Voter {
					voters = append(voters, r.Node)
				}
			}
			slices.Sort(voters)
			if !slices.Equal(voters, ids) || len(pg.Replicas) != 3 {
				return fmt.Errorf("version %d, group %d: replicas %+v", p.Version, pg.ID, pg.Replicas)
			}
			preferred[pg.PreferredLeader]++
		}
		for _, n := range c.Nodes() {
			if q := n.placement.Load(); q == nil || q.Version != p.Version {
				return fmt.Errorf("%s has not applied placement version %d", n.ID(), p.Version)
			}
			for _, pg := range p.Groups {
				g := n.group(pg.ID)
				if g == nil {
					return fmt.Errorf("%s hosts no replica of group %d", n.ID(), pg.ID)
				}
				voters := g.voters()
				if voters != 3 {
					return fmt.Errorf("%s: group %d's raft has %d voters", n.ID(), pg.ID, voters)
				}
				if _, leader := g.raft.LeaderWithID(); string(leader) != pg.PreferredLeader {
					return fmt.Errorf("%s: group %d led by %q, preferred %q", n.ID(), pg.ID, leader, pg.PreferredLeader)
				}
			}
		}
		// The balance rule: preferred leaderships (the meta group's counted) within one of
		// each other over the nodes.
		lo, hi := 3, 0
		for _, id := range ids {
			lo, hi = min(lo, preferred[id]), max(hi, preferred[id])
		}
		if hi-lo > 1 {
			return fmt.Errorf("preferred leaders %v", preferred)
		}
		return nil
	})

	for _, sku := range after {
		c.mustCall(c.Node(2).HTTPAddr(), "PUT", "/v1/skus/"+sku, map[string]any{"stock": 10, "request_id": "create-" + sku}, nil)
	}
	for _, n := range c.Nodes() {
		for _, sku := range append(slices.Clone(before), after...) {
			want := int64(10)
			if slices.Contains(before, sku) {
				want = 9
			}
			var s api.SKU
			c.mustCall(n.HTTPAddr(), "GET", "/v1/skus/"+sku, nil, &s)
			if s.Available != want {
				t.Fatalf("%s reads %s: %+v, want %d available", n.ID(), sku, s, want)
			}
		}
	}
	// A strong list merges every group's page, each read where that group is led: the
	// leaders are spread now, so no node could answer it from its own groups alone.
	all := slices.Sorted(slices.Values(append(slices.Clone(before), after...)))
	names := func(l api.SKUList) []string {
		out := make([]string, len(l.SKUs))
		for i, s := range l.SKUs {
			out[i] = s.SKU
		}
		return out
	}
	for _, n := range c.Nodes() {
		var l api.SKUList
		c.mustCall(n.HTTPAddr(), "GET", "/v1/skus", nil, &l)
		if got := names(l); !slices.Equal(got, all) {
			t.Fatalf("%s lists %v, want %v", n.ID(), got, all)
		}
		c.mustCall(n.HTTPAddr(), "GET", "/v1/skus?limit=2&after="+url.QueryEscape(all[1]), nil, &l)
		if got := names(l); !slices.Equal(got, all[2:4]) {
			t.Fatalf("%s lists a page after %s: %v, want %v", n.ID(), all[1], got, all[2:4])
		}
		c.mustCall(n.HTTPAddr(), "GET", "/v1/skus?group=2", nil, &l)
		if got, want := names(l), slices.Sorted(slices.Values([]string{before[1], after[1]})); !slices.Equal(got, want) {
			t.Fatalf("%s lists group 2: %v, want %v", n.ID(), got, want)
		}
	}
	var e *api.Error
	for q, code := range map[string]api.Code{"group=x": api.InvalidArgument, "group=9": api.NotFound, "consistency=maybe": api.InvalidArgument} {
		if _, err := c.call(n1.HTTPAddr(), "GET", "/v1/skus?"+q, nil, nil); !errors.As(err, &e) || e.Code != code {
			t.Errorf("GET /v1/skus?%s: %v, want %s", q, err, code)
		}
	}

	// An order is found wherever it is asked for, even at a node whose replica of the
	// order's group has not applied the reserve yet: group 2's leader stops sending to one
	// follower, the reserve commits without it, and that follower confirms the order.
	leaderOf := func(id uint64) (int, *Node) {
		for i, n := range c.Nodes() {
			if n.group(id).raft.State() == raft.Leader {
				return i, n
			}
		}
		t.Fatalf("group %d has no leader", id)
		return 0, nil
	}
	li, l2 := leaderOf(2)
	behind := c.Node((li + 1) % 3)
	c.Faults(li).Group(2).Block(behind.RaftAddr())
	c.mustCall(l2.HTTPAddr(), "POST", "/v1/orders", api.ReserveRequest{OrderID: "o-behind", UserID: "u", RequestID: "r-behind",
		Lines: []api.Line{{SKU: after[1], Qty: 1}}, TTLMillis: 60_000}, nil)
	if _, err := behind.group(2).fsm.GetOrder("o-behind", 0); err == nil {
		t.Fatalf("%s's replica of group 2 has the order: the test needs it behind", behind.ID())
	}
	var o api.Order
	c.mustCall(behind.HTTPAddr(), "POST", "/v1/orders/o-behind/confirm", api.OrderActionRequest{RequestID: "c-behind"}, &o)
	if o.Status != "confirmed" {
		t.Fatalf("confirm through %s: %+v", behind.ID(), o)
	}
	c.mustCall(behind.HTTPAddr(), "GET", "/v1/orders/o-behind", nil, &o)
	if o.Status != "confirmed" {
		t.Fatalf("read through %s: %+v", behind.ID(), o)
	}
	if _, err := c.call(behind.HTTPAddr(), "GET", "/v1/orders/o-nowhere", nil, nil); !errors.As(err, &e) || e.Code != api.NotFound {
		t.Fatalf("an order no group holds: %v, want not_found", err)
	}
	c.Faults(li).Heal()

	for _, sku := range before {
		var again api.DeductResponse
		c.mustCall(c.Node(1).HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 1, RequestID: "pre-" + sku, UserID: "u"}, &again)
		if !again.Duplicate || again.Remaining != 9 {
			t.Fatalf("retry of pre-%s after the moves: %+v, want duplicate with 9 remaining", sku, again)
		}
	}

	// A joined node reopens the groups it hosts from its data dir: the same command line
	// (--join, no --groups) restarts it.
	c.Node(2).Kill()
	n3 := c.Restart(2)
	eventually(t, 30*time.Second, func() error {
		for id := uint64(0); id <= 3; id++ {
			if g := n3.group(id); g == nil || !g.hadState {
				return fmt.Errorf("restarted n3 does not host group %d from its files", id)
			}
		}
		var s api.SKU
		if _, err := c.call(n3.HTTPAddr(), "GET", "/v1/skus/"+after[2], nil, &s); err != nil || s.Available != 10 {
			return fmt.Errorf("restarted n3 reads %s: %+v, %v", after[2], s, err)
		}
		return nil
	})

	// Group 1 is a real raft group of three: its leader's death elects another.
	var dead *Node
	eventually(t, 10*time.Second, func() error {
		for _, n := range c.Nodes() {
			if n.group(1).raft.State() == raft.Leader {
				dead = n
				return nil
			}
		}
		return errors.New("group 1 has no leader")
	})
	dead.Kill()
	sku := before[0] // group 1's
	var alive *Node
	for _, n := range c.Nodes() {
		if n != dead {
			alive = n
		}
	}
	eventually(t, 30*time.Second, func() error {
		_, err := c.call(alive.HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 1, RequestID: "post-kill", UserID: "u"}, nil)
		return err
	})
	var s api.SKU
	c.mustCall(alive.HTTPAddr(), "GET", "/v1/skus/"+sku, nil, &s)
	if s.Available != 8 {
		t.Fatalf("after group 1's leader died: %+v, want 8 available", s)
	}
}

// /v1/cluster lists the groups: the placement's with their leaders in a multi-group
// cluster, and group 1 alone, with the raft configuration as replicas, in a single-group
// one.
func TestMultiGroup_ClusterShowsGroups(t *testing.T) {
	c := newMultiGroup(t, 3)
	n := c.Node(0)
	var view api.Cluster
	eventually(t, 10*time.Second, func() error {
		c.mustCall(n.HTTPAddr(), "GET", "/v1/cluster", nil, &view)
		if view.PlacementVersion == 0 || len(view.Groups) != 4 {
			return fmt.Errorf("placement version %d, %d groups", view.PlacementVersion, len(view.Groups))
		}
		for i, g := range view.Groups {
			wantKind := api.GroupData
			if i == 0 {
				wantKind = api.GroupMeta
			}
			if g.ID != uint64(i) || g.Kind != wantKind || g.Leader != "n1" || len(g.Replicas) != 1 || g.Replicas[0].Node != "n1" {
				return fmt.Errorf("group %d: %+v", i, g)
			}
		}
		return nil
	})

	one := newCluster(t, 1, nil)
	one.mustCall(one.Node(0).HTTPAddr(), "GET", "/v1/cluster", nil, &view)
	if view.PlacementVersion != 0 || len(view.Groups) != 1 {
		t.Fatalf("single-group cluster's groups: %+v", view.Groups)
	}
	g := view.Groups[0]
	if g.ID != 1 || g.Kind != api.GroupData || g.Leader != "n1" || len(g.Replicas) != 1 || g.Replicas[0] != (api.Replica{Node: "n1", Role: api.Voter}) ||
		len(g.Slots) != 1 || g.Slots[0] != (api.SlotRange{From: 0, To: api.SlotCount}) {
		t.Fatalf("single-group cluster's group: %+v", g)
	}
}

// The controller's membership route checks what it is asked before touching raft: an
// unknown op, a node the placement does not list and a group this node does not host are
// refused with their codes, and an op already in effect (n1 leads group 1) answers ok.
func TestMultiGroup_MembershipRouteRefusesWhatItCannotDo(t *testing.T) {
	c := newMultiGroup(t, 2)
	n := c.Node(0)
	for _, tc := range []struct {
		path string
		req  api.MembershipRequest
		want api.Code
	}{
		{"/v1/groups/1/membership", api.MembershipRequest{Op: "split", Node: "n1"}, api.InvalidArgument},
		{"/v1/groups/1/membership", api.MembershipRequest{Op: "add_nonvoter", Node: "n9"}, api.NotFound},
		{"/v1/groups/7/membership", api.MembershipRequest{Op: "add_nonvoter", Node: "n1"}, api.NotFound},
		{"/v1/groups/x/membership", api.MembershipRequest{Op: "add_nonvoter", Node: "n1"}, api.InvalidArgument},
		{"/v1/groups/1/membership", api.MembershipRequest{Op: "promote", Node: "n1"}, ""},
		{"/v1/groups/0/membership", api.MembershipRequest{Op: "transfer_leader", Node: "n1"}, ""},
	} {
		_, err := c.call(n.HTTPAddr(), "POST", tc.path, tc.req, nil)
		if tc.want == "" && err != nil || tc.want != "" && !errors.Is(err, &api.Error{Code: tc.want}) {
			t.Errorf("%s %+v: %v, want %q", tc.path, tc.req, err, tc.want)
		}
	}
}

// GET /v1/debug/state?group=N reports data group N's own state: a write to one group
// changes that group's index and hash and no other's, so a checker can compare replicas
// group by group. A group the node does not host, the meta group (no inventory state) and
// a malformed id are refused.
func TestMultiGroup_DebugStatePerGroup(t *testing.T) {
	// No expiry ticks: a write of the groups' own would change their state between reads.
	c := newCluster(t, 1, func(cfg *Config) { cfg.Groups, cfg.ExpireInterval = 3, time.Hour })
	waitPlacement(t, c.Node(0))
	n := c.Node(0)
	_, by := skusByGroup(t, n, 24)
	state := func(group uint64) api.DebugState {
		t.Helper()
		var st api.DebugState
		c.mustCall(n.HTTPAddr(), "GET", fmt.Sprintf("/v1/debug/state?group=%d", group), nil, &st)
		if st.Group != group || st.Invariants != "ok" || len(st.StateHash) != 64 {
			t.Fatalf("group %d: %+v", group, st)
		}
		return st
	}
	// Each group writes a few entries of its own as it starts (its first term's no-op, its
	// cluster clock): the states are compared once they stand still.
	before := map[uint64]api.DebugState{}
	eventually(t, 10*time.Second, func() error {
		for id := uint64(1); id <= 3; id++ {
			st := state(id)
			if st != before[id] {
				before[id] = st
				return fmt.Errorf("group %d still moving: %+v", id, st)
			}
		}
		return nil
	})
	sku := by[2][0]
	c.mustCall(n.HTTPAddr(), "PUT", "/v1/skus/"+sku, map[string]any{"stock": 5}, nil)
	c.mustCall(n.HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 1, RequestID: "d", UserID: "u"}, nil)
	for id := uint64(1); id <= 3; id++ {
		after := state(id)
		changed := after.AppliedIndex != before[id].AppliedIndex || after.StateHash != before[id].StateHash
		if changed != (id == 2) {
			t.Errorf("group %d: before %+v, after %+v; only group 2 was written", id, before[id], after)
		}
	}
	var plain api.DebugState
	c.mustCall(n.HTTPAddr(), "GET", "/v1/debug/state", nil, &plain)
	if g1 := state(1); plain.StateHash != g1.StateHash || plain.Group != 1 {
		t.Errorf("without ?group: %+v, want group 1's %+v", plain, g1)
	}
	for q, want := range map[string]api.Code{"7": api.NotFound, "0": api.InvalidArgument, "x": api.InvalidArgument} {
		_, err := c.call(n.HTTPAddr(), "GET", "/v1/debug/state?group="+q, nil, nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != want {
			t.Errorf("?group=%s: %v, want %s", q, err, want)
		}
	}
}

// placedGroups is the data groups p gives node id, by id.
func placedGroups(p *api.Placement, id string) []uint64 {
	var out []uint64
	for _, pg := range p.Groups {
		if pg.Kind == api.GroupData && slices.ContainsFunc(pg.Replicas, func(r api.Replica) bool { return r.Node == id }) {
			out = append(out, pg.ID)
		}
	}
	return out
}

// hostedIDs is the data groups n runs a replica of, by id.
func hostedIDs(n *Node) []uint64 {
	var out []uint64
	for _, g := range n.dataGroups() {
		out = append(out, g.id)
	}
	return out
}

// settled checks that every running node has applied the newest placement, that every
// data group in it has three voters on the nodes ids, and that each node hosts exactly
// the data groups it places there, each of whose raft configuration has three voters.
func settled(c *testCluster, ids []string) error {
	running := c.Running()
	p := running[0].placement.Load()
	if p == nil {
		return errors.New("no placement")
	}
	for _, pg := range p.Groups {
		var voters []string
		for _, r := range pg.Replicas {
			if r.Role == api.Voter {
				voters = append(voters, r.Node)
			}
		}
		if pg.Kind == api.GroupData && (len(voters) != 3 || len(pg.Replicas) != 3) {
			return fmt.Errorf("version %d, group %d: replicas %+v", p.Version, pg.ID, pg.Replicas)
		}
		for _, v := range voters {
			if !slices.Contains(ids, v) {
				return fmt.Errorf("group %d has voter %s, not one of %v", pg.ID, v, ids)
			}
		}
	}
	for _, n := range running {
		if q := n.placement.Load(); q == nil || q.Version != p.Version {
			return fmt.Errorf("%s has not applied placement version %d", n.ID(), p.Version)
		}
		if got, want := hostedIDs(n), placedGroups(p, n.ID()); !slices.Equal(got, want) {
			return fmt.Errorf("%s hosts groups %v, placed %v", n.ID(), got, want)
		}
		for _, g := range n.dataGroups() {
			if v := g.voters(); v != 3 {
				return fmt.Errorf("%s: group %d's raft has %d voters", n.ID(), g.id, v)
			}
		}
	}
	return nil
}

// A node hosts what the placement says. A --groups 6 cluster grows to five nodes: every
// group has three voters, each node runs exactly the data groups placed on it (group 1
// included: it is not on every node), answers /readyz and serves every SKU, reads and
// deductions alike, forwarding to the leaders of groups it does not host. Then n1, the
// bootstrapper, is drained under a little load: its replicas move off, it leaves the meta
// group, is removed from the placement and stops; every group still has three voters on
// the other four, every acknowledged deduction counted once, and n1's group files are
// gone. A restarted node reopens exactly the groups it hosts.
func TestMultiGroup_FiveNodesHostWhatIsPlacedAndDrainOne(t *testing.T) {
	testcluster.SkipShort(t)
	// 35 replicas of 7 groups on a shared machine: the test's fast timings would hold
	// elections all along, so these are slower.
	calm := func(cfg *Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
		cfg.ExpireInterval = time.Second
	}
	c := newCluster(t, 1, func(cfg *Config) { calm(cfg); cfg.Groups = 6 })
	n1 := c.Node(0)
	waitPlacement(t, n1)
	ids := []string{"n1", "n2", "n3", "n4", "n5"}
	for _, id := range ids[1:] {
		cfg := c.NewConfig(id)
		calm(&cfg)
		cfg.Join = []string{n1.HTTPAddr()}
		c.Add(cfg)
	}
	eventually(t, 3*time.Minute, func() error { return settled(c, ids) })
	p := n1.placement.Load()
	for _, id := range ids {
		if len(placedGroups(p, id)) == 6 {
			t.Fatalf("%s is placed in every group: %+v", id, p.Groups)
		}
	}

	_, by := skusByGroup(t, n1, 96)
	var skus []string // one per group
	for id := uint64(1); id <= 6; id++ {
		skus = append(skus, by[id][0])
		c.mustCall(n1.HTTPAddr(), "PUT", "/v1/skus/"+by[id][0], map[string]any{"stock": 1000, "request_id": "create-" + by[id][0]}, nil)
	}
	sold := map[string]int64{}
	for _, n := range c.Nodes() {
		eventually(t, 10*time.Second, func() error {
			_, err := c.call(n.HTTPAddr(), "GET", "/readyz", nil, nil)
			return err
		})
		for _, sku := range skus {
			var s api.SKU
			c.mustCall(n.HTTPAddr(), "GET", "/v1/skus/"+sku, nil, &s)
			c.mustCall(n.HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 1, RequestID: "via-" + n.ID() + "-" + sku, UserID: "u"}, nil)
			sold[sku]++
		}
	}

	// The process's views are the placement's and the meta group's, and an answer about
	// a SKU names the SKU's group and its leader, from any node.
	eventually(t, 10*time.Second, func() error {
		var view api.Cluster
		c.mustCall(c.Node(4).HTTPAddr(), "GET", "/v1/cluster", nil, &view)
		_, meta := n1.metaGroup.raft.LeaderWithID()
		if view.Leader != string(meta) || len(view.Nodes) != 5 {
			return fmt.Errorf("view: leader %q (meta %q), %d nodes", view.Leader, meta, len(view.Nodes))
		}
		for _, vn := range view.Nodes {
			if vn.State != api.NodeActive || vn.Role == api.RoleUnknown || vn.Suffrage == "" {
				return fmt.Errorf("view's node %+v", vn)
			}
		}
		for id, sku := range skus {
			gid := uint64(id + 1)
			resp, err := http.Get("http://" + c.Node(4).HTTPAddr() + "/v1/skus/" + sku)
			if err != nil {
				return err
			}
			resp.Body.Close()
			var leader string
			for _, n := range c.Nodes() {
				if g := n.group(gid); g != nil && g.raft.State() == raft.Leader {
					leader = n.HTTPAddr()
				}
			}
			if got := resp.Header.Get(api.HeaderGroup); resp.StatusCode != 200 || got != strconv.FormatUint(gid, 10) || resp.Header.Get(api.HeaderLeader) != leader {
				return fmt.Errorf("GET %s via n5: %d, group %q leader %q; want group %d led by %s", sku, resp.StatusCode, got, resp.Header.Get(api.HeaderLeader), gid, leader)
			}
		}
		return nil
	})

	// Every node lists every group's SKUs, strong and stale, and finds an order of any
	// group, though it hosts only some of them: it asks the others where they are led.
	listed := slices.Sorted(slices.Values(skus))
	for _, n := range c.Nodes() {
		for _, q := range []string{"", "?consistency=stale"} {
			eventually(t, 10*time.Second, func() error {
				var l api.SKUList
				if _, err := c.call(n.HTTPAddr(), "GET", "/v1/skus"+q, nil, &l); err != nil {
					return err
				}
				got := make([]string, len(l.SKUs))
				for i, s := range l.SKUs {
					got[i] = s.SKU
				}
				if !slices.Equal(got, listed) {
					return fmt.Errorf("%s lists%s %v, want %v", n.ID(), q, got, listed)
				}
				return nil
			})
		}
	}
	for gid := uint64(1); gid <= 6; gid++ {
		var away *Node // a node with no replica of the group
		for _, n := range c.Nodes() {
			if n.group(gid) == nil {
				away = n
			}
		}
		if away == nil {
			t.Fatalf("every node hosts group %d", gid)
		}
		oid := fmt.Sprintf("o-away-%d", gid)
		c.mustCall(c.Node(0).HTTPAddr(), "POST", "/v1/orders", api.ReserveRequest{OrderID: oid, UserID: "u", RequestID: "r-" + oid,
			Lines: []api.Line{{SKU: skus[gid-1], Qty: 1}}, TTLMillis: 60_000}, nil)
		var o api.Order
		c.mustCall(away.HTTPAddr(), "GET", "/v1/orders/"+oid, nil, &o)
		c.mustCall(away.HTTPAddr(), "POST", "/v1/orders/"+oid+"/confirm", api.OrderActionRequest{RequestID: "c-" + oid}, &o)
		if o.Status != "confirmed" {
			t.Fatalf("order of group %d through %s, which hosts none of it: %+v", gid, away.ID(), o)
		}
		sold[skus[gid-1]]++
	}

	// A little load through the nodes that stay, each deduction retried with its request
	// id until it is answered.
	stop := make(chan struct{})
	loadDone := make(chan error, 1)
	go func() {
		var err error
		defer func() { loadDone <- err }()
		for i := 0; i < 400; i++ {
			select {
			case <-stop:
				return
			default:
			}
			sku, via := skus[i%len(skus)], c.Node(1+i%4)
			req := api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("load-%d", i), UserID: "u"}
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, cerr := c.call(via.HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", req, nil)
				if cerr == nil {
					sold[sku]++
					break
				}
				if time.Now().After(deadline) {
					err = fmt.Errorf("load-%d via %s: %w", i, via.ID(), cerr)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	t.Logf("settled and served; draining n1")
	var drain map[string]string
	eventually(t, 10*time.Second, func() error { // a retry of a drain is a drain
		code, err := c.call(c.Node(2).HTTPAddr(), "DELETE", "/v1/cluster/members/n1", nil, &drain)
		if err == nil && (code != 202 || drain["status"] != api.NodeDraining) {
			t.Fatalf("drain n1: %d %v", code, drain)
		}
		return err
	})
	select {
	case <-n1.Done():
	case <-time.After(3 * time.Minute):
		t.Fatal("n1 did not stop after its drain")
	}
	if !n1.Removed() {
		t.Fatal("n1 stopped but does not say it was removed")
	}
	t.Logf("n1 drained and stopped")
	eventually(t, time.Minute, func() error {
		if err := settled(c, ids[1:]); err != nil {
			return err
		}
		if q := c.Node(1).placement.Load(); slices.ContainsFunc(q.Nodes, func(pn api.PlacementNode) bool { return pn.ID == "n1" }) {
			return errors.New("n1 is still in the placement")
		}
		return nil
	})
	close(stop)
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}

	// Exactly once: each SKU sold what was acknowledged, and a retry answers duplicate.
	for _, sku := range skus {
		var s api.SKU
		c.mustCall(c.Node(3).HTTPAddr(), "GET", "/v1/skus/"+sku, nil, &s)
		if s.Sold != sold[sku] || s.Available != 1000-sold[sku] {
			t.Errorf("%s: %+v, want %d sold", sku, s, sold[sku])
		}
		var again api.DeductResponse
		c.mustCall(c.Node(4).HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 1, RequestID: "via-n1-" + sku, UserID: "u"}, &again)
		if !again.Duplicate {
			t.Errorf("retry of via-n1-%s after the drain: %+v, want duplicate", sku, again)
		}
	}
	dir := c.Config(0).DataDir
	for id := uint64(1); id <= 6; id++ {
		if HasState(groupDir(dir, id)) {
			t.Errorf("n1 still holds group %d's files", id)
		}
	}

	// A restart reopens exactly the groups the node hosts: once its meta replica has caught
	// up with the placement (it replays older versions first), the groups it runs are the
	// ones placed on it.
	want := placedGroups(c.Node(1).placement.Load(), "n4")
	c.Node(3).Kill()
	n4 := c.Restart(3)
	eventually(t, 30*time.Second, func() error {
		p := n4.placement.Load()
		if p == nil || p.Version < c.Node(1).placement.Load().Version {
			return errors.New("n4 has not caught up with the placement")
		}
		if got := hostedIDs(n4); !slices.Equal(got, want) || n4.metaGroup == nil {
			return fmt.Errorf("restarted n4 hosts %v (meta %v), placed %v", got, n4.metaGroup != nil, want)
		}
		return nil
	})
	for _, id := range want {
		if !n4.group(id).hadState {
			t.Errorf("restarted n4 opened group %d without its files", id)
		}
	}
}
