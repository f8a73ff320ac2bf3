package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestDevCluster_StartsServesAndStops runs the steps of "stockd dev" on free ports: every
// node joins, the banner names each endpoint, and shutdown stops them all.
func TestDevCluster_StartsServesAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster; run without -short")
	}
	o, err := parseDevOptions([]string{"--http-port", "0", "--raft-port", "0", "--base-dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	baseDir, remove, err := createBaseDir(o)
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	c, err := startDevCluster(o, baseDir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer c.shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	view, err := c.waitReady(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(view.Nodes) != 3 || view.Leader == "" {
		t.Fatalf("cluster view %+v", view)
	}

	var banner bytes.Buffer
	printDevBanner(&banner, c, view, baseDir, o)
	for _, n := range c.nodes {
		if !strings.Contains(banner.String(), "http://"+n.HTTPAddr()) {
			t.Errorf("banner lacks %s's endpoint:\n%s", n.ID(), banner.String())
		}
	}
	if !strings.Contains(banner.String(), "/deduct") {
		t.Errorf("banner lacks the deduct example:\n%s", banner.String())
	}

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer stopCancel()
	if err := c.shutdown(stopCtx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	for _, n := range c.nodes {
		select {
		case <-n.Done():
		default:
			t.Errorf("%s still running after shutdown", n.ID())
		}
	}
	// The data holds the members' raft addresses: a restart on free ports could never
	// reach them, so it is refused; on fixed ports it may go ahead.
	if _, _, err := createBaseDir(o); err == nil || !strings.Contains(err.Error(), "holds a cluster") {
		t.Errorf("restart on free ports over a kept cluster: %v", err)
	}
	fixed := *o
	fixed.httpPort, fixed.raftPort = 4001, 5001
	if _, _, err := createBaseDir(&fixed); err != nil {
		t.Errorf("restart on fixed ports: %v", err)
	}
}

func TestCreateBaseDir_TempRemovedUnlessKept(t *testing.T) {
	for _, keep := range []bool{false, true} {
		dir, remove, err := createBaseDir(&devOptions{keep: keep})
		if err != nil {
			t.Fatal(err)
		}
		remove()
		_, statErr := os.Stat(dir)
		if exists := statErr == nil; exists != keep {
			t.Errorf("keep=%v: dir exists after remove = %v", keep, exists)
		}
		if keep {
			os.RemoveAll(dir)
		}
	}
}
