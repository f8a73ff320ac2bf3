package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/testcluster"
	"github.com/flashstock/flashstock/node"
)

var eventually = testcluster.Eventually

// An operator's session against a real three-node cluster: create a SKU, sell it out,
// join a fourth node, remove one, and see it all in the status.
func TestSession_OperatorOnRealCluster(t *testing.T) {
	c := testcluster.Start(t, 3, node.DefaultConfig, node.New, nil)
	endpoints := strings.Join(c.Addrs(), ",")
	t.Setenv(envEndpoints, endpoints) // the environment variable, as a shell profile would set it
	t.Setenv(envToken, "")

	// sh runs one command line and checks its exit status.
	sh := func(wantCode int, line string) string {
		t.Helper()
		out, errs, code := stockctl(strings.Fields(line)...)
		if code != wantCode {
			t.Fatalf("stockctl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", line, code, wantCode, out, errs)
		}
		return out + errs
	}
	status := func() api.Cluster {
		t.Helper()
		var st api.Cluster
		if err := json.Unmarshal([]byte(sh(0, "cluster status --json")), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	members := func(st api.Cluster) string {
		var ids []string
		for _, n := range st.Nodes {
			if n.Role != api.RoleUnknown {
				ids = append(ids, n.ID)
			}
		}
		return strings.Join(ids, ",")
	}
	eventually(t, 20*time.Second, func() error {
		if got := members(status()); got != "n1,n2,n3" {
			return fmt.Errorf("members up: %s", got)
		}
		return nil
	})

	// Sell out.
	var s api.SKU
	if err := json.Unmarshal([]byte(sh(0, "sku create tee --stock 2 --limit 1 --json")), &s); err != nil || s.Available != 2 {
		t.Fatalf("created %+v (%v)", s, err)
	}
	if out := sh(0, "deduct tee --user ann"); !strings.Contains(out, "1 left") {
		t.Fatalf("deduct: %s", out)
	}
	if out := sh(exitRejected, "deduct tee --user ann"); !strings.Contains(out, "limit_exceeded") {
		t.Fatalf("second unit for ann: %s", out)
	}
	sh(0, "deduct tee --user bob")
	if out := sh(exitRejected, "deduct tee --user cy"); !strings.Contains(out, "sold_out") {
		t.Fatalf("deduct past the stock: %s", out)
	}
	if out := sh(0, "sku get tee"); !strings.Contains(out, "tee  0          0         2") {
		t.Fatalf("sold-out SKU:\n%s", out)
	}
	sh(exitNotFound, "sku get shoe")

	// Restock, reserve, confirm; the ledger and a watch show it.
	sh(0, "sku restock tee --qty 3")
	sh(0, "order reserve o-1 --user dan --line tee:1 --ttl 1m")
	if out := sh(0, "order confirm o-1"); !strings.Contains(out, "confirmed") {
		t.Fatalf("confirm: %s", out)
	}
	var o api.Order
	if err := json.Unmarshal([]byte(sh(0, "order get o-1 --json")), &o); err != nil || o.Status != api.OrderConfirmed {
		t.Fatalf("order %+v (%v)", o, err)
	}
	if out := sh(0, "sku history tee"); strings.Count(out, "deduct") != 2 || !strings.Contains(out, "o-1") {
		t.Fatalf("history:\n%s", out)
	}
	if out := sh(0, "sku watch tee --count 1 --json"); !strings.Contains(out, `"available":2`) {
		t.Fatalf("watch: %s", out)
	}

	// Join a fourth node: started on its own, it waits to be added.
	n4 := c.Add(c.NewConfig("n4"))
	sh(0, fmt.Sprintf("cluster join --id n4 --raft-addr %s --http-addr %s", n4.RaftAddr(), n4.HTTPAddr()))
	eventually(t, 20*time.Second, func() error {
		if got := members(status()); got != "n1,n2,n3,n4" {
			return fmt.Errorf("members up: %s", got)
		}
		return nil
	})

	// Remove a follower (not n4), and the status shows it gone.
	leader := status().Leader
	gone := "n2"
	if leader == "n2" {
		gone = "n3"
	}
	sh(0, "cluster leave "+gone)
	eventually(t, 20*time.Second, func() error {
		st := status()
		if len(st.Nodes) != 3 || strings.Contains(members(st), gone) || !strings.Contains(members(st), "n4") {
			return fmt.Errorf("status after removing %s: %+v", gone, st.Nodes)
		}
		return nil
	})
	// n4 shows the configuration its own log has reached, which may trail the leader's.
	eventually(t, 10*time.Second, func() error {
		if out := sh(0, "cluster status --endpoints "+n4.HTTPAddr()); !strings.Contains(out, "n4") || strings.Contains(out, gone+" ") {
			return fmt.Errorf("status table through the new node:\n%s", out)
		}
		return nil
	})

	// A backup of the state, written whole.
	file := filepath.Join(t.TempDir(), "state.snap")
	sh(0, "backup --out "+file)
	if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
		t.Fatalf("backup file: %v", err)
	}
}
