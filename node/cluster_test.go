package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/testcluster"
)

// testCluster is the shared in-process cluster (internal/testcluster) with the HTTP
// helpers node's tests speak to it with.
type testCluster struct {
	*testcluster.Cluster[Config, *Node]
	apiClient
}

// apiClient is the HTTP helpers node's tests speak the API with, to a raft cluster
// (testCluster) or to the unit tier's nodes (unitCluster).
type apiClient struct {
	t      testing.TB
	client *http.Client
}

// fastConfig is the config of a test node with id: see testcluster.Config.
func fastConfig(t testing.TB, id string) Config { return testcluster.Config(t, id, DefaultConfig) }

var eventually = testcluster.Eventually

// newCluster starts size nodes, each config changed by tweak (when not nil), and waits
// until every node knows every member.
func newCluster(t testing.TB, size int, tweak func(*Config)) *testCluster {
	t.Helper()
	c := emptyCluster(t)
	c.Boot(size, tweak)
	return c
}

// emptyCluster is a cluster without nodes, for tests that Add their own.
func emptyCluster(t testing.TB) *testCluster {
	t.Helper()
	c := &testCluster{Cluster: testcluster.New(t, DefaultConfig, New), apiClient: apiClient{t: t, client: &http.Client{Timeout: 10 * time.Second}}}
	c.Ready = membersKnown
	return c
}

// membersKnown is the cluster's Ready read from the nodes' insides rather than over HTTP,
// which tests with auth or a tiny rate limit cannot spare: the leader holds size member
// records, and every running node knows the leader's HTTP address (a member that has not
// yet applied the leader's record cannot forward; it answers no_leader).
func membersKnown(running []*Node, size int) error {
	var leader *Node
	for _, n := range running {
		if n.IsLeader() {
			leader = n
		}
	}
	if leader == nil {
		return fmt.Errorf("no leader")
	}
	if leader.metaGroup != nil {
		// A multi-group cluster's member records are its placement's nodes, and each
		// group a node hosts must know its leader.
		if p := leader.placement.Load(); p == nil || len(p.Nodes) != size {
			return fmt.Errorf("placement %+v, want %d nodes", p, size)
		}
		for _, n := range running {
			for _, g := range n.groupList() {
				if g.leaderHTTP() == "" {
					return fmt.Errorf("%s: group %d knows no leader yet", n.ID(), g.id)
				}
			}
		}
		return nil
	}
	m, err := leader.cluster.fsm.Members()
	if err != nil || len(m) != size {
		return fmt.Errorf("%d member records, want %d (%v)", len(m), size, err)
	}
	for _, n := range running {
		if n.cluster.leaderHTTP() == "" {
			return fmt.Errorf("%s does not know the leader's address yet", n.ID())
		}
	}
	return nil
}

// call does one HTTP request and decodes a 2xx body into out; a non-2xx answer comes back as
// *api.Error.
func (c *apiClient) call(addr, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		var eb api.ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error == nil {
			return resp.StatusCode, fmt.Errorf("HTTP %d without an error body: %s", resp.StatusCode, raw)
		}
		return resp.StatusCode, eb.Error
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %v", raw, err)
		}
	}
	return resp.StatusCode, nil
}

// mustCall is call that must succeed. An answer that says retry (an election on a loaded
// machine: no_leader, timeout) is retried with the same body, request id included, as the
// client does.
func (c *apiClient) mustCall(addr, method, path string, body any, out any) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.call(addr, method, path, body, out)
		if err == nil {
			return
		}
		var ae *api.Error
		if !errors.As(err, &ae) || !ae.Code.Retryable() || time.Now().After(deadline) {
			c.t.Fatalf("%s %s via %s: %v", method, path, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *testCluster) createSKU(sku string, stock int64) {
	c.t.Helper()
	_, l := c.WaitLeader()
	c.mustCall(l.HTTPAddr(), "PUT", "/v1/skus/"+sku, map[string]any{"stock": stock}, nil)
}

// converged waits until every running node holds the same state hash at the same index.
func (c *testCluster) converged() {
	c.t.Helper()
	eventually(c.t, 20*time.Second, func() error {
		var first [32]byte
		var firstIdx uint64
		for i, n := range c.Running() {
			h, err := n.cluster.fsm.StateHash()
			if err != nil {
				return err
			}
			if firstIdx == 0 {
				first, firstIdx = h, n.cluster.fsm.AppliedIndex()
				continue
			}
			if h != first {
				return fmt.Errorf("node %d: hash differs (applied %d vs %d)", i, n.cluster.fsm.AppliedIndex(), firstIdx)
			}
		}
		return nil
	})
	for _, n := range c.Running() {
		if err := n.cluster.fsm.CheckInvariants(); err != nil {
			c.t.Fatalf("%s: %v", n.ID(), err)
		}
	}
}

// buyer deducts with one request id, retrying it until a definite answer, as the client
// will. It returns the code of the definite answer and the response.
func (c *testCluster) buy(ctx context.Context, sku, reqID, user string, pick func() string) (api.Code, api.DeductResponse) {
	body := api.DeductRequest{Qty: 1, RequestID: reqID, UserID: user}
	for ctx.Err() == nil {
		var out api.DeductResponse
		_, err := c.call(pick(), "POST", "/v1/skus/"+sku+"/deduct", body, &out)
		if err == nil {
			return api.OK, out
		}
		var ae *api.Error
		if asAPI(err, &ae) && !ae.Code.Retryable() {
			return ae.Code, out
		}
		time.Sleep(20 * time.Millisecond)
	}
	return api.Timeout, api.DeductResponse{}
}

func asAPI(err error, out **api.Error) bool {
	ae, ok := err.(*api.Error)
	*out = ae
	return ok
}
