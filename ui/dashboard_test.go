package ui_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
	"github.com/flashstock/flashstock/internal/testcluster"
	"github.com/flashstock/flashstock/node"
	"github.com/flashstock/flashstock/ui"
)

var screenshot = flag.Bool("ui.screenshot", false, "write ../docs/dashboard.png from the browser test (the README's image)")

const chromiumPath = "/usr/bin/chromium"

// TestDashboard_ShowsLiveCluster drives Debian's headless Chromium against the dashboard of
// a real 3-node cluster: the page must name the leader, list a created SKU, follow sales
// made through the API (both on a row fed by server-sent events and on a polled row),
// and mark a member that went down as unreachable.
func TestDashboard_ShowsLiveCluster(t *testing.T) {
	exe := findChromium(t)
	start := time.Now()

	c := testcluster.Start(t, 3, node.DefaultConfig, node.New, nil)
	_, leader := c.WaitLeader()
	nodes := c.Nodes()
	srv := serveDashboard(t, leader.HTTPAddr())

	// Listed in name order: the first three rows are live (watched), the rest polled.
	skus := []struct {
		id           string
		stock, limit int
	}{{"console-5", 40, 1}, {"hoodie-l", 120, 0}, {"phone-x1", 300, 0}, {"sneaker-42", 250, 2}, {"tee-red-m", 500, 0}}
	for _, s := range skus {
		call(t, "PUT", leader.HTTPAddr(), "/v1/skus/"+s.id, map[string]int{"stock": s.stock, "per_user_limit": s.limit}, http.StatusCreated)
	}

	b := newBrowser(t, exe)
	if err := chromedp.Do(b.ctx, chromedp.Navigate(srv.URL+"/ui/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}

	b.waitText(t, "the leader's id", `document.getElementById('leader-id').textContent`, isLeaderOf(leader))
	b.waitText(t, "three members, the leader's row marked",
		`[...document.querySelectorAll('#cluster-table tr[data-node]')].map(r => r.dataset.node + (r.classList.contains('is-leader') ? '*' : '')).join(',')`,
		func(got string) error {
			id, err := clusterLeader(leader)
			if err != nil {
				return err
			}
			return equals(strings.Replace("n1,n2,n3", id, id+"*", 1))(got)
		})
	b.waitText(t, "one data group holding every slot on the three members",
		`[...document.querySelectorAll('#group-table tr[data-group]')].map(r => [...r.cells].map(c => c.textContent).join('|')).join(';')`,
		func(got string) error {
			id, err := clusterLeader(leader)
			if err != nil {
				return err
			}
			return equals("1|data|" + id + "|n1, n2, n3|0\u20131023")(got)
		})
	for _, s := range skus {
		b.waitText(t, s.id+" listed with nothing sold", soldCell(s.id), equals("0"))
	}
	b.waitText(t, "phone-x1 fed by its watch", `document.querySelector('tr[data-sku="phone-x1"] .badge').textContent`, equals("● live"))
	b.waitText(t, "tee-red-m polled", `document.querySelector('tr[data-sku="tee-red-m"] .badge').textContent`, equals("polled 1 s"))

	// Sales through the API, spread over a few seconds so the chart has a shape.
	sold := sell(t, nodes, "a", map[string]int{"phone-x1": 60, "tee-red-m": 45, "hoodie-l": 30, "console-5": 40}, 3*time.Second)
	for sku, n := range sold {
		b.waitText(t, sku+"'s sold count after the sales", soldCell(sku), equals(fmt.Sprint(n)))
	}
	b.waitText(t, "console-5 sold out", `document.querySelector('tr[data-sku="console-5"] td.available').textContent`, equals("sold out"))
	b.waitText(t, "a deductions/s figure", `document.getElementById('deduct-rate').textContent`, isNumber)
	// A buyer too late: rejected, nothing sold (a rejection for the rejections/s counter).
	if err := deductOnce(nodes, "console-5", "late"); !errors.Is(err, client.ErrSoldOut) {
		t.Fatalf("a deduction from a sold-out SKU: %v, want sold out", err)
	}

	// Rejections/s is a number when the node exports the counter and "n/a" when it does not.
	var metrics bytes.Buffer
	if err := getText(leader.HTTPAddr(), "/metrics", &metrics); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(metrics.String(), "flashstock_rejections_total") {
		b.waitText(t, "a rejections/s figure", `document.getElementById('reject-rate').textContent`, isNumber)
	} else {
		b.waitText(t, "rejections/s shown as n/a", `document.getElementById('reject-rate').textContent`, equals("n/a"))
	}
	b.waitText(t, "the counter parser sums label sets",
		`String(flashstock.sumCounter('# TYPE flashstock_rejections_total counter\nflashstock_rejections_total{code="sold_out"} 3\nflashstock_rejections_total{code="overloaded"} 4.5\nflashstock_rejections_totally 9\n', 'flashstock_rejections_total'))`,
		equals("7.5"))

	if *screenshot {
		// A sale that ramps up and down, with late buyers of the sold-out SKU, so the charts
		// in the README have a shape.
		for i, rate := range []int{8, 20, 40, 64, 80, 72, 56, 40, 28, 16} {
			var late sync.WaitGroup
			for k := range rate / 5 {
				late.Go(func() {
					if err := deductOnce(nodes, "console-5", fmt.Sprintf("late-%d-%d", i, k)); !errors.Is(err, client.ErrSoldOut) {
						t.Errorf("late buyer: %v, want sold out", err)
					}
				})
			}
			sell(t, nodes, fmt.Sprintf("ramp%d", i), map[string]int{"tee-red-m": rate * 2 / 3, "phone-x1": rate / 3}, time.Second)
			late.Wait()
		}
		b.screenshot(t, filepath.Join("..", "docs", "dashboard.png"))
	}

	// A follower goes down: its row says so, the leader stays shown.
	var victim = nodes[0]
	for _, n := range nodes {
		if n != leader {
			victim = n
		}
	}
	victim.Kill()
	b.waitText(t, victim.ID()+" shown unreachable",
		fmt.Sprintf(`document.querySelector('#cluster-table tr[data-node="%s"] .badge').textContent`, victim.ID()), equals("unreachable"))
	b.waitText(t, "the member count notes it", `document.getElementById('members-sub').textContent`, contains("1 unreachable"))
	b.waitText(t, "a leader still shown", `document.getElementById('leader-id').textContent`, isLeaderOf(leader))

	b.checkNoErrors(t)
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

// TestDashboard_ShowsGroups: a cluster created with --groups 3 shows its meta group and
// its three data groups, each with its leader and the slot range it owns.
func TestDashboard_ShowsGroups(t *testing.T) {
	exe := findChromium(t)
	c := testcluster.Start(t, 1, node.DefaultConfig, node.New, func(cfg *node.Config) { cfg.Groups = 3 })
	_, n := c.WaitLeader()
	cl, err := client.New(client.Config{Endpoints: []string{n.HTTPAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	testcluster.Eventually(t, 10*time.Second, func() error {
		cl, err := cl.ClusterStatus(context.Background())
		if err != nil {
			return err
		}
		for _, g := range cl.Groups {
			if g.Leader == "" {
				return fmt.Errorf("group %d has no leader yet", g.ID)
			}
		}
		if len(cl.Groups) != 4 {
			return fmt.Errorf("%d groups, want 4", len(cl.Groups))
		}
		return nil
	})
	srv := serveDashboard(t, n.HTTPAddr())
	b := newBrowser(t, exe)
	if err := chromedp.Do(b.ctx, chromedp.Navigate(srv.URL+"/ui/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	b.waitText(t, "the meta group and three data groups, each led by n1",
		`[...document.querySelectorAll('#group-table tr[data-group]')].map(r => [...r.cells].map(c => c.textContent).join('|')).join(';')`,
		equals("0|meta|n1|n1|placement;1|data|n1|n1|0\u2013340;2|data|n1|n1|341\u2013681;3|data|n1|n1|682\u20131023"))
	b.waitText(t, "the summary", `document.getElementById('groups-sub').textContent`, contains("3 data groups + meta, placement v"))
	b.checkNoErrors(t)
}

// TestDashboard_ShowsErrorsWhenTheNodeIsGone: with no API behind the page, it says what
// failed instead of showing nothing or stale numbers as if they were live.
func TestDashboard_ShowsErrorsWhenTheNodeIsGone(t *testing.T) {
	exe := findChromium(t)
	mux := http.NewServeMux()
	mux.Handle("/ui/", http.StripPrefix("/ui", ui.Handler()))
	mux.HandleFunc("/v1/cluster", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":"no_leader","message":"no leader known"}}`)
	})
	srv := httptest.NewServer(mux) // everything else is the mux's 404
	t.Cleanup(srv.Close)

	b := newBrowser(t, exe)
	if err := chromedp.Do(b.ctx, chromedp.Navigate(srv.URL+"/ui/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	b.waitText(t, "the API error in the banner", `document.getElementById('banner').hidden ? '' : document.getElementById('banner').textContent`,
		contains("503 no_leader: no leader known"))
	b.waitText(t, "the degraded status", `document.getElementById('status').textContent`, equals("Degraded"))
	b.waitText(t, "rejections/s n/a without /metrics", `document.getElementById('reject-rate').textContent`, equals("n/a"))
	b.checkNoErrors(t)
}

// findChromium returns the browser the browser tests drive. Without one they skip, so that
// `make test` passes on a machine with Go alone; under CI (CI=true), which installs Chromium
// (.ci/run), a missing browser fails them instead, so they cannot be skipped there unseen.
func findChromium(t testing.TB) string {
	t.Helper()
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return requireChromium(t, lookChromium(), ci)
}

// lookChromium finds Debian's Chromium, or any chromium on PATH; "" when there is none.
func lookChromium() string {
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// requireChromium returns exe, or without one skips the test, or fails it under CI.
func requireChromium(t testing.TB, exe string, ci bool) string {
	t.Helper()
	if exe != "" {
		return exe
	}
	const install = "install it with\n\n\tapt-get update && apt-get install -y chromium\n"
	if ci {
		t.Fatalf("CI=true and no Chromium at %s or on PATH: the dashboard's browser tests must run in CI; %s(.ci/run does this before make test)", chromiumPath, install)
	}
	t.Skipf("no Chromium at %s or on PATH: skipping the dashboard's browser test; to run it, %s(under CI=true a missing browser fails instead)", chromiumPath, install)
	return ""
}

// serveDashboard puts the dashboard and the node's API on one origin, as a node does.
func serveDashboard(t *testing.T, apiAddr string) *httptest.Server {
	t.Helper()
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: apiAddr})
	mux := http.NewServeMux()
	mux.Handle("/ui/", http.StripPrefix("/ui", ui.Handler()))
	mux.Handle("/v1/", proxy)
	mux.Handle("/metrics", proxy)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections() // open watch streams
		srv.Close()
	})
	return srv
}

// sell makes the given deductions (units per SKU, one per request, a different user each)
// evenly over the period through the Go client, which follows the leader and retries what
// a leader change interrupts with the same request id. Request ids start with batch.
func sell(t *testing.T, nodes []*node.Node, batch string, units map[string]int, over time.Duration) map[string]int {
	t.Helper()
	var endpoints []string
	for _, n := range nodes {
		endpoints = append(endpoints, n.HTTPAddr())
	}
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), over+20*time.Second)
	defer cancel()
	total := 0
	for _, n := range units {
		total += n
	}
	tick := over / time.Duration(total)
	var wg sync.WaitGroup
	errs := make(chan error, total)
	i := 0
	for sku, n := range units {
		for k := range n {
			wg.Add(1)
			go func(delay time.Duration) {
				defer wg.Done()
				time.Sleep(delay) // pacing the load, not waiting for a result
				id := fmt.Sprintf("ui-%s-%s-%d", batch, sku, k)
				if _, err := c.Deduct(ctx, sku, 1, fmt.Sprintf("u%d", k), client.WithRequestID(id)); err != nil {
					errs <- fmt.Errorf("deduct %s (%s): %w", sku, id, err)
				}
			}(time.Duration(i) * tick)
			i++
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return units
}

// deductOnce takes one unit of sku for user through the Go client.
func deductOnce(nodes []*node.Node, sku, user string) error {
	var endpoints []string
	for _, n := range nodes {
		endpoints = append(endpoints, n.HTTPAddr())
	}
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = c.Deduct(ctx, sku, 1, user)
	return err
}

func getText(addr, path string, w io.Writer) error {
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// clusterLeader is the leader's id as the cluster view of a live node has it: a leader
// change under load is allowed, the page must show the current one.
func clusterLeader(live *node.Node) (string, error) {
	var c api.Cluster
	if err := getJSON(live.HTTPAddr(), "/v1/cluster", &c); err != nil {
		return "", err
	}
	if c.Leader == "" {
		return "", errors.New("the cluster has no leader right now")
	}
	return c.Leader, nil
}

func isLeaderOf(live *node.Node) func(string) error {
	return func(got string) error {
		id, err := clusterLeader(live)
		if err != nil {
			return err
		}
		return equals(id)(got)
	}
}

func soldCell(sku string) string {
	return fmt.Sprintf(`(document.querySelector('tr[data-sku="%s"] td.sold') || {}).textContent || ''`, sku)
}

// browser is one headless Chromium with one tab, and what the page reported on its console.
type browser struct {
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	b := &browser{ctx: ctx}
	// Start the browser now, so a missing library fails here with its message.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("set the viewport to 1280x800: %v", err)
	}
	if err := chromedp.Listen(ctx, b.listen); err != nil {
		t.Fatalf("listen to the page's console: %v", err)
	}
	return b
}

// listen records uncaught exceptions and console.error calls: the page logs only bugs there.
func (b *browser) listen(ev any) {
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.report(fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError {
			var args []string
			for _, a := range e.Args {
				args = append(args, strings.TrimSpace(string(a.Value)+" "+a.Description))
			}
			b.report("console.error: " + strings.Join(args, " "))
		}
	}
}

func (b *browser) report(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

func (b *browser) checkNoErrors(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("page reported %s", p)
	}
}

// waitText evaluates a JavaScript expression in the page until its string value passes
// check, or fails the test with the last value after the deadline.
func (b *browser) waitText(t *testing.T, what, expr string, check func(string) error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
		if err == nil {
			err = check(got)
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			t.Fatalf("page never showed %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *browser) screenshot(t *testing.T, path string) {
	t.Helper()
	// Let both charts draw a few samples after the sales.
	b.waitText(t, "a few chart samples", `String(document.getElementById('deduct-chart').getAttribute('aria-label').startsWith('now'))`, equals("true"))
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(png))
}

func equals(want string) func(string) error {
	return func(got string) error {
		if got != want {
			return fmt.Errorf("got %q, want %q", got, want)
		}
		return nil
	}
}

func contains(want string) func(string) error {
	return func(got string) error {
		if !strings.Contains(got, want) {
			return fmt.Errorf("got %q, want it to contain %q", got, want)
		}
		return nil
	}
}

func isNumber(got string) error {
	var f float64
	if _, err := fmt.Sscan(strings.ReplaceAll(got, ",", ""), &f); err != nil {
		return errors.New("got " + fmt.Sprintf("%q", got) + ", want a number")
	}
	return nil
}
