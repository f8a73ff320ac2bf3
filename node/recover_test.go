package node

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestSeedFromBackup_NewClusterContinuesAboveTheBackup(t *testing.T) {
	// The source: a 3-node cluster with some history. No expiry ticks, so it stays still
	// between the backup and the state check.
	src := newCluster(t, 3, func(cfg *Config) { cfg.ExpireInterval = time.Hour })
	src.createSKU("tee", 10)
	src.createSKU("cap", 5)
	_, sl := src.WaitLeader()
	for i := range 4 {
		src.mustCall(sl.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("r%d", i), UserID: "u"}, nil)
	}
	var before api.DebugState
	src.mustCall(sl.HTTPAddr(), "GET", "/v1/debug/state", nil, &before)
	resp, err := http.Get("http://" + sl.HTTPAddr() + "/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	backup.ReadFrom(resp.Body)
	resp.Body.Close()
	var after api.DebugState
	src.mustCall(sl.HTTPAddr(), "GET", "/v1/debug/state", nil, &after)
	if before != after {
		t.Fatalf("the source moved during the backup: %+v then %+v", before, after)
	}

	// Seed a new cluster's first node from the backup: its state is the source's, hash
	// and applied index included.
	cfg := fastConfig(t, "m1")
	cfg.RaftAddr = freeAddr(t)
	seeded, err := SeedFromBackup(cfg, &backup)
	if err != nil {
		t.Fatal(err)
	}
	if seeded.AppliedIndex != before.AppliedIndex || hex.EncodeToString(seeded.StateHash[:]) != before.StateHash {
		t.Fatalf("seeded state %d %x, source %+v", seeded.AppliedIndex, seeded.StateHash, before)
	}
	if _, err := SeedFromBackup(cfg, bytes.NewReader(nil)); err == nil {
		t.Fatal("seeding a data dir twice was accepted")
	}

	c := emptyCluster(t)
	n1 := c.Add(cfg)
	c.WaitLeader()
	var s api.SKU
	c.mustCall(n1.HTTPAddr(), "GET", "/v1/skus/tee", nil, &s)
	if s.Sold != 4 || s.Available != 6 {
		t.Fatalf("restored sku %+v", s)
	}
	// New writes land above the backup's index and are applied (not skipped as old).
	var out api.DeductResponse
	c.mustCall(n1.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "new", UserID: "u"}, &out)
	if out.Remaining != 5 || out.Duplicate {
		t.Fatalf("first deduct of the new cluster: %+v", out)
	}
	c.mustCall(n1.HTTPAddr(), "GET", "/v1/skus/tee", nil, &s)
	if s.Version <= before.AppliedIndex {
		t.Fatalf("version %d not above the backup's index %d", s.Version, before.AppliedIndex)
	}
	// The exactly-once table came along: an old request answers as the first time.
	c.mustCall(n1.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "r1", UserID: "u"}, &out)
	if !out.Duplicate {
		t.Fatalf("an old request id after the restore: %+v", out)
	}
	// Members join the new cluster; the source's member records are pruned.
	for _, id := range []string{"m2", "m3"} {
		jc := fastConfig(t, id)
		jc.Join = []string{n1.HTTPAddr()}
		c.Add(jc)
	}
	c.WaitReady(3)
	c.converged()
}

func TestRecoverCluster_SurvivorOfALostQuorumGrowsBackToThree(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("tee", 100)
	_, l := c.WaitLeader()
	for i := range 5 {
		c.mustCall(l.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("r%d", i), UserID: "u"}, nil)
	}
	c.converged()
	// Two nodes are lost for good; the survivor is stopped, as recovery requires.
	const survivor = 0
	for i := range 3 {
		c.Node(i).Kill()
	}
	cfg := *c.Config(survivor)
	res, err := RecoverCluster(cfg, raft.Configuration{Servers: []raft.Server{
		{ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(cfg.RaftAddr), Suffrage: raft.Voter},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.AppliedIndex == 0 {
		t.Fatalf("recovered state at index 0: %+v", res)
	}
	c.Restart(survivor)
	n := c.Node(survivor)
	c.WaitLeader()
	var s api.SKU
	c.mustCall(n.HTTPAddr(), "GET", "/v1/skus/tee", nil, &s)
	if s.Sold != 5 {
		t.Fatalf("survivor's sku %+v", s)
	}
	c.mustCall(n.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "alone", UserID: "u"}, nil)
	// Grow back to three with fresh nodes.
	for _, id := range []string{"n4", "n5"} {
		jc := fastConfig(t, id)
		jc.Join = []string{n.HTTPAddr()}
		c.Add(jc)
	}
	c.WaitReady(3)
	c.converged()
	var cl api.Cluster
	c.mustCall(n.HTTPAddr(), "GET", "/v1/cluster", nil, &cl)
	if len(cl.Nodes) != 3 {
		t.Fatalf("cluster after growing back: %+v", cl.Nodes)
	}
	c.mustCall(c.LeaderAddr(), "GET", "/v1/skus/tee", nil, &s)
	if s.Sold != 6 {
		t.Fatalf("sku after growing back: %+v", s)
	}
}
