package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

func TestWatch_StreamsChanges(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("tee", 10)
	li, _ := c.waitLeader()
	// Watching through a follower right after the create: it may not have applied the SKU
	// yet, and must wait for it rather than answer not_found.
	follower := c.get((li + 1) % 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+follower.HTTPAddr()+"/v1/skus/tee/watch", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	if got := resp.Header.Get(api.HeaderLeader); got != c.get(li).HTTPAddr() {
		t.Fatalf("leader hint %q, want %q", got, c.get(li).HTTPAddr())
	}
	events := make(chan api.SKU, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var s api.SKU
				if json.Unmarshal([]byte(data), &s) == nil {
					events <- s
				}
			}
		}
	}()
	next := func() api.SKU {
		select {
		case s, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return s
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return api.SKU{}
	}
	if s := next(); s.Available != 10 {
		t.Fatalf("first event %+v", s)
	}
	for i, want := range []int64{9, 8} {
		c.mustCall(c.leaderAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "w" + string(rune('a'+i)), UserID: "u"}, nil)
		// A watcher may skip intermediate states, never go backwards or miss the last one.
		for s := next(); s.Available != want; s = next() {
			if s.Available < want {
				t.Fatalf("event %+v went past %d", s, want)
			}
		}
	}
}

func TestBackup_RestoresToTheSameState(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.createSKU("tee", 10)
	addr := c.get(0).HTTPAddr()
	c.mustCall(addr, "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 4, RequestID: "b1", UserID: "u"}, nil)
	resp, err := http.Get("http://" + addr + "/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	snap, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get(api.HeaderAppliedIndex) == "" {
		t.Fatalf("backup: %d %v", resp.StatusCode, resp.Header)
	}
	m, err := fsm.Open(filepath.Join(t.TempDir(), "restored.db"), fsm.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	s, err := m.GetSKU("tee")
	if err != nil || s.Sold != 4 || s.Available != 6 {
		t.Fatalf("restored %+v %v", s, err)
	}
}

func TestHealthAndReady(t *testing.T) {
	c := newCluster(t, 1, nil)
	addr := c.get(0).HTTPAddr()
	var h api.Health
	c.mustCall(addr, "GET", "/healthz", nil, &h)
	c.mustCall(addr, "GET", "/readyz", nil, &h)
	if h.Status != "ok" || h.Leader != "n1" {
		t.Fatalf("ready %+v", h)
	}
	// A node that is not part of any cluster yet is alive but not ready.
	cfg := fastConfig(t, "lonely")
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Kill()
	c.mustCall(n.HTTPAddr(), "GET", "/healthz", nil, &h)
	if code, err := c.call(n.HTTPAddr(), "GET", "/readyz", nil, &h); code != 503 || err == nil {
		t.Fatalf("readyz of a lone node: %d %v", code, err)
	}
}

func TestConfig_ValidateNamesEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Bootstrap, cfg.Join = true, []string{"x:1"}
	cfg.HTTPAddr = "nope"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("broken config accepted")
	}
	for _, want := range []string{"id is required", "data dir is required", "http addr", "raft addr", "bootstrap and join"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

func TestDebugState_ReplicasAgree(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.createSKU("tee", 10)
	c.mustCall(c.leaderAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "d", UserID: "u"}, nil)
	eventually(t, 10*time.Second, func() error {
		var first api.DebugState
		for i, n := range c.running() {
			var st api.DebugState
			c.mustCall(n.HTTPAddr(), "GET", "/v1/debug/state", nil, &st)
			if st.Invariants != "ok" || len(st.StateHash) != 64 {
				t.Fatalf("%s: %+v", n.ID(), st)
			}
			if i == 0 {
				first = st
			} else if st.AppliedIndex != first.AppliedIndex || st.StateHash != first.StateHash {
				return fmt.Errorf("%s at %d, %s at %d: hashes %s / %s", first.ID, first.AppliedIndex, st.ID, st.AppliedIndex, first.StateHash[:8], st.StateHash[:8])
			}
		}
		return nil
	})
}
