package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

func TestClusterClock_NeverRunsBackwards(t *testing.T) {
	var c clusterClock
	t0 := time.Now()
	if _, ok := c.stamp(1, t0); ok {
		t.Fatal("stamped before the term's clock started")
	}
	c.startTerm(1, 10_000, t0)
	if got, _ := c.stamp(1, t0.Add(250*time.Millisecond)); got != 10_250 {
		t.Fatalf("stamp 250 ms into the term = %d, want 10250", got)
	}
	// A stamp taken with an earlier monotonic reading (a caller that read the clock before
	// another) still does not go below what was stamped.
	if got, _ := c.stamp(1, t0.Add(100*time.Millisecond)); got != 10_250 {
		t.Fatalf("stamp after a later one = %d, want 10250", got)
	}
	if _, ok := c.stamp(2, t0.Add(time.Second)); ok {
		t.Fatal("stamped for a term whose clock was not started")
	}
	// A new term whose base is behind what this node stamped continues from the stamp.
	c.startTerm(2, 5_000, t0.Add(time.Second))
	if got, _ := c.stamp(2, t0.Add(time.Second)); got != 10_250 {
		t.Fatalf("first stamp of a term based behind the last = %d, want 10250", got)
	}
}

func TestTrustedReading_NoMinorityMovesItForward(t *testing.T) {
	const real, hours = 1_000_000, 7_200_000
	for _, tc := range []struct {
		name     string
		readings []int64
		wrong    int
		want     int64
	}{
		{"one voter", []int64{real}, 0, real},
		{"3 of 3, one fast", []int64{real + hours, real, real - 5}, 1, real},
		{"3 of 3, one slow", []int64{real - hours, real, real + 5}, 1, real},
		{"2 of 3, one fast", []int64{real + hours, real}, 1, real},
		{"2 of 3, one slow: no forward move past it", []int64{real - hours, real}, 1, real - hours},
		{"5 of 5, two fast", []int64{real + hours, real + 2*hours, real, real - 3, real + 3}, 2, real + 3},
		{"3 of 5, two fast", []int64{real + hours, real + 2*hours, real}, 2, real},
		{"4 of 5, two fast", []int64{real + hours, real + 2*hours, real, real + 3}, 2, real + 3},
	} {
		if got := trustedReading(tc.readings, tc.wrong); got != tc.want {
			t.Errorf("%s: trustedReading = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestClusterClock_FollowerEstimateCarriesLogTimeForward(t *testing.T) {
	var c clusterClock
	t0 := time.Now()
	c.observe(50_000, t0)
	c.observe(40_000, t0.Add(time.Second)) // an older log time (a restore) is ignored
	if got := c.estimate(7, t0.Add(2*time.Second)); got != 52_000 {
		t.Fatalf("estimate = %d, want 52000", got)
	}
	c.startTerm(7, 60_000, t0.Add(2*time.Second))
	if got := c.estimate(7, t0.Add(3*time.Second)); got != 61_000 {
		t.Fatalf("leader's estimate = %d, want 61000", got)
	}
}

// The failure of issue 15 as a new user met it: a node whose wall clock is two hours ahead
// takes over leadership. Before cluster time, its first expiry round released every hold
// and the exactly-once table forgot r1, so sending r1 again sold a second item.
func TestClusterTime_FastLeaderExpiresNothingAndForgetsNothing(t *testing.T) {
	const skew = 2 * time.Hour
	c := newCluster(t, 3, func(cfg *Config) {
		if cfg.ID == "n3" {
			cfg.WallClock = func() time.Time { return time.Now().Add(skew) }
		}
	})
	c.createSKU("phone", 10)
	first := c.leadBy("n1") // an election on a busy machine may have picked any node
	deduct := map[string]any{"qty": 1, "request_id": "r1", "user_id": "alice"}
	var d api.DeductResponse
	c.mustCall(first.HTTPAddr(), "POST", "/v1/skus/phone/deduct", deduct, &d)
	for _, o := range []struct {
		id  string
		ttl int64
	}{{"o20", 20_000}, {"o60", 60_000}} {
		c.mustCall(first.HTTPAddr(), "POST", "/v1/orders", map[string]any{"order_id": o.id, "user_id": "bob",
			"lines": []map[string]any{{"sku": "phone", "qty": 1}}, "ttl_ms": o.ttl, "request_id": "reserve-" + o.id}, nil)
	}
	before := c.Node(0).cluster.clusterNow()

	fast := c.leadBy("n3")
	// Several expiry rounds of the fast leader (ExpireInterval is 100 ms here).
	time.Sleep(time.Second)

	for _, id := range []string{"o20", "o60"} {
		var o api.Order
		c.mustCall(fast.HTTPAddr(), "GET", "/v1/orders/"+id, nil, &o)
		if o.Status != "held" {
			t.Errorf("order %s is %q a second after a +2h leader took over, want held", id, o.Status)
		}
	}
	var again api.DeductResponse
	c.mustCall(fast.HTTPAddr(), "POST", "/v1/skus/phone/deduct", deduct, &again)
	if !again.Duplicate || again.Remaining != d.Remaining {
		t.Errorf("r1 sent again = %+v, want the first answer (remaining %d) as a duplicate", again, d.Remaining)
	}
	var s api.SKU
	c.mustCall(fast.HTTPAddr(), "GET", "/v1/skus/phone", nil, &s)
	if s.Sold != 1 || s.Reserved != 2 {
		t.Errorf("sku = %+v, want sold 1, reserved 2", s)
	}
	now := fast.cluster.clusterNow()
	if now < before {
		t.Errorf("cluster time ran backwards across the transfer: %d → %d", before, now)
	}
	if drift := time.Duration(now-time.Now().UnixMilli()) * time.Millisecond; drift > time.Minute || drift < -time.Minute {
		t.Errorf("cluster time under the fast leader is %v from real time, want within a minute", drift)
	}
}

// A leader whose clock is behind must not keep holds late: cluster time continues from the
// log by the leader's monotonic clock, so a 1 s hold made under it is released about a
// second later.
func TestClusterTime_SlowLeaderReleasesHoldsOnTime(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		if cfg.ID == "n2" {
			cfg.WallClock = func() time.Time { return time.Now().Add(-2 * time.Hour) }
		}
	})
	c.createSKU("tv", 5)
	slow := c.leadBy("n2")
	var o api.Order
	c.mustCall(slow.HTTPAddr(), "POST", "/v1/orders", map[string]any{"order_id": "o1", "user_id": "bob",
		"lines": []map[string]any{{"sku": "tv", "qty": 2}}, "ttl_ms": 1000, "request_id": "reserve-o1"}, &o)
	if d := time.Duration(o.ExpiresAtMS-time.Now().UnixMilli()) * time.Millisecond; d > time.Minute || d < -time.Minute {
		t.Fatalf("a 1 s hold under a -2h leader expires %v from now, want about 1 s", d)
	}
	// The bound: the hold's TTL, an expiry round, and a loaded test machine's slack.
	eventually(t, 5*time.Second, func() error {
		var s api.SKU
		if _, err := c.call(slow.HTTPAddr(), "GET", "/v1/skus/tv", nil, &s); err != nil {
			return err
		}
		if s.Available != 5 || s.Reserved != 0 {
			return fmt.Errorf("sku %+v: hold not released yet", s)
		}
		return nil
	})
}

// After a whole-cluster outage, every clock agrees that time has moved on: cluster time
// follows the majority forward, and holds that ran out during the outage are released.
// The outage is simulated by restarting every node with its wall clock an hour ahead.
func TestClusterTime_WholeClusterRestartMovesForwardWithTheMajority(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("lamp", 4)
	_, l := c.WaitLeader()
	c.mustCall(l.HTTPAddr(), "POST", "/v1/orders", map[string]any{"order_id": "o1", "user_id": "bob",
		"lines": []map[string]any{{"sku": "lamp", "qty": 1}}, "ttl_ms": 20 * 60_000, "request_id": "reserve-o1"}, nil)
	for _, n := range c.Running() {
		n.Kill()
	}
	const outage = time.Hour
	for i := range 3 {
		c.Config(i).WallClock = func() time.Time { return time.Now().Add(outage) }
		c.Restart(i)
	}
	_, l = c.WaitLeader()
	want := time.Now().Add(outage).UnixMilli()
	eventually(t, 10*time.Second, func() error {
		var o api.Order
		if _, err := c.call(l.HTTPAddr(), "GET", "/v1/orders/o1", nil, &o); err != nil {
			return err
		}
		if o.Status != "expired" {
			return fmt.Errorf("order is %q after the outage, want expired", o.Status)
		}
		return nil
	})
	if got := l.cluster.clusterNow(); got < want-60_000 {
		t.Errorf("cluster time after the outage = %d, want about %d (the majority's clocks)", got, want)
	}
}

// leadBy hands leadership to the node with this id (unless it leads already) and returns
// it once it leads.
func (c *testCluster) leadBy(id string) *Node {
	c.t.Helper()
	var n *Node
	eventually(c.t, 15*time.Second, func() error {
		_, l := c.Leader()
		if l == nil {
			return fmt.Errorf("no leader")
		}
		if l.ID() == id {
			n = l
			return nil
		}
		_, err := c.call(l.HTTPAddr(), "POST", "/v1/cluster/leader", map[string]any{"id": id}, nil)
		if err == nil {
			err = fmt.Errorf("%s does not lead yet", id)
		}
		return err
	})
	return n
}
