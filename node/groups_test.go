package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// poison makes g's replicas fail as a storage failure would: an entry of an apply level no
// build knows stops every replica that applies it (fsm.ErrPoisoned from then on).
func poison(t *testing.T, g *Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The proposer's own replica fails applying it, so the answer may be an error: what
	// counts is that the entry is in the log. A loaded machine may refuse the proposal
	// before it is logged (the new term not ready yet): then propose again.
	eventually(t, 10*time.Second, func() error {
		if g.failed() != nil {
			return nil
		}
		_, err := g.propose(ctx, fsm.Command{Kind: fsm.KindSetLevel, Level: fsm.ApplyLevel + 1})
		if err == nil || g.failed() != nil {
			return nil
		}
		return err
	})
}

// Two groups run side by side in each process over one raft port; when every replica of
// group 2 fails, each process stops its group 2 alone: no OnFatal (the process does not
// exit), group 1 goes on serving, and the failure shows in /v1/cluster/self and /readyz.
func TestGroups_FailedGroupStopsAloneOthersServe(t *testing.T) {
	var fatals atomic.Int32
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.OnFatal = func(error) { fatals.Add(1) }
	})
	c.createSKU("tee", 10)

	voters := make([]raft.Server, 0, 3)
	for _, n := range c.Nodes() {
		voters = append(voters, raft.Server{ID: raft.ServerID(n.ID()), Address: raft.ServerAddress(n.RaftAddr()), Suffrage: raft.Voter})
	}
	g2 := make([]*Group, 3)
	for i, n := range c.Nodes() {
		g, err := n.addGroup(2, voters)
		if err != nil {
			t.Fatalf("%s: add group 2: %v", n.ID(), err)
		}
		g2[i] = g
	}
	var leader2 *Group
	eventually(t, 10*time.Second, func() error {
		for _, g := range g2 {
			if g.raft.State() == raft.Leader {
				leader2 = g
				return nil
			}
		}
		return errors.New("group 2 has no leader")
	})
	// Group 2 replicates over the same Mux as group 1: its streams carry its header.
	eventually(t, 10*time.Second, func() error {
		for _, g := range g2 {
			if g.fsm.AppliedIndex() < leader2.raft.CommitIndex() || g.fsm.AppliedIndex() == 0 {
				return fmt.Errorf("group 2 on %s applied %d", g.cfg.ID, g.fsm.AppliedIndex())
			}
		}
		return nil
	})
	var routed, legacy uint64
	for _, n := range c.Nodes() {
		s := n.mux.Stats()
		routed, legacy = routed+s.Routed, legacy+s.Legacy
		if _, err := os.Stat(filepath.Join(n.cfg.DataDir, "groups", "2", stateDBName)); err != nil {
			t.Fatalf("%s: group 2's state file: %v", n.ID(), err)
		}
	}
	if routed <= legacy {
		t.Fatalf("the muxes routed %d streams, %d of them header-less: none for group 2", routed, legacy)
	}

	// Each group's series carry its id; the process's carry none.
	for _, n := range c.Nodes() {
		text := scrape(t, c, n)
		for _, series := range []string{`flashstock_raft_leader{group="1"}`, `flashstock_raft_leader{group="2"}`, `flashstock_build_info{`} {
			if !strings.Contains(text, "\n"+series) {
				t.Fatalf("%s: no %s series", n.ID(), series)
			}
		}
	}

	// The leader applies the entry and fails; a follower fails if it learns the commit
	// before the leader stops (or from the next leader), so which followers fail is timing.
	poison(t, leader2)
	eventually(t, 10*time.Second, func() error {
		select {
		case <-leader2.done:
		default:
			return fmt.Errorf("group 2's leader on %s still running (failed: %v)", leader2.cfg.ID, leader2.failed())
		}
		if leader2.failed() == nil {
			return fmt.Errorf("group 2 on %s stopped without a failure", leader2.cfg.ID)
		}
		return nil
	})
	// A stopped group's series go with it.
	var leader2Node *Node
	for _, n := range c.Nodes() {
		if n.ID() == leader2.cfg.ID {
			leader2Node = n
		}
	}
	if text := scrape(t, c, leader2Node); strings.Contains(text, `group="2"`) {
		t.Errorf("%s still reports the stopped group 2:\n%s", leader2Node.ID(), grep(text, `group="2"`))
	}
	if n := fatals.Load(); n != 0 {
		t.Fatalf("OnFatal called %d times: a failed group took its process down", n)
	}

	// Group 1 goes on: a sale through every node, the processes still up.
	for i, n := range c.Nodes() {
		var out api.DeductResponse
		c.mustCall(n.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("after-%d", i), UserID: "u"}, &out)
		if out.Remaining != int64(9-i) {
			t.Fatalf("deduct through %s after group 2 failed: %+v", n.ID(), out)
		}
		select {
		case <-n.Done():
			t.Fatalf("%s stopped", n.ID())
		default:
		}
	}
	for i, n := range c.Nodes() {
		var failed bool
		// A follower may fail while we look: the report must catch up with it.
		eventually(t, 5*time.Second, func() error {
			var self api.Node
			c.mustCall(n.HTTPAddr(), "GET", "/v1/cluster/self", nil, &self)
			failed = g2[i].failed() != nil
			if len(self.Groups) != 2 || self.Groups[0].ID != 1 || self.Groups[0].Failed != "" ||
				self.Groups[1].ID != 2 || (self.Groups[1].Failed != "") != failed {
				return fmt.Errorf("%s's own report: %+v (group 2 failed: %v)", n.ID(), self.Groups, failed)
			}
			return nil
		})
		if !failed {
			continue
		}
		if code, _ := c.call(n.HTTPAddr(), "GET", "/readyz", nil, nil); code != 503 {
			t.Fatalf("%s: /readyz %d with a failed group, want 503", n.ID(), code)
		}
	}
}

// A single-group process keeps its old policy: its group's failure is the process's, and
// OnFatal (exit 2 in stockd) lets the supervisor restart it from its files.
func TestGroups_SingleGroupFailureIsFatal(t *testing.T) {
	fatal := make(chan error, 1)
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.OnFatal = func(err error) {
			select {
			case fatal <- err:
			default:
			}
		}
	})
	_, n := c.WaitLeader()
	poison(t, n.cluster)
	select {
	case err := <-fatal:
		if !errors.Is(err, fsm.ErrPoisoned) && n.cluster.failed() == nil {
			t.Fatalf("OnFatal with %v, and no failure recorded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnFatal not called for the only group's failure")
	}
}

// Group 1 keeps today's files at the data dir's root; any other group has its own dir.
func TestGroupDir_Layout(t *testing.T) {
	for _, tc := range []struct {
		id   uint64
		want string
	}{
		{1, "/data"},
		{2, "/data/groups/2"},
		{17, "/data/groups/17"},
	} {
		if got := groupDir("/data", tc.id); got != tc.want {
			t.Errorf("groupDir(/data, %d) = %s, want %s", tc.id, got, tc.want)
		}
	}
}

// A single-group node's data dir is the previous build's: group 1's files at the root and
// no groups/ dir, so a dir written before the seam opens as group 1 unchanged, and one
// written now still opens with the previous build.
func TestGroupDir_SingleGroupKeepsTheRootLayout(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.createSKU("tee", 7)
	dir := c.Config(0).DataDir
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Node(0).Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, name := range []string{raftDBName, stateDBName, "snapshots"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("%s at the data dir's root: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, groupsDirName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a single-group node made %s/: %v", groupsDirName, err)
	}
	n := c.Restart(0)
	c.WaitLeader()
	var sku api.SKU
	c.mustCall(n.HTTPAddr(), "GET", "/v1/skus/tee", nil, &sku)
	if sku.Available != 7 {
		t.Fatalf("after a restart on the same dir: %+v", sku)
	}
}
