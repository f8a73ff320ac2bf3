package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// testFSM records the data of every applied log entry.
type testFSM struct {
	mu      sync.Mutex
	applied []string
}

func (f *testFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, string(l.Data))
	return len(f.applied)
}

func (f *testFSM) Snapshot() (raft.FSMSnapshot, error) {
	return testSnapshot(f.entries()), nil
}

func (f *testFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var applied []string
	if err := json.NewDecoder(rc).Decode(&applied); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = applied
	return nil
}

func (f *testFSM) entries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

type testSnapshot []string

func (s testSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode([]string(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (testSnapshot) Release() {}

// testNode is one raft member over a stream layer wrapped in Faults.
type testNode struct {
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	fsm    *testFSM
	addr   string
	faults *Faults
}

// startCluster starts n raft nodes with in-memory stores on loopback, over
// mutual TLS if ca is not nil, and bootstraps them as one cluster.
func startCluster(t *testing.T, n int, ca *testCA) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	layers := make([]*Layer, n)
	for i := range nodes {
		f := NewFaults(nil)
		cfg := Config{BindAddr: "127.0.0.1:0", Dial: f.Dial, WrapListener: f.WrapListener}
		if ca != nil {
			cfg.TLS, cfg.ClientTLS = ca.mutualTLS(t, fmt.Sprintf("n%d", i))
		}
		l, err := Listen(cfg)
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		layers[i] = l
		nodes[i] = &testNode{fsm: &testFSM{}, addr: l.Addr().String(), faults: f}
	}
	for i, node := range nodes {
		t.Cleanup(func() { node.faults.Close() })
		startRaft(t, node, layers[i])
	}
	bootstrap(t, nodes)
	return nodes
}

// startRaft starts node's raft, with in-memory stores, over stream; it is
// shut down when the test ends.
func startRaft(t *testing.T, node *testNode, stream raft.StreamLayer) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs raft groups: tier 2, not in the unit tier (-short)")
	}
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(node.addr)
	conf.HeartbeatTimeout = 200 * time.Millisecond
	conf.ElectionTimeout = 200 * time.Millisecond
	conf.LeaderLeaseTimeout = 100 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.Logger = hclog.NewNullLogger()
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: time.Second,
		Logger:  hclog.NewNullLogger(),
	})
	r, err := raft.NewRaft(conf, node.fsm, raft.NewInmemStore(), raft.NewInmemStore(), raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		trans.Close()
		t.Fatalf("NewRaft: %v", err)
	}
	node.raft, node.trans = r, trans
	t.Cleanup(func() { stopRaft(t, node) })
}

// stopRaft shuts node's raft down and closes its transport, which closes the
// stream layer; doing it again does nothing.
func stopRaft(t *testing.T, node *testNode) {
	t.Helper()
	if err := node.raft.Shutdown().Error(); err != nil {
		t.Errorf("raft shutdown: %v", err)
	}
	node.trans.Close()
}

// bootstrap makes nodes one raft cluster.
func bootstrap(t *testing.T, nodes []*testNode) {
	t.Helper()
	var servers []raft.Server
	for _, n := range nodes {
		servers = append(servers, raft.Server{ID: raft.ServerID(n.addr), Address: raft.ServerAddress(n.addr)})
	}
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatalf("BootstrapCluster: %v", err)
	}
}

// waitLeader waits until one of nodes leads and the others among them follow it.
func waitLeader(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var leader *testNode
	waitFor(t, "a leader", func() error {
		leader = nil
		for _, n := range nodes {
			if n.raft.State() == raft.Leader {
				leader = n
			}
		}
		if leader == nil {
			return errors.New("no node is leader")
		}
		for _, n := range nodes {
			if addr, _ := n.raft.LeaderWithID(); string(addr) != leader.addr {
				return fmt.Errorf("%s follows %q, not %s", n.addr, addr, leader.addr)
			}
		}
		return nil
	})
	return leader
}

func apply(t *testing.T, leader *testNode, data string) {
	t.Helper()
	if err := leader.raft.Apply([]byte(data), 5*time.Second).Error(); err != nil {
		t.Fatalf("Apply(%q) on %s: %v", data, leader.addr, err)
	}
}

func waitApplied(t *testing.T, nodes []*testNode, want ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%q applied everywhere", want), func() error {
		for _, n := range nodes {
			if err := equalStrings(n.fsm.entries(), want); err != nil {
				return fmt.Errorf("%s: %w", n.addr, err)
			}
		}
		return nil
	})
}

// clusterSecurity runs a cluster test over plain TCP and over mutual TLS.
func clusterSecurity(t *testing.T, test func(t *testing.T, ca *testCA)) {
	t.Run("plain TCP", func(t *testing.T) { test(t, nil) })
	t.Run("mutual TLS", func(t *testing.T) { test(t, newTestCA(t, "cluster CA")) })
}

func TestRaft_ReplicatesOverLayer(t *testing.T) {
	clusterSecurity(t, func(t *testing.T, ca *testCA) {
		nodes := startCluster(t, 3, ca)
		leader := waitLeader(t, nodes)
		apply(t, leader, "deduct sku-1 1")
		waitApplied(t, nodes, "deduct sku-1 1")
	})
}

// isolate cuts node off from the others in both directions.
func isolate(node *testNode, others []*testNode) {
	for _, o := range others {
		node.faults.Block(o.addr)
		o.faults.Block(node.addr)
	}
}

func TestRaft_PartitionedLeaderIsReplaced(t *testing.T) {
	clusterSecurity(t, func(t *testing.T, ca *testCA) {
		nodes := startCluster(t, 3, ca)
		old := waitLeader(t, nodes)
		apply(t, old, "a")
		waitApplied(t, nodes, "a")

		var rest []*testNode
		for _, n := range nodes {
			if n != old {
				rest = append(rest, n)
			}
		}
		isolate(old, rest)
		leader := waitLeader(t, rest)
		apply(t, leader, "b")
		waitApplied(t, rest, "a", "b")
		waitFor(t, "the isolated leader to step down", func() error {
			if s := old.raft.State(); s == raft.Leader {
				return errors.New("still leader")
			}
			return nil
		})
		if got := old.fsm.entries(); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("isolated old leader applied %q, want only a", got)
		}

		for _, n := range nodes {
			n.faults.Heal()
		}
		waitApplied(t, nodes, "a", "b")
		apply(t, waitLeader(t, nodes), "c")
		waitApplied(t, nodes, "a", "b", "c")
	})
}
