package node

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
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
		g, err := n.groupFor(sku)
		if err != nil {
			t.Fatalf("groupFor(%s): %v", sku, err)
		}
		all = append(all, sku)
		by[g.id] = append(by[g.id], sku)
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

// Joining a multi-group cluster is not built yet: a join is refused with a clear error
// rather than giving the new node group 1 only.
func TestMultiGroup_JoinRefused(t *testing.T) {
	c := newMultiGroup(t, 2)
	n := c.Node(0)
	_, err := c.call(n.HTTPAddr(), "POST", "/v1/cluster/members", api.JoinRequest{ID: "n2", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}, nil)
	if !errors.Is(err, &api.Error{Code: api.FailedPrecondition}) {
		t.Fatalf("join of a multi-group cluster: %v, want failed_precondition", err)
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
