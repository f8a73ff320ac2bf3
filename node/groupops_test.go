package node

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// newMultiGroupOf3 is a three-node cluster with groups data groups: bootstrapped on n1,
// grown by two joiners, and waited for until every node hosts a voter replica of every
// group and each group is led.
func newMultiGroupOf3(t *testing.T, groups int) *testCluster {
	t.Helper()
	c := newMultiGroup(t, groups)
	for _, id := range []string{"n2", "n3"} {
		cfg := c.NewConfig(id)
		cfg.Join = []string{c.Node(0).HTTPAddr()}
		c.Add(cfg)
	}
	eventually(t, 90*time.Second, func() error {
		for _, n := range c.Nodes() {
			for id := uint64(0); id <= uint64(groups); id++ {
				g := n.group(id)
				if g == nil {
					return fmt.Errorf("%s hosts no replica of group %d", n.ID(), id)
				}
				voters := g.voters()
				if _, leader := g.raft.LeaderWithID(); voters != 3 || leader == "" {
					return fmt.Errorf("%s: group %d has %d voters and leader %q", n.ID(), id, voters, leader)
				}
			}
		}
		return nil
	})
	return c
}

// groupLeader is the node leading group id, or nil.
func (c *testCluster) groupLeader(id uint64) *Node {
	for _, n := range c.Running() {
		if g := n.group(id); g != nil && g.raft.State() == raft.Leader {
			return n
		}
	}
	return nil
}

// In a multi-group cluster a leadership transfer names its group: without one it is
// refused, naming the groups; with one it moves that group's leadership, sent through a
// node that does not lead it. GET /v1/debug/state?group=N describes each node's replica of
// group N, and the replicas of a group agree.
func TestMultiGroup_TransferAndDebugStatePerGroup(t *testing.T) {
	c := newMultiGroupOf3(t, 3)
	n1 := c.Node(0)

	_, err := c.call(n1.HTTPAddr(), "POST", "/v1/cluster/leader", api.TransferRequest{}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.InvalidArgument || !strings.Contains(ae.Message, "0 (meta), 1, 2, 3") {
		t.Fatalf("transfer naming no group: %v, want invalid_argument naming the groups", err)
	}
	nine := uint64(9)
	if _, err := c.call(n1.HTTPAddr(), "POST", "/v1/cluster/leader", api.TransferRequest{Group: &nine}, nil); !errors.As(err, &ae) || ae.Code != api.NotFound {
		t.Fatalf("transfer of group 9: %v, want not_found", err)
	}

	// Group 2's leadership moves to a follower, asked through the third node. The
	// controller later steers it back to the preferred leader, so the move is seen as it
	// happens, by the target's own raft.
	const moved = 2
	var leader *Node
	eventually(t, 10*time.Second, func() error {
		if leader = c.groupLeader(moved); leader == nil {
			return errors.New("group 2 has no leader")
		}
		return nil
	})
	var target, via *Node
	for _, n := range c.Nodes() {
		switch {
		case n == leader:
		case target == nil:
			target = n
		default:
			via = n
		}
	}
	won := make(chan raft.Observation, 16)
	obs := raft.NewObserver(won, false, func(o *raft.Observation) bool {
		lo, ok := o.Data.(raft.LeaderObservation)
		return ok && string(lo.LeaderID) == target.ID()
	})
	tg := target.group(moved)
	tg.raft.RegisterObserver(obs)
	defer tg.raft.DeregisterObserver(obs)
	group := uint64(moved)
	var out map[string]string
	c.mustCall(via.HTTPAddr(), "POST", "/v1/cluster/leader", api.TransferRequest{Group: &group, ID: target.ID()}, &out)
	select {
	case <-won:
	case <-time.After(10 * time.Second):
		t.Fatalf("group %d's leadership did not reach %s after the transfer answered %v", moved, target.ID(), out)
	}

	// Each group's replicas agree on their state, and the groups hold different states.
	_, by := skusByGroup(t, n1, 48)
	for id := uint64(1); id <= 3; id++ {
		for i, sku := range by[id][:id] { // a different number of SKUs per group
			c.mustCall(n1.HTTPAddr(), "PUT", "/v1/skus/"+sku, map[string]any{"stock": 10 + i}, nil)
		}
	}
	hashes := map[string]uint64{}
	for id := uint64(1); id <= 3; id++ {
		eventually(t, 20*time.Second, func() error {
			var first api.DebugState
			for i, n := range c.Nodes() {
				var st api.DebugState
				path := fmt.Sprintf("/v1/debug/state?group=%d", id)
				if _, err := c.call(n.HTTPAddr(), "GET", path, nil, &st); err != nil {
					return err
				}
				if st.Group != id || st.Invariants != "ok" {
					return fmt.Errorf("%s %s: %+v", n.ID(), path, st)
				}
				if i == 0 {
					first = st
				} else if st.AppliedIndex != first.AppliedIndex || st.StateHash != first.StateHash {
					return fmt.Errorf("group %d: %s at %d %s, %s at %d %s", id, c.Node(0).ID(), first.AppliedIndex, first.StateHash, n.ID(), st.AppliedIndex, st.StateHash)
				}
			}
			hashes[first.StateHash] = id
			return nil
		})
	}
	if len(hashes) != 3 {
		t.Fatalf("three groups holding different SKUs show %d state hashes", len(hashes))
	}
	var def api.DebugState
	c.mustCall(n1.HTTPAddr(), "GET", "/v1/debug/state", nil, &def)
	if def.Group != 1 {
		t.Fatalf("debug state without a group describes group %d, want 1", def.Group)
	}
	if _, err := c.call(n1.HTTPAddr(), "GET", "/v1/debug/state?group=0", nil, nil); !errors.As(err, &ae) || ae.Code != api.InvalidArgument {
		t.Fatalf("debug state of the meta group: %v, want invalid_argument", err)
	}
}

// A single-group cluster takes group 1 by name and refuses any other; naming none means
// group 1, as before groups existed.
func TestSingleGroup_OpsNameGroupOneOrNone(t *testing.T) {
	c := newCluster(t, 1, nil)
	_, l := c.WaitLeader()
	one, two := uint64(1), uint64(2)
	var out map[string]string
	c.mustCall(l.HTTPAddr(), "POST", "/v1/cluster/leader", api.TransferRequest{Group: &one, ID: l.ID()}, &out)
	if out["leader"] != l.ID() {
		t.Fatalf("transfer of group 1 to its leader: %v", out)
	}
	var ae *api.Error
	if _, err := c.call(l.HTTPAddr(), "POST", "/v1/cluster/leader", api.TransferRequest{Group: &two}, nil); !errors.As(err, &ae) || ae.Code != api.NotFound {
		t.Fatalf("transfer of group 2: %v, want not_found", err)
	}
	for _, path := range []string{"/v1/debug/state?group=2", "/v1/backup?group=2"} {
		if code, err := c.call(l.HTTPAddr(), "GET", path, nil, nil); !errors.As(err, &ae) || ae.Code != api.NotFound || code != http.StatusNotFound {
			t.Fatalf("GET %s: %d %v, want not_found", path, code, err)
		}
	}
	var st api.DebugState
	c.mustCall(l.HTTPAddr(), "GET", "/v1/debug/state?group=1", nil, &st)
	if st.Group != 1 || st.AppliedIndex == 0 {
		t.Fatalf("debug state of group 1: %+v", st)
	}
}
