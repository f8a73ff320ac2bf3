package client_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
	"github.com/flashstock/flashstock/internal/testcluster"
	"github.com/flashstock/flashstock/node"
)

// startGroupsOf3 starts three nodes, n1 bootstrapping groups data groups and the others
// joining, and waits until every group has three voters and a leader; it returns the
// cluster and its view.
func startGroupsOf3(t *testing.T, groups int) (*cluster, api.Cluster) {
	t.Helper()
	c := testcluster.Start(t, 3, node.DefaultConfig, node.New, func(cfg *node.Config) {
		if cfg.Bootstrap {
			cfg.Groups = groups
		}
	})
	admin := newClient(t, client.Config{Endpoints: c.Addrs()})
	var view api.Cluster
	eventually(t, 90*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if view, err = admin.ClusterStatus(ctx); err != nil {
			return err
		}
		data := 0
		for _, g := range view.Groups {
			voters := 0
			for _, r := range g.Replicas {
				if r.Role == api.Voter {
					voters++
				}
			}
			if voters != 3 || g.Leader == "" {
				return fmt.Errorf("group %d: %d voters, leader %q", g.ID, voters, g.Leader)
			}
			if g.Kind == api.GroupData {
				data++
			}
		}
		if data != groups {
			return fmt.Errorf("%d of %d data groups placed", data, groups)
		}
		return nil
	})
	return c, view
}

// A data group's leadership moves while the client deducts from one of its SKUs: every
// call succeeds, the client follows the group's new leader (it sends straight to it, not
// through the old one), and exactly once holds across the moves: the stock sold is the
// calls that succeeded, and a request id sent before the moves, sent again, answers as
// the duplicate it is.
func TestGroups_FollowsAGroupLeaderThatMoved(t *testing.T) {
	const moved = 2
	c, view := startGroupsOf3(t, 3)
	// Calls retry until this ends: long, since elections come often on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pl := api.Placement{Version: view.PlacementVersion, Groups: view.Groups}
	var sku string
	for i := 0; sku == ""; i++ {
		if s := fmt.Sprintf("sku-%d", i); pl.GroupOf(s).ID == moved {
			sku = s
		}
	}
	addrOf := map[string]string{}
	for _, n := range c.Nodes() {
		addrOf[n.ID()] = n.HTTPAddr()
	}

	// sentTo records, in order, the node each of the SKU's deductions was sent to.
	var mu sync.Mutex
	var sentTo []string
	var placements atomic.Int64
	rec := &recorder{before: func(req *http.Request) {
		switch {
		case req.Method == http.MethodGet && req.URL.Path == "/v1/cluster":
			placements.Add(1)
		case req.URL.Path == "/v1/batch/deduct":
			for _, it := range batchItems(t, req) {
				if it.SKU == sku {
					mu.Lock()
					sentTo = append(sentTo, req.URL.Host)
					mu.Unlock()
					return
				}
			}
		case strings.HasSuffix(req.URL.Path, "/"+sku+"/deduct"):
			mu.Lock()
			sentTo = append(sentTo, req.URL.Host)
			mu.Unlock()
		}
	}}
	cl := groupClient(t, c, rec)
	if _, err := cl.CreateSKU(ctx, sku, 1_000_000); err != nil {
		t.Fatal(err)
	}
	first, err := cl.Deduct(ctx, sku, 1, "u0", client.WithRequestID("before-the-moves"))
	if err != nil {
		t.Fatal(err)
	}

	var ok atomic.Int64
	ok.Add(1) // the first deduction
	// Stopped between calls, never during one: a call cut short would leave its outcome
	// unknown, and the count of stock sold could not be checked against the calls.
	var stopped atomic.Bool
	stop := func() { stopped.Store(true) }
	defer stop()
	loadErr := make(chan error, 1)
	go func() {
		defer close(loadErr)
		for !stopped.Load() {
			if _, err := cl.Deduct(ctx, sku, 1, "u1"); err != nil {
				loadErr <- err
				return
			}
			ok.Add(1)
		}
	}()

	// sentStraightTo reports whether the last few deductions went to addr in a row: the
	// client picks a group's leader when it knows one and goes round the nodes when it
	// does not, so a run to one node is a leader it has followed.
	sentStraightTo := func(addr string, since int) bool {
		const run = 3
		mu.Lock()
		defer mu.Unlock()
		if len(sentTo)-since < run {
			return false
		}
		for _, h := range sentTo[len(sentTo)-run:] {
			if h != addr {
				return false
			}
		}
		return true
	}
	groupLeader := func() string {
		cv, err := cl.ClusterStatus(ctx)
		if err != nil {
			return ""
		}
		for _, g := range cv.Groups {
			if g.ID == moved {
				return g.Leader
			}
		}
		return ""
	}

	// The controller steers the group's leadership back to its preferred leader soon after
	// a transfer moves it, so it is moved again until the client has been seen following
	// it to the node it moved to.
	var preferred string
	for _, g := range view.Groups {
		if g.ID == moved {
			preferred = g.PreferredLeader
		}
	}
	followed := ""
	for try := 0; followed == "" && try < 10; try++ {
		from := groupLeader()
		var to string
		for id := range addrOf {
			if id != from && id != preferred && from != "" {
				to = id
				break
			}
		}
		if to == "" {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		mu.Lock()
		since := len(sentTo)
		mu.Unlock()
		if err := cl.TransferGroupLeadership(ctx, moved, to); err != nil {
			t.Logf("transfer of group %d to %s: %v", moved, to, err)
			continue
		}
		deadline := time.Now().Add(3 * time.Second)
		for followed == "" && time.Now().Before(deadline) {
			if sentStraightTo(addrOf[to], since) {
				followed = to
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if followed == "" {
		t.Fatalf("the client never sent group %d's deductions straight to the node its leadership moved to", moved)
	}
	select {
	case err := <-loadErr:
		t.Fatalf("a deduction failed while group %d's leadership moved: %v", moved, err)
	default:
	}

	// The controller brings the leadership back to the preferred leader (and elections on
	// a loaded machine may move it too): the client follows it wherever it ends.
	eventually(t, 60*time.Second, func() error {
		l := groupLeader()
		if l == "" {
			return fmt.Errorf("group %d has no leader", moved)
		}
		if !sentStraightTo(addrOf[l], 0) {
			return fmt.Errorf("the client does not send straight to group %d's leader %s", moved, l)
		}
		return nil
	})
	stop()
	if err, failed := <-loadErr; failed {
		t.Fatalf("a deduction failed while group %d's leadership moved: %v", moved, err)
	}

	again, err := cl.Deduct(ctx, sku, 1, "u0", client.WithRequestID("before-the-moves"))
	if err != nil || !again.Duplicate || again.Remaining != first.Remaining {
		t.Fatalf("the first deduction's request id sent again: %+v %v; want a duplicate with %d remaining", again, err, first.Remaining)
	}
	s, err := cl.GetSKU(ctx, sku)
	if err != nil {
		t.Fatal(err)
	}
	if s.Sold != ok.Load() {
		t.Fatalf("%d sold for %d deductions that succeeded", s.Sold, ok.Load())
	}
	t.Logf("%d deductions; the client followed group %d's leadership to %s and on; %d placement fetches", ok.Load(), moved, followed, placements.Load())
}
