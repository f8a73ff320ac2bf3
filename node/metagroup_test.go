package node

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

func selfVoter(n *Node) []raft.Server {
	return []raft.Server{{ID: raft.ServerID(n.ID()), Address: raft.ServerAddress(n.RaftAddr()), Suffrage: raft.Voter}}
}

func waitGroupLeader(t *testing.T, g *Group) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if g.raft.State() != raft.Leader {
			return fmt.Errorf("group %d on %s is %s", g.id, g.cfg.ID, g.raft.State())
		}
		return nil
	})
}

// The meta group is a Group over the same raft wiring whose state machine is the
// placement: commands apply through its log, a stale one is refused, and the placement
// survives a restart from a snapshot plus the log after it.
func TestMetaGroup_AppliesSnapshotsAndRestores(t *testing.T) {
	c := newCluster(t, 1, nil)
	n := c.Node(0)
	g, err := n.addGroup(api.MetaGroupID, selfVoter(n))
	if err != nil {
		t.Fatal(err)
	}
	waitGroupLeader(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	self := api.PlacementNode{ID: n.ID(), RaftAddr: n.RaftAddr(), HTTPAddr: n.HTTPAddr()}
	res, err := g.proposeMeta(ctx, meta.Command{Kind: meta.Bootstrap, Nodes: []api.PlacementNode{self}, DataGroups: 3})
	if err != nil || res.Err != nil || res.Version != 1 {
		t.Fatalf("bootstrap: %+v, %v", res, err)
	}
	if err := g.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	// A command after the snapshot, replayed from the log on restart.
	res, err = g.proposeMeta(ctx, meta.Command{Kind: meta.SetNodeState, From: 1, NodeID: n.ID(), State: api.NodeDraining})
	if err != nil || res.Err != nil || res.Version != 2 {
		t.Fatalf("drain: %+v, %v", res, err)
	}
	res, err = g.proposeMeta(ctx, meta.Command{Kind: meta.SetNodeState, From: 1, NodeID: n.ID(), State: api.NodeActive})
	if err != nil || !errors.Is(res.Err, placement.ErrStale) || res.Version != 2 {
		t.Fatalf("a command planned from version 1 at version 2: %+v, %v", res, err)
	}
	want := g.meta.Placement()

	n.Kill()
	n = c.Restart(0)
	g2 := n.metaGroup // the data dir holds it: the node reopens it
	if g2 == nil {
		t.Fatal("the meta group was not reopened")
	}
	eventually(t, 10*time.Second, func() error {
		if v := g2.meta.Version(); v != 2 {
			return fmt.Errorf("placement version %d after restart, want 2", v)
		}
		return nil
	})
	got := g2.meta.Placement()
	if len(got.Groups) != len(want.Groups) || got.Nodes[0].State != api.NodeDraining {
		t.Fatalf("placement after restart: %+v, want %+v", got, want)
	}
}

// An entry the meta machine cannot read stops the meta group alone, as fsm's unknown
// apply levels stop a data group.
func TestMetaGroup_UnknownEntryStopsTheGroup(t *testing.T) {
	var fatal error
	c := newCluster(t, 1, func(cfg *Config) { cfg.OnFatal = func(err error) { fatal = err } })
	n := c.Node(0)
	g, err := n.addGroup(api.MetaGroupID, selfVoter(n))
	if err != nil {
		t.Fatal(err)
	}
	waitGroupLeader(t, g)
	_ = g.raft.Apply([]byte(`{"v":99,"kind":"bootstrap"}`), 5*time.Second).Error()
	eventually(t, 10*time.Second, func() error {
		select {
		case <-g.done:
		default:
			return errors.New("the meta group still runs")
		}
		if !errors.Is(g.failed(), placement.ErrUnknownCommand) {
			return fmt.Errorf("failure %v, want placement.ErrUnknownCommand", g.failed())
		}
		return nil
	})
	if fatal != nil {
		t.Fatalf("OnFatal(%v): the meta group took its process down", fatal)
	}
	c.createSKU("still-serving", 1)
}
