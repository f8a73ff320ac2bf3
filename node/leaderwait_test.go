package node

import (
	"testing"

	"github.com/flashstock/flashstock/api"
)

// TestForward_WaitsForTheNextLeader: a write sent to a follower the moment the leader dies
// is answered by the next leader, in one request: the follower neither reports its refused
// forward nor the election in progress (both would send the client into a backoff that
// outlasts the election). If the follower asked wins the election itself, it says so and
// the same request sent to it again succeeds.
func TestForward_WaitsForTheNextLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("tee", 10)
	li, old := c.WaitLeader()
	f := c.Node((li + 1) % 3)
	old.Kill()

	body := api.DeductRequest{Qty: 1, RequestID: "during-election", UserID: "u"}
	var out api.DeductResponse
	_, err := c.call(f.HTTPAddr(), "POST", "/v1/skus/tee/deduct", body, &out)
	var ae *api.Error
	if asAPI(err, &ae) && ae.Code == api.NotLeader && ae.Leader == f.HTTPAddr() {
		t.Logf("%s won the election while the request waited; sending it there again", f.ID())
		_, err = c.call(f.HTTPAddr(), "POST", "/v1/skus/tee/deduct", body, &out)
	}
	if err != nil {
		t.Fatalf("deduct sent to follower %s as the leader died: %v", f.ID(), err)
	}
	if out.Remaining != 9 || out.Duplicate {
		t.Fatalf("answer %+v, want remaining 9, not a duplicate", out)
	}
}
