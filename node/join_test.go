package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// waitHostsEveryGroup waits until n hosts the meta group and a replica of each of
// groups data groups that its group's raft counts as a voter.
func waitHostsEveryGroup(t *testing.T, n *Node, groups int) {
	t.Helper()
	eventually(t, 60*time.Second, func() error {
		if n.metaGroup == nil {
			return errors.New("no meta group: the node took the cluster for a single-group one")
		}
		for id := uint64(0); id <= uint64(groups); id++ {
			g := n.group(id)
			if g == nil {
				return fmt.Errorf("%s hosts no replica of group %d", n.ID(), id)
			}
			cfg, _, err := g.configuration()
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(cfg.Servers, func(s raft.Server) bool { return string(s.ID) == n.ID() }) {
				return fmt.Errorf("group %d's configuration does not list %s yet", id, n.ID())
			}
		}
		return nil
	})
}

// A joiner started before any member of the multi-group cluster it joins waits for one to
// answer, longer than a request timeout, rather than taking the silence for a
// single-group cluster; once the cluster is up it is placed like any joiner.
func TestJoin_WaitsForAClusterThatComesUpLate(t *testing.T) {
	c := emptyCluster(t)
	seed := freeAddr(t)
	jcfg := c.NewConfig("n2")
	jcfg.Join = []string{seed}
	started := make(chan *Node, 1)
	failed := make(chan error, 1)
	go func() {
		n, err := New(jcfg)
		if err != nil {
			failed <- err
			return
		}
		started <- n
	}()
	// Past the request timeout, after which the joiner used to assume a single-group
	// cluster.
	select {
	case n := <-started:
		n.Kill()
		t.Fatalf("the joiner started before any member answered at %s", seed)
	case err := <-failed:
		t.Fatalf("the joiner gave up: %v", err)
	case <-time.After(jcfg.RequestTimeout + time.Second):
	}
	scfg := c.NewConfig("n1")
	scfg.Bootstrap, scfg.Groups, scfg.HTTPAddr = true, 3, seed
	c.Add(scfg)
	var joiner *Node
	select {
	case joiner = <-started:
		t.Cleanup(joiner.Kill)
	case err := <-failed:
		t.Fatalf("the joiner gave up once the cluster was up: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the joiner did not start once the cluster was up")
	}
	waitHostsEveryGroup(t, joiner, 3)
}

// A joiner that no member answers within JoinTimeout, or whose context ends, fails to
// start with a JoinError saying why, instead of starting as a guess.
func TestJoin_NoAnswerIsAJoinError(t *testing.T) {
	c := emptyCluster(t)
	cfg := c.NewConfig("n2")
	cfg.Join = []string{freeAddr(t)}
	cfg.JoinTimeout = 300 * time.Millisecond
	_, err := New(cfg)
	var je *JoinError
	if !errors.As(err, &je) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New with nobody at --join: %v, want a JoinError past JoinTimeout", err)
	}
	cfg = c.NewConfig("n3")
	cfg.Join, cfg.JoinTimeout = []string{freeAddr(t)}, 0
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	if _, err := NewContext(ctx, cfg); !errors.As(err, &je) || !errors.Is(err, context.Canceled) {
		t.Fatalf("NewContext whose context ends while it waits: %v, want a JoinError", err)
	}
}

// A joiner that stopped after marking its data dir joined, before its meta group replica
// had a dir, starts again as a multi-group node from its own marker: it does not ask
// --join what kind of cluster it is in, and is placed.
func TestJoin_RestartReadsTheJoinedMarker(t *testing.T) {
	c := newMultiGroup(t, 2)
	cfg := c.NewConfig("n2")
	if err := markJoined(cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	cfg.Join = []string{c.Node(0).HTTPAddr()}
	n2 := c.Add(cfg)
	waitHostsEveryGroup(t, n2, 2)
	p := c.Node(0).placement.Load()
	if p == nil || !slices.ContainsFunc(p.Nodes, func(pn api.PlacementNode) bool { return pn.ID == "n2" }) {
		t.Fatalf("placement %+v does not list n2", p)
	}
}
