package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// A node that wins an election while a leadership transfer is asked of it, towards a
// replica the network has cut off (the placement controller hands a group back to its
// preferred leader, which answers over HTTP but not over raft), must still commit its
// term's no-op once the transfer has failed, and serve: otherwise it stays the leader and
// refuses every request as "not committed an entry of its term yet" for as long as it
// leads. Raft refuses the no-op only when the transfer is picked up before it, so each
// round gives the race another chance: several rounds hit it.
func TestLeadership_NoopCommitsAfterAFailedTransfer(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.ExpireInterval = time.Hour })
	t.Cleanup(c.Heal) // before the nodes stop: a blocked link would hold their shutdown up
	c.createSKU("tee", 1000)
	li, _ := c.WaitLeader()
	cut := (li + 1) % 3
	target := c.Node(cut)
	c.Isolate(cut)
	conclusive := 0
	for round := 0; round < 16 && conclusive < 8; round++ {
		li, _ := c.WaitLeader()
		next := c.Node(3 - li - cut) // the other replica on the leader's side of the cut
		won := make(chan raft.Observation, 1)
		obs := raft.NewObserver(won, false, func(o *raft.Observation) bool {
			lo, ok := o.Data.(raft.LeaderObservation)
			return ok && string(lo.LeaderID) == next.ID()
		})
		next.cluster.raft.RegisterObserver(obs)
		timeoutNow(t, next)
		select {
		case <-won:
		case <-time.After(10 * time.Second):
			// A loaded machine (the race detector, other packages' tests) can lose the
			// election to a timeout elsewhere: this round proves nothing.
			next.cluster.raft.DeregisterObserver(obs)
			t.Logf("round %d: %s did not win the election it was told to start", round, next.ID())
			continue
		}
		// At once, as the controller would: the transfer is queued while the new leader's
		// no-op is.
		transfer := next.cluster.raft.LeadershipTransferToServer(raft.ServerID(target.ID()), raft.ServerAddress(target.RaftAddr()))
		next.cluster.raft.DeregisterObserver(obs)
		if err := transfer.Error(); err == nil {
			t.Fatalf("round %d: leadership moved to %s, which is cut off", round, target.ID())
		}
		// mustCall retries no_leader answers for a while, as the client does; a leader that
		// never commits its term's entry fails it.
		var res api.DeductResponse
		c.mustCall(next.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("round-%d", round), UserID: "u"}, &res)
		if !next.IsLeader() {
			// An election on a loaded machine, not the bug: this round proves nothing.
			t.Logf("round %d: %s lost leadership meanwhile", round, next.ID())
			continue
		}
		conclusive++
	}
	if conclusive < 4 {
		t.Fatalf("only %d of the rounds kept their leader throughout; the test proved too little", conclusive)
	}
}
