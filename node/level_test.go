package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
	"github.com/flashstock/flashstock/internal/testcluster"
	"github.com/flashstock/flashstock/placement/meta"
)

// A cluster whose members all run this build raises its apply level by itself, through the
// log, so every replica has it.
func TestApplyLevel_RaisedOnceEveryMemberKnowsIt(t *testing.T) {
	c := newCluster(t, 3, nil)
	eventually(t, 10*time.Second, func() error {
		for _, n := range c.Running() {
			if got := n.cluster.fsm.Level(); got != fsm.ApplyLevel {
				return fmt.Errorf("%s is at level %d", n.ID(), got)
			}
		}
		return nil
	})
	var self api.Node
	c.mustCall(c.Node(1).HTTPAddr(), "GET", "/v1/cluster/self", nil, &self)
	if self.ApplyLevel != fsm.ApplyLevel || self.MaxApplyLevel != fsm.ApplyLevel {
		t.Fatalf("self = %+v, want apply level and max %d", self, fsm.ApplyLevel)
	}
}

// A node of an older build (it reports no max_apply_level) may not join a cluster whose log
// is already past level 0: it would apply the newer rules the old way.
func TestApplyLevel_OlderBuildMayNotJoin(t *testing.T) {
	c := newCluster(t, 1, nil)
	_, l := c.WaitLeader()
	eventually(t, 10*time.Second, func() error {
		if l.cluster.fsm.Level() < 1 {
			return errors.New("level not raised yet")
		}
		return nil
	})
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What a build before apply levels answers.
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "old", "role": "follower"})
	}))
	defer old.Close()
	_, err := c.call(l.HTTPAddr(), "POST", "/v1/cluster/members",
		api.JoinRequest{ID: "old", RaftAddr: "127.0.0.1:1", HTTPAddr: old.Listener.Addr().String()}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.FailedPrecondition {
		t.Fatalf("join of an older build: %v, want failed_precondition", err)
	}
	if cfg, _, _ := l.cluster.configuration(); len(cfg.Servers) != 1 {
		t.Fatalf("configuration %v: the older build was added", cfg.Servers)
	}
}

// metaLogKinds is the kind of every command in g's meta log, as g's replica stores it.
func metaLogKinds(t *testing.T, g *Group) []meta.Kind {
	t.Helper()
	first, err := g.logStore.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := g.logStore.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []meta.Kind
	for i := max(first, 1); i <= last; i++ {
		var l raft.Log
		if err := g.logStore.GetLog(i, &l); err != nil {
			t.Fatalf("meta log entry %d: %v", i, err)
		}
		if l.Type != raft.LogCommand || len(l.Data) == 0 {
			continue
		}
		c, err := meta.Decode(l.Data)
		if err != nil {
			t.Fatalf("meta log entry %d: %v", i, err)
		}
		kinds = append(kinds, c.Kind)
	}
	return kinds
}

// A rolling upgrade of a multi-group cluster from a build before the meta apply levels:
// while a member still runs it, an operator's leader pin is refused with
// failed_precondition naming the upgrade and that member, and nothing of it reaches the
// meta log (an older member would stop its meta replica at the entry), whether the older
// build leads the meta group or this one does; once the last member is upgraded, the
// level rises through the log and the same pin is accepted.
func TestMetaLevel_PinsWaitForTheLastUpgrade(t *testing.T) {
	testcluster.SkipShort(t)
	c := newCluster(t, 1, func(cfg *Config) { cfg.Groups = 2; cfg.olderMetaBuild = true })
	waitPlacement(t, c.Node(0))
	cfg := c.NewConfig("n2")
	cfg.Join = []string{c.Node(0).HTTPAddr()}
	cfg.olderMetaBuild = true
	c.Add(cfg)
	eventually(t, 30*time.Second, func() error {
		cfg, _, err := c.Node(0).metaGroup.configuration()
		if err != nil || len(cfg.Servers) != 2 {
			return fmt.Errorf("meta configuration %v (%v): n2 not in it yet", cfg.Servers, err)
		}
		return nil
	})
	pin := func() error {
		_, err := c.call(c.Node(1).HTTPAddr(), "POST", "/v1/groups/1/leader", api.LeaderRequest{Node: "n1"}, nil)
		return err
	}
	// refused waits for the pin's refusal with want in its message, through whichever
	// leader; lead, when set, is the node the meta group should be led by to give it.
	refused := func(want string, lead *Node) {
		t.Helper()
		eventually(t, 60*time.Second, func() error {
			if l := lead; l != nil && l.metaGroup.raft.State() != raft.Leader {
				for _, n := range c.Nodes() {
					if n.metaGroup.raft.State() == raft.Leader {
						_ = n.metaGroup.raft.LeadershipTransferToServer(raft.ServerID(l.ID()), raft.ServerAddress(l.RaftAddr())).Error()
					}
				}
			}
			err := pin()
			if err == nil {
				t.Fatalf("a leader pin was accepted while a member runs a build without meta levels")
			}
			var refusal *api.Error
			if !asAPI(err, &refusal) || refusal.Code != api.FailedPrecondition || !strings.Contains(refusal.Message, "finished upgrading") || !strings.Contains(refusal.Message, want) {
				return fmt.Errorf("pin: %v; want a refusal naming %q", err, want) // or the placement settling: group_moving, node_down
			}
			return nil
		})
		for _, n := range c.Nodes() {
			g := n.metaGroup
			if kinds := metaLogKinds(t, g); slices.ContainsFunc(kinds, func(k meta.Kind) bool { return meta.KindLevel(k) > 0 || k == meta.SetLevel }) {
				t.Errorf("%s's meta log holds %v: an older build cannot decode it", n.ID(), kinds)
			}
			if g.meta.Level() != 0 || g.failed() != nil {
				t.Errorf("%s: meta level %d, failure %v", n.ID(), g.meta.Level(), g.failed())
			}
		}
	}
	upgrade := func(i int) {
		c.Node(i).Kill()
		c.Config(i).olderMetaBuild = false
		c.Restart(i)
	}

	refused("member n1 (the leader) runs a build that knows meta apply level 0", c.Node(0))
	upgrade(0)
	refused("member n2 runs a build that knows meta apply level 0", c.Node(0)) // n1, upgraded, leads and asks n2
	upgrade(1)
	eventually(t, 60*time.Second, pin)
	eventually(t, 30*time.Second, func() error {
		for _, n := range c.Nodes() {
			p := n.placement.Load()
			if g := n.metaGroup; g.meta.Level() != meta.ApplyLevel || p == nil || p.Groups[1].PinnedLeader != "n1" {
				return fmt.Errorf("%s: meta level %d, placement %+v", n.ID(), g.meta.Level(), p)
			}
		}
		return nil
	})
	var self api.Node
	c.mustCall(c.Node(1).HTTPAddr(), "GET", "/v1/cluster/self", nil, &self)
	if self.MetaLevel != meta.ApplyLevel || self.MaxMetaLevel != meta.ApplyLevel {
		t.Errorf("self = meta level %d, max %d; want %d", self.MetaLevel, self.MaxMetaLevel, meta.ApplyLevel)
	}
}

// A node of a build from before the meta levels (it reports no max_meta_level) may not join
// a multi-group cluster whose meta log is past level 0; a cluster of this build gets there
// by itself.
func TestMetaLevel_OlderBuildMayNotJoin(t *testing.T) {
	c := newMultiGroup(t, 2)
	n := c.Node(0)
	eventually(t, 10*time.Second, func() error {
		if n.metaGroup.meta.Level() < meta.ApplyLevel {
			return errors.New("meta level not raised yet")
		}
		return nil
	})
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What a build with apply levels but not meta levels answers.
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "old", "role": "follower", "max_apply_level": fsm.ApplyLevel})
	}))
	defer old.Close()
	_, err := c.call(n.HTTPAddr(), "POST", "/v1/cluster/members",
		api.JoinRequest{ID: "old", RaftAddr: "127.0.0.1:1", HTTPAddr: old.Listener.Addr().String()}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.FailedPrecondition || !strings.Contains(ae.Message, "meta apply level") {
		t.Fatalf("join of an older build: %v, want failed_precondition", err)
	}
	if p := n.metaGroup.meta.Placement(); slices.ContainsFunc(p.Nodes, func(pn api.PlacementNode) bool { return pn.ID == "old" }) {
		t.Fatalf("placement %+v: the older build was added", p.Nodes)
	}
}

// dataLevelsRaised waits until every data group n hosts is at this build's apply level.
func dataLevelsRaised(t *testing.T, n *Node) {
	t.Helper()
	eventually(t, 15*time.Second, func() error {
		dg := n.dataGroups()
		if len(dg) == 0 {
			return errors.New("no data group yet")
		}
		for _, g := range dg {
			if l := g.fsm.Level(); l < fsm.ApplyLevel {
				return fmt.Errorf("group %d at apply level %d", g.id, l)
			}
		}
		return nil
	})
}

// olderDataBuildBeside starts a 2-group cluster whose data groups are at this build's
// level, and beside it n2, a node playing a build that knows no apply level (it has not
// joined yet).
func olderDataBuildBeside(t *testing.T) (*testCluster, *Node, *Node) {
	t.Helper()
	c := newMultiGroup(t, 2)
	n := c.Node(0)
	dataLevelsRaised(t, n)
	cfg := c.NewConfig("n2")
	cfg.Join = []string{n.HTTPAddr()}
	cfg.olderDataBuild = true
	return c, n, c.Add(cfg)
}

// A node of a build that knows a lower apply level than a multi-group cluster's data
// groups may not join it: the meta leader, which hosts a data group, answers the join
// with failed_precondition naming the node and the levels, and lists nothing.
func TestApplyLevel_MultiGroupOlderBuildMayNotJoin(t *testing.T) {
	c, n, old := olderDataBuildBeside(t)
	_, err := c.call(n.HTTPAddr(), "POST", "/v1/cluster/members",
		api.JoinRequest{ID: "n2", RaftAddr: old.RaftAddr(), HTTPAddr: old.HTTPAddr()}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.FailedPrecondition || !strings.Contains(ae.Message, `"n2"`) ||
		!strings.Contains(ae.Message, "apply level 0") || !strings.Contains(ae.Message, fmt.Sprintf("at %d", fsm.ApplyLevel)) {
		t.Fatalf("join of an older data build: %v, want failed_precondition naming n2 and the levels", err)
	}
	if p := n.metaGroup.meta.Placement(); slices.ContainsFunc(p.Nodes, func(pn api.PlacementNode) bool { return pn.ID == "n2" }) {
		t.Fatalf("placement %+v: the older build was listed", p.Nodes)
	}
}

// A node of a build that knows a lower apply level than the data groups' logs, listed in
// the placement by a meta leader that could not tell (an older controller, or one hosting
// no data group), is given the meta group but no data replica: the data groups' leaders
// refuse it as a replica with failed_precondition naming it and the levels, the
// controller plans around it, and the groups keep their voters. Upgraded, it gets its
// replicas as any node.
func TestApplyLevel_MultiGroupNoReplicaOnOlderBuild(t *testing.T) {
	testcluster.SkipShort(t)
	c, n, old := olderDataBuildBeside(t)
	p := n.metaGroup.meta.Placement()
	res, err := n.metaGroup.proposeMeta(t.Context(), meta.Command{Kind: meta.AddNode, From: p.Version,
		Node: &api.PlacementNode{ID: "n2", RaftAddr: old.RaftAddr(), HTTPAddr: old.HTTPAddr()}})
	if err != nil || res.Err != nil {
		t.Fatalf("list n2: %v, %v", err, res.Err)
	}
	// The controller's first step for it: the meta group's nonvoter.
	eventually(t, 30*time.Second, func() error {
		if p := n.metaGroup.meta.Placement(); p.Groups[0].RoleOf("n2") == "" {
			return errors.New("n2 does not host the meta group yet")
		}
		return nil
	})
	for _, group := range []string{"1", "2"} {
		_, err := c.call(n.HTTPAddr(), "POST", "/v1/groups/"+group+"/membership", api.MembershipRequest{Op: "add_nonvoter", Node: "n2"}, nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.FailedPrecondition || !strings.Contains(ae.Message, `"n2"`) ||
			!strings.Contains(ae.Message, "apply level 0") || !strings.Contains(ae.Message, fmt.Sprintf("group %s's log is at %d", group, fsm.ApplyLevel)) {
			t.Fatalf("group %s: add n2 as a replica: %v, want failed_precondition naming n2 and the levels", group, err)
		}
	}
	// The controller plans around it rather than have its steps refused.
	eventually(t, 30*time.Second, func() error {
		if h := n.heldOffData.Load(); h == nil || !slices.Equal(*h, []string{"n2"}) {
			return fmt.Errorf("the controller holds %v off the data groups, want n2", h)
		}
		return nil
	})
	// Nor does an operator's move onto it get recorded, to be refused on every pass.
	_, err = c.call(n.HTTPAddr(), "POST", "/v1/groups/1/move", api.MoveRequest{From: "n1", To: "n2"}, nil)
	if ae := (*api.Error)(nil); !errors.As(err, &ae) || ae.Code != api.FailedPrecondition || !strings.Contains(ae.Message, `"n2"`) || !strings.Contains(ae.Message, "apply level 0") {
		t.Fatalf("move a replica of group 1 onto n2: %v, want failed_precondition naming n2 and its level", err)
	}
	if p := n.metaGroup.meta.Placement(); len(p.Groups[1].PinnedReplicas) > 0 {
		t.Fatalf("group 1 pinned to %v: the refused move was recorded", p.Groups[1].PinnedReplicas)
	}
	hosts := func(id string) error {
		for _, nd := range c.Running() {
			for _, g := range nd.dataGroups() {
				if err := g.failed(); err != nil {
					return fmt.Errorf("%s: group %d stopped: %v", nd.ID(), g.id, err)
				}
			}
		}
		for _, g := range n.dataGroups() {
			cfg, _, err := g.configuration()
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(cfg.Servers, func(s raft.Server) bool { return string(s.ID) == id && s.Suffrage == raft.Voter }) {
				return fmt.Errorf("group %d: configuration %v lacks voter %s", g.id, cfg.Servers, id)
			}
		}
		return nil
	}
	if err := hosts("n1"); err != nil {
		t.Fatal(err)
	}
	for _, g := range n.dataGroups() {
		cfg, _, _ := g.configuration()
		if slices.ContainsFunc(cfg.Servers, func(s raft.Server) bool { return s.ID == "n2" }) {
			t.Fatalf("group %d: the older build is a member: %v", g.id, cfg.Servers)
		}
	}
	if dg := old.dataGroups(); len(dg) > 0 {
		t.Fatalf("the older build hosts %d data groups", len(dg))
	}

	old.Kill()
	c.Config(1).olderDataBuild = false
	c.Restart(1)
	eventually(t, 60*time.Second, func() error {
		if err := hosts("n1"); err != nil {
			return err
		}
		return hosts("n2")
	})
	if h := n.heldOffData.Load(); h == nil || len(*h) > 0 {
		t.Errorf("upgraded, n2 is still held off the data groups: %v", h)
	}
	if refused, _ := sample(scrape(t, c, n), `flashstock_placement_steps_total{kind="add_nonvoter",outcome="failed"}`); refused != 0 {
		t.Errorf("%v add_nonvoter steps refused: the controller planned replicas onto the older build", refused)
	}
}
