package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/testcluster"
	"github.com/flashstock/flashstock/node"
)

// TestRestoreAndRecover_Commands drives "stockd restore" and "stockd recover" the way an
// operator does, against the data of a real node.
func TestRestoreAndRecover_Commands(t *testing.T) {
	dir := t.TempDir()
	c := testcluster.Start(t, 1, node.DefaultConfig, node.New, func(cfg *node.Config) {
		cfg.ExpireInterval = time.Hour // keep the state still between backup and check
	})
	n := c.Node(0)
	defer n.Kill()
	base := "http://" + n.HTTPAddr()
	// The first write may meet the leader before its first entry applied: retry briefly.
	for deadline := time.Now().Add(10 * time.Second); ; {
		req, _ := http.NewRequest("PUT", base+"/v1/skus/tee", strings.NewReader(`{"stock":7}`))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 201 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("create: %v %v", resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	get := func(path string) []byte {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	backup := filepath.Join(dir, "b.snap")
	if err := os.WriteFile(backup, get("/v1/backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	var src api.DebugState
	json.Unmarshal(get("/v1/debug/state"), &src)

	var out, errw bytes.Buffer
	code := run([]string{"restore", backup, "--id", "m1", "--data-dir", filepath.Join(dir, "new"), "--raft-addr", "127.0.0.1:5999"}, &out, &errw)
	if code != 0 || !strings.Contains(out.String(), fmt.Sprintf("applied index %d, state hash %s", src.AppliedIndex, src.StateHash)) {
		t.Fatalf("restore: exit %d\n%s%s\nsource %+v", code, out.String(), errw.String(), src)
	}
	if code := run([]string{"restore", "--id", "m1"}, &out, &errw); code != 2 {
		t.Fatalf("restore without a file: exit %d", code)
	}

	// Recover the stopped source node as a one-member cluster of itself.
	n.Kill()
	peers := filepath.Join(dir, "peers.json")
	os.WriteFile(peers, []byte(fmt.Sprintf(`[{"id":"n1","address":%q,"non_voter":false}]`, n.RaftAddr())), 0o600)
	out.Reset()
	if code := run([]string{"recover", "--peers", peers, "--id", "n1", "--data-dir", c.Config(0).DataDir}, &out, &errw); code != 0 || !strings.Contains(out.String(), "recovered") {
		t.Fatalf("recover: exit %d\n%s%s", code, out.String(), errw.String())
	}
	if code := run([]string{"recover", "--id", "n1", "--data-dir", c.Config(0).DataDir}, &out, &errw); code != 2 {
		t.Fatalf("recover without --peers: exit %d", code)
	}
}
