package node

import (
	"context"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

func TestLeave_RefusesARemovalThatLeavesNoWorkingQuorum(t *testing.T) {
	c := newCluster(t, 3, nil)
	li, l := c.waitLeader()
	healthy, dead := (li+1)%3, (li+2)%3
	deadID, healthyID := c.get(dead).ID(), c.get(healthy).ID()
	c.get(dead).Kill()
	c.set(dead, nil)

	// Removing the healthy follower would leave {leader, dead}: one healthy of two voters.
	code, err := c.call(l.HTTPAddr(), "DELETE", "/v1/cluster/members/"+healthyID, nil, nil)
	var ae *api.Error
	if !asAPI(err, &ae) || ae.Code != api.FailedPrecondition || code != 409 {
		t.Fatalf("removing a healthy voter with one dead: %d %v", code, err)
	}
	if code, err := c.call(l.HTTPAddr(), "DELETE", "/v1/cluster/members/"+healthyID+"?force=maybe", nil, nil); code != 400 {
		t.Fatalf("bad force value: %d %v", code, err)
	}
	// Removing the dead one leaves two healthy voters of two.
	c.mustCall(l.HTTPAddr(), "DELETE", "/v1/cluster/members/"+deadID, nil, nil)
	var cl api.Cluster
	c.mustCall(l.HTTPAddr(), "GET", "/v1/cluster", nil, &cl)
	if len(cl.Nodes) != 2 {
		t.Fatalf("after removing the dead member: %+v", cl.Nodes)
	}
	// Down to one voter is allowed (the operator asked for it); the last one never is.
	c.mustCall(l.HTTPAddr(), "DELETE", "/v1/cluster/members/"+healthyID, nil, nil)
	if code, err := c.call(l.HTTPAddr(), "DELETE", "/v1/cluster/members/"+l.ID()+"?force=true", nil, nil); code != 409 || !asAPI(err, &ae) || ae.Code != api.FailedPrecondition {
		t.Fatalf("removing the last voter, forced: %d %v", code, err)
	}
}

// TestLeave_ForceOverridesTheHealthCheck: the check judges health over HTTP, so a member
// whose API is down but whose raft is fine looks unhealthy; an operator who knows better
// forces the removal, and the cluster still commits.
func TestLeave_ForceOverridesTheHealthCheck(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("tee", 5)
	li, l := c.waitLeader()
	quiet, victim := c.get((li+1)%3), c.get((li+2)%3)
	quiet.httpSrv.Close() // raft still runs

	if code, _ := c.call(l.HTTPAddr(), "DELETE", "/v1/cluster/members/"+victim.ID(), nil, nil); code != 409 {
		t.Fatalf("unforced removal with a member whose API is down: %d", code)
	}
	c.mustCall(l.HTTPAddr(), "DELETE", "/v1/cluster/members/"+victim.ID()+"?force=true", nil, nil)
	var out api.DeductResponse
	c.mustCall(l.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "after", UserID: "u"}, &out)
	if out.Remaining != 4 {
		t.Fatalf("deduct after the forced removal: %+v", out)
	}
}

// TestLeave_RemovedNodeStopsAndSaysSo: a removed member stops by itself and reports why,
// so that stockd can exit with the code that tells a supervisor not to restart it; a
// member shut down normally does not claim to have been removed.
func TestLeave_RemovedNodeStopsAndSaysSo(t *testing.T) {
	c := newCluster(t, 3, nil)
	li, l := c.waitLeader()
	victim, other := (li+1)%3, (li+2)%3
	v := c.get(victim)
	c.mustCall(l.HTTPAddr(), "DELETE", "/v1/cluster/members/"+v.ID(), nil, nil)
	select {
	case <-v.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the removed node did not stop")
	}
	c.set(victim, nil)
	if !v.Removed() {
		t.Error("a removed node that stopped itself reports Removed() = false")
	}

	o := c.get(other)
	if err := o.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.set(other, nil)
	if o.Removed() {
		t.Error("a node shut down by its owner reports Removed() = true")
	}
}
