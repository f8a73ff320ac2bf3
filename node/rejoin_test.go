package node

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// A voter that comes back with its data wiped is removed and added again before it takes
// part, so its empty log never votes as if it held the committed entries.
func TestJoin_WipedVoterIsRemovedThenAdded(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("tee", 100)
	li, l := c.waitLeader()
	c.mustCall(l.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 5, RequestID: "before", UserID: "u"}, nil)
	v := (li + 1) % 3
	victim := c.get(v)
	victim.Kill()
	c.set(v, nil)
	if err := os.RemoveAll(c.cfgs[v].DataDir); err != nil {
		t.Fatal(err)
	}
	start, err := l.logStore.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	c.restart(v) // same command line: --join, now with no data
	c.converged()

	// The leader's log, from the restart on, holds a configuration without the victim,
	// followed by one with it as a voter again.
	removed, readded := false, false
	eventually(t, 10*time.Second, func() error {
		last, _ := l.logStore.LastIndex()
		for i := start + 1; i <= last; i++ {
			var e raft.Log
			if err := l.logStore.GetLog(i, &e); err != nil || e.Type != raft.LogConfiguration {
				continue
			}
			in := false
			for _, s := range raft.DecodeConfiguration(e.Data).Servers {
				if string(s.ID) == victim.ID() && s.Suffrage == raft.Voter {
					in = true
				}
			}
			if !in {
				removed = true
			} else if removed {
				readded = true
			}
		}
		if !removed || !readded {
			return fmt.Errorf("removed %v, re-added %v", removed, readded)
		}
		return nil
	})
	var s api.SKU
	c.mustCall(c.get(v).HTTPAddr(), "GET", "/v1/skus/tee?consistency=stale", nil, &s)
	if s.Sold != 5 {
		t.Fatalf("the rejoined node has %+v", s)
	}
}
