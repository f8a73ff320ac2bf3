package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/node"
)

// startCluster runs a real 3-node cluster in this process (raft over loopback TCP, bbolt
// files under t.TempDir()) and waits for a leader and all three members.
func startCluster(t *testing.T) []*node.Node {
	t.Helper()
	var nodes []*node.Node
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		cfg := node.DefaultConfig()
		cfg.ID = id
		cfg.DataDir = filepath.Join(t.TempDir(), id)
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.RaftAddr = "127.0.0.1:0"
		cfg.HeartbeatTimeout = 200 * time.Millisecond
		cfg.ElectionTimeout = 200 * time.Millisecond
		cfg.LeaderLeaseTimeout = 100 * time.Millisecond
		cfg.RequestTimeout = 5 * time.Second
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: testWriter{t}})
		cfg.OnFatal = func(err error) { t.Errorf("node %s fatal: %v", id, err) }
		if i == 1 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = []string{nodes[0].HTTPAddr()}
		}
		n, err := node.New(cfg)
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		t.Cleanup(n.Kill)
		nodes = append(nodes, n)
		if i == 1 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := n.WaitLeader(ctx)
			cancel()
			if err != nil {
				t.Fatalf("%s never became leader: %v", id, err)
			}
		}
	}
	eventually(t, 15*time.Second, func() error {
		var c api.Cluster
		if err := getJSON(nodes[0].HTTPAddr(), "/v1/cluster", &c); err != nil {
			return err
		}
		if c.Leader == "" || len(c.Nodes) != 3 {
			return fmt.Errorf("leader %q, %d members; want a leader and 3", c.Leader, len(c.Nodes))
		}
		return nil
	})
	return nodes
}

func leaderOf(t *testing.T, nodes []*node.Node) *node.Node {
	t.Helper()
	var leader *node.Node
	eventually(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if n.IsLeader() {
				leader = n
				return nil
			}
		}
		return fmt.Errorf("no leader among %d nodes", len(nodes))
	})
	return leader
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func getJSON(addr, path string, out any) error {
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// call sends a JSON request and fails the test unless the answer has the wanted status.
func call(t *testing.T, method, addr, path string, body any, want int) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var e api.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("%s %s: HTTP %d %+v, want %d", method, path, resp.StatusCode, e.Error, want)
	}
}

func eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testWriter sends logs to t.Log, so they show only for failing tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
