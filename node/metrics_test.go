package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/version"
)

// scrape returns the /metrics text of a node.
func scrape(t testing.TB, c *testCluster, n *Node) string {
	t.Helper()
	a := do(t, c.client, "GET", "http://"+n.HTTPAddr()+"/metrics", nil, "")
	if a.status != 200 {
		t.Fatalf("metrics: %d %v", a.status, a.err)
	}
	return string(a.body)
}

// sample finds the value of the series whose line starts with prefix (name and labels).
func sample(text, prefix string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok && strings.HasPrefix(rest, " ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

func TestMetrics_NodeAndRaftSeries(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.StockMetricsSKUs = []string{"tee"}; cfg.StockMetricsTop = 1 })
	c.createSKU("tee", 3)
	c.createSKU("cap", 9)
	_, l := c.WaitLeader()
	for i := range 4 { // three sales, then sold out through the log (no first-try header)
		c.call(l.HTTPAddr(), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: fmt.Sprintf("r%d", i), UserID: "u"}, nil)
	}
	if code, _ := c.deductTry(l.HTTPAddr(), "tee", "first", 1, 1); code != 409 {
		t.Fatalf("first try on a sold-out SKU: %d", code)
	}
	c.call(l.HTTPAddr(), "POST", "/v1/skus/cap/deduct", api.DeductRequest{Qty: 2, RequestID: "c1", UserID: "u"}, nil)

	want := map[string]float64{
		`flashstock_deductions_total{duplicate="false",group="1"}`:                                    4,
		`flashstock_deducted_units_total{group="1"}`:                                                  5,
		`flashstock_rejections_total{command="deduct",group="1",path="log",reason="sold_out"}`:        1,
		`flashstock_rejections_total{command="deduct",group="1",path="fast_path",reason="sold_out"}`:  1,
		`flashstock_http_requests_total{code="200",method="POST",route="POST /v1/skus/{sku}/deduct"}`: 4,
		`flashstock_sku_units{column="sold",group="1",sku="tee"}`:                                     3,
		`flashstock_sku_units{column="available",group="1",sku="tee"}`:                                0,
		`flashstock_raft_leader{group="1"}`:                                                           1,
	}
	build := version.Get()
	want[fmt.Sprintf(`flashstock_build_info{goversion=%q,revision=%q,version=%q}`, build.GoVersion, build.Revision, build.Version)] = 1
	var text string
	// raft reports some of its metrics after the answer went out: poll.
	eventually(t, 10*time.Second, func() error {
		text = scrape(t, c, l)
		for series, v := range want {
			if got, ok := sample(text, series); !ok || got != v {
				return fmt.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
			}
		}
		for _, name := range []string{
			// hashicorp/raft's and raft-boltdb's own, through go-metrics' compat package
			// and our sink (raftSink).
			"raft_commitTime_count", "raft_fsm_applyBatch_sum", "raft_apply", "raft_boltdb_storeLogs_count",
			// ours around the fsm and the log store.
			"flashstock_fsm_apply_batch_seconds_count", "flashstock_raft_store_logs_seconds_count",
			"flashstock_http_request_duration_seconds_bucket", `flashstock_raft_state{group="1",state="leader"} 1`,
			"flashstock_raft_commit_index", "flashstock_fsm_applied_index", "flashstock_raft_last_contact_seconds",
		} {
			if !strings.Contains(text, "\n"+name) {
				return fmt.Errorf("no %s series", name)
			}
		}
		return nil
	})
	// Raft's per-RPC timings are not exported (unexportedRaftKeys): every heartbeat would be
	// a sample through the sink.
	for _, prefix := range []string{"raft_rpc_", "raft_net_", "raft_replication_heartbeat", "raft_replication_appendEntries_"} {
		if strings.Contains(text, "\n"+prefix) {
			t.Errorf("a %s* series is exported:\n%s", prefix, grep(text, prefix))
		}
	}
	// The stock series are bounded: only the listed SKU and the top seller (tee again).
	if strings.Contains(text, `sku="cap"`) {
		t.Errorf("stock series of an unchosen SKU:\n%s", grep(text, "flashstock_sku_units"))
	}
	// A follower reports its own view.
	f := c.Node((indexOfNode(c, l) + 1) % 3)
	ftext := scrape(t, c, f)
	if v, ok := sample(ftext, `flashstock_raft_leader{group="1"}`); !ok || v != 0 {
		t.Errorf("follower's flashstock_raft_leader = %v %v", v, ok)
	}
}

func grep(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func indexOfNode(c *testCluster, n *Node) int {
	for i, m := range c.Running() {
		if m == n {
			return i
		}
	}
	return -1
}

func TestOptionalHandlers_PprofForAdminsAndUIForEveryone(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "dashboard at "+r.URL.Path) })
	c := newUnit(t, unitSpec{config: func(cfg *Config) { cfg.EnablePprof, cfg.Auth, cfg.UI = true, testTokens(t), ui }})
	addr := "http://" + c.addr(0)
	if a := do(t, c.client, "GET", addr+"/debug/pprof/cmdline", nil, readTok); a.status != 403 {
		t.Fatalf("pprof with a read token: %d", a.status)
	}
	if a := do(t, c.client, "GET", addr+"/debug/pprof/cmdline", nil, adminTok); a.status != 200 {
		t.Fatalf("pprof with the admin token: %d %v", a.status, a.err)
	}
	// A browser loads the page without a token (the page then asks for one for the API),
	// while the data behind it still needs one.
	if a := do(t, c.client, "GET", addr+"/ui/app.js", nil, ""); a.status != 200 || string(a.body) != "dashboard at /ui/app.js" {
		t.Fatalf("ui without a token: %d %s", a.status, a.body)
	}
	if a := do(t, c.client, "GET", addr+"/v1/cluster", nil, ""); a.status != 401 {
		t.Fatalf("cluster view without a token while reads need one: %d", a.status)
	}
	// The node's bare address sends a browser to the dashboard.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET / without a token: %d, Location %q; want 302 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	c2 := newUnit(t, unitSpec{})
	if a := do(t, c2.client, "GET", "http://"+c2.addr(0)+"/", nil, ""); a.status != 404 {
		t.Fatalf("GET / without a dashboard: %d", a.status)
	}
	if a := do(t, c2.client, "GET", "http://"+c2.addr(0)+"/debug/pprof/cmdline", nil, ""); a.status != 404 {
		t.Fatalf("pprof without EnablePprof: %d", a.status)
	}
}

// TestClusterView_EachMemberReportsItsOwnVersion: the version in GET /v1/cluster is each
// member's own answer, asked live, so a member that is down shows none rather than a
// version it may no longer run (after an upgrade, say).
func TestClusterView_EachMemberReportsItsOwnVersion(t *testing.T) {
	c := newCluster(t, 3, nil)
	li, l := c.WaitLeader()
	down := (li + 1) % 3
	downID := c.Node(down).ID()
	c.Node(down).Shutdown(context.Background())

	build := version.Get()
	var cl api.Cluster
	c.mustCall(l.HTTPAddr(), "GET", "/v1/cluster", nil, &cl)
	if len(cl.Nodes) != 3 {
		t.Fatalf("cluster view: %+v", cl)
	}
	for _, m := range cl.Nodes {
		want := build.Version
		if m.ID == downID {
			want = ""
		}
		if m.Version != want || m.Version != "" && m.Revision != build.Revision {
			t.Errorf("member %s: version %q revision %q, want %q %q", m.ID, m.Version, m.Revision, want, build.Revision)
		}
	}
}
