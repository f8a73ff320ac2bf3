package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
	"github.com/flashstock/flashstock/internal/testcluster"
	"github.com/flashstock/flashstock/node"
)

// A multi-group cluster's backup is a directory with every data group's snapshot and a
// manifest; inspect checks it as a restore does (and refuses a damaged file), and
// stockd's restore seeds a fresh data dir from it, from which a node started with the
// same --groups serves every SKU as the source held it.
func TestBackup_MultiGroupDirRestoresEveryGroup(t *testing.T) {
	const groups = 3
	src := testcluster.Start(t, 1, node.DefaultConfig, node.New, func(cfg *node.Config) { cfg.Groups = groups })
	t.Setenv(envEndpoints, strings.Join(src.Addrs(), ","))
	t.Setenv(envToken, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(client.Config{Endpoints: src.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var view api.Cluster
	testcluster.Eventually(t, 20*time.Second, func() error {
		if view, err = cl.ClusterStatus(ctx); err != nil {
			return err
		}
		for _, g := range view.Groups {
			if g.Leader == "" {
				return fmt.Errorf("group %d has no leader", g.ID)
			}
		}
		if view.PlacementVersion == 0 {
			return fmt.Errorf("no placement yet")
		}
		return nil
	})
	pl := api.Placement{Groups: view.Groups}
	skus := map[uint64]string{}
	for i := 0; len(skus) < groups; i++ {
		sku := fmt.Sprintf("sku-%d", i)
		if id := pl.GroupOf(sku).ID; skus[id] == "" {
			skus[id] = sku
		}
	}
	for id, sku := range skus {
		if _, err := cl.CreateSKU(ctx, sku, 100); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Deduct(ctx, sku, int64(id), "u1"); err != nil {
			t.Fatal(err)
		}
	}

	dir := filepath.Join(t.TempDir(), "backup")
	out, errs, code := stockctl("backup", "--out", dir)
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errs)
	}
	for id := uint64(1); id <= groups; id++ {
		if !strings.Contains(out, fmt.Sprintf("group %d: group-%d.snap", id, id)) {
			t.Errorf("backup output does not list group %d:\n%s", id, out)
		}
	}
	if out, errs, code := stockctl("backup", "inspect", dir); code != 0 || !strings.Contains(out, "data groups:       3") {
		t.Fatalf("inspect: exit %d: %s%s", code, out, errs)
	}
	if _, errs, code := stockctl("backup", "--out", "-"); code != 2 || !strings.Contains(errs, "directory") {
		t.Errorf("a multi-group backup to standard output: exit %d: %s", code, errs)
	}
	man, err := node.ReadGroupBackup(dir)
	if err != nil {
		t.Fatal(err)
	}

	// A damaged copy is refused, by inspect and by a restore.
	bad := t.TempDir()
	for _, name := range []string{node.GroupBackupManifest, "group-1.snap", "group-2.snap", "group-3.snap"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "group-2.snap" {
			b[len(b)/2] ^= 0xff
		}
		if err := os.WriteFile(filepath.Join(bad, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, errs, code := stockctl("backup", "inspect", bad); code == 0 || !strings.Contains(errs, "group 2") {
		t.Errorf("inspect of a damaged group file: exit %d: %s", code, errs)
	}

	cfg := testcluster.Config(t, "r1", node.DefaultConfig)
	cfg.RaftAddr, cfg.HTTPAddr = freeAddr(t), freeAddr(t)
	if _, err := node.SeedGroupsFromBackup(cfg, bad); err == nil {
		t.Fatal("a restore from a damaged backup succeeded")
	}
	res, err := node.SeedGroupsFromBackup(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if f := man.Groups[i]; hex.EncodeToString(r.StateHash[:]) != f.StateHash || r.AppliedIndex != f.AppliedIndex {
			t.Errorf("group %d seeded at %d %x; the backup holds %d %s", f.ID, r.AppliedIndex, r.StateHash, f.AppliedIndex, f.StateHash)
		}
	}
	cfg.Groups = groups
	restored, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(restored.Kill)
	rcl, err := client.New(client.Config{Endpoints: []string{restored.HTTPAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer rcl.Close()
	for id, sku := range skus {
		testcluster.Eventually(t, 20*time.Second, func() error {
			s, err := rcl.GetSKU(ctx, sku)
			if err != nil {
				return err
			}
			if s.Sold != int64(id) || s.Available != 100-int64(id) {
				return fmt.Errorf("group %d's %s after the restore: %+v", id, sku, s)
			}
			return nil
		})
	}
	// The restored cluster sells on, and grows: a joiner gets a replica of every group.
	if _, err := rcl.Deduct(ctx, skus[2], 1, "u2"); err != nil {
		t.Fatal(err)
	}
	jcfg := testcluster.Config(t, "r2", node.DefaultConfig)
	jcfg.Join = []string{restored.HTTPAddr()}
	joiner, err := node.New(jcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(joiner.Kill)
	testcluster.Eventually(t, 60*time.Second, func() error {
		v, err := rcl.ClusterStatus(ctx)
		if err != nil {
			return err
		}
		for _, g := range v.Groups {
			voters := 0
			for _, r := range g.Replicas {
				if r.Role == api.Voter {
					voters++
				}
			}
			if g.Kind == api.GroupData && voters != 2 {
				return fmt.Errorf("group %d: replicas %+v", g.ID, g.Replicas)
			}
		}
		return nil
	})
	for id, sku := range skus {
		s, err := client.New(client.Config{Endpoints: []string{joiner.HTTPAddr()}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetSKU(ctx, sku, client.WithStale())
		s.Close()
		if err != nil || got.Sold < int64(id) {
			t.Fatalf("the joiner's replica of group %d reads %s: %+v %v", id, sku, got, err)
		}
	}
}

// freeAddr is a loopback address nothing listens on, for a node to take.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
