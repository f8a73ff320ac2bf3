package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/testcluster"
	"github.com/flashstock/flashstock/placement"
)

// A watch sent to a node that hosts no replica of the SKU's group (a client that picked
// one node: curl, a dashboard) is relayed from a replica that does. It answers as the
// replica would: the headers name the group and its leader, the current state comes at
// once and a deduction made after the watch started comes next; when the client goes
// away, the relaying handler and the replica's both end. A relayed watch is never relayed
// again. When the replica serving it stops, the relayed stream ends, as a local one does;
// with no replica of the group left, the watch answers no_leader rather than hanging.
func TestMultiGroup_WatchAtANodeWithoutTheGroupIsRelayed(t *testing.T) {
	testcluster.SkipShort(t)
	c, ids, p := newFourNodeCluster(t)
	var pg api.Group
	var away *Node
	for _, g := range p.Groups {
		if i := slices.IndexFunc(ids, func(id string) bool { return !slices.Contains(g.Voters(), id) }); g.Kind == api.GroupData && i >= 0 {
			pg, away = g, c.Node(i)
			break
		}
	}
	if away == nil {
		t.Fatalf("every node hosts every group: %+v", p.Groups)
	}
	_, by := skusByGroup(t, away, 64)
	sku := by[pg.ID][0]
	c.mustCall(away.HTTPAddr(), "PUT", "/v1/skus/"+sku, map[string]any{"stock": 10}, nil)
	leader := c.Node(slices.Index(ids, pg.PreferredLeader)).HTTPAddr()
	t.Logf("watching %s (group %d, on %v, led by %s) at %s", sku, pg.ID, pg.Voters(), pg.PreferredLeader, away.ID())

	before := watchHandlers()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, resp := openWatch(t, ctx, away.HTTPAddr(), sku)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	if g, l := resp.Header.Get(api.HeaderGroup), resp.Header.Get(api.HeaderLeader); g != strconv.FormatUint(pg.ID, 10) || l != leader {
		t.Fatalf("relayed watch names group %q led by %q, want %d led by %s", g, l, pg.ID, leader)
	}
	next := func() api.SKU {
		t.Helper()
		s, ok := <-events
		if !ok {
			t.Fatal("the relayed stream ended")
		}
		return s
	}
	if s := next(); s.SKU != sku || s.Available != 10 {
		t.Fatalf("first event %+v", s)
	}
	c.mustCall(away.HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 3, RequestID: "after-watch", UserID: "u"}, nil)
	if s := waitEvent(next, func(s api.SKU) bool { return s.Available != 10 }); s.Available != 7 || s.Sold != 3 {
		t.Fatalf("event after a deduction of 3: %+v", s)
	}
	if n := watchHandlers(); n != before+2 {
		t.Fatalf("%d watch handlers running, %d before: want this node's relay and the replica's", n, before)
	}
	cancel()
	noWatchHandlersPast(t, before)

	// A watch forwarded once is not relayed again: the node names where the group is led.
	req, _ := http.NewRequest("GET", "http://"+away.HTTPAddr()+"/v1/skus/"+sku+"/watch", nil)
	req.Header.Set(api.HeaderForwardedBy, "n9")
	fresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ae := readAPIError(fresp); ae == nil || ae.Code != api.NotLeader || ae.Leader != leader {
		t.Fatalf("a forwarded watch at %s: %v, want not_leader naming %s", away.ID(), ae, leader)
	}

	// The replica serving a relayed watch stops: the stream ends. The group's replicas stop
	// together: one at a time, the controller would place the group on away as soon as it
	// saw one dead.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	events, _ = openWatch(t, ctx2, away.HTTPAddr(), sku)
	if s := next(); s.Available != 7 {
		t.Fatalf("first event of a second watch %+v", s)
	}
	var wg sync.WaitGroup
	for _, id := range pg.Voters() {
		wg.Go(c.Node(slices.Index(ids, id)).Kill)
	}
	wg.Wait()
	for range events {
	}
	if ctx2.Err() != nil {
		t.Fatal("the relayed stream did not end when its replica stopped")
	}
	noWatchHandlersPast(t, before)

	ctx3, cancel3 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel3()
	req, _ = http.NewRequestWithContext(ctx3, "GET", "http://"+away.HTTPAddr()+"/v1/skus/"+sku+"/watch", nil)
	uresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("watch with no replica of the group left: %v", err)
	}
	g := uresp.Header.Get(api.HeaderGroup)
	ae := readAPIError(uresp)
	if uresp.StatusCode != 503 || ae == nil || ae.Code != api.NoLeader || g != strconv.FormatUint(pg.ID, 10) {
		t.Fatalf("watch with no replica of the group left: HTTP %d %v, group %q; want no_leader for group %d", uresp.StatusCode, ae, g, pg.ID)
	}
	t.Logf("with no replica left: %v", ae)
}

// The relaying node passes over the replicas that cannot serve a watch: a node whose port
// refuses, and one the placement names that does not host the group after all (the
// relayed watch is not relayed again from there: it answers not_leader). The first that
// can serves it, through the relay; with none left, the watch is no_leader at once.
func TestWatch_RelayPassesOverReplicasThatCannotServeIt(t *testing.T) {
	c := newUnit(t, unitSpec{nodes: 4, groups: 2})
	sku := skusIn(c, 2)[0]
	c.createSKU(sku, 10)
	// n3 and n4 (nodes 2 and 3) host no replica of group 2.
	g := c.groups[2]
	for _, i := range []int{2, 3} {
		s := c.store(i, 2)
		delete(c.stores[i].byID, 2)
		g.replicas = slices.DeleteFunc(g.replicas, func(r *memStore) bool { return r == s })
		t.Cleanup(func() { _ = s.m.Close() })
	}
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := gone.Addr().String()
	gone.Close()
	place := func(replicas ...string) {
		p := placement.Clone(c.nodes[0].placement.Load())
		p.Nodes = []api.PlacementNode{{ID: "n9", HTTPAddr: refused}}
		for i := range c.nodes {
			p.Nodes = append(p.Nodes, api.PlacementNode{ID: fmt.Sprintf("n%d", i+1), HTTPAddr: c.addr(i)})
		}
		p.Groups[1].PreferredLeader, p.Groups[1].Replicas = replicas[0], nil
		for _, r := range replicas {
			p.Groups[1].Replicas = append(p.Groups[1].Replicas, api.Replica{Node: r, Role: api.Voter})
		}
		for _, n := range c.nodes {
			n.placement.Store(p)
		}
	}
	place("n9", "n4", "n2")

	before := watchHandlers()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, resp := openWatch(t, ctx, c.addr(2), sku)
	if g, l := resp.Header.Get(api.HeaderGroup), resp.Header.Get(api.HeaderLeader); g != "2" || l != c.addr(0) {
		t.Fatalf("relayed watch names group %q led by %q, want 2 led by %s", g, l, c.addr(0))
	}
	if s := <-events; s.Available != 10 {
		t.Fatalf("first event %+v", s)
	}
	c.mustCall(c.addr(0), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 1, RequestID: "d1", UserID: "u"}, nil)
	if s := <-events; s.Available != 9 {
		t.Fatalf("event after a deduction %+v", s)
	}
	if n := watchHandlers(); n != before+2 {
		t.Fatalf("%d watch handlers, %d before: want n3's relay and n2's stream", n, before)
	}
	cancel()
	noWatchHandlersPast(t, before)

	place("n9", "n4")
	_, err = c.call(c.addr(2), "GET", "/v1/skus/"+sku+"/watch", nil, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.NoLeader ||
		!strings.Contains(ae.Message, refused) || !strings.Contains(ae.Message, "not_leader") {
		t.Fatalf("watch with no replica that can serve it: %v, want no_leader naming what each answered", err)
	}
}

// watchHandlers counts the watch handlers running in the process, relays included, by
// their goroutines' stacks.
func watchHandlers() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "node.(*Node).handleWatch") {
			n++
		}
	}
	return n
}

// noWatchHandlersPast waits until no more watch handlers run than before.
func noWatchHandlersPast(t *testing.T, before int) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if n := watchHandlers(); n > before {
			return fmt.Errorf("%d watch handlers still running, %d before", n, before)
		}
		return nil
	})
}
