package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/client"
)

func TestBench_FlagErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args string
		flag string
	}{
		{"--buyers 0", "--buyers"},
		{"--buyers 100000", "--buyers"},
		{"--clients 0", "--clients"},
		{"--skus 0", "--skus"},
		{"--mode browse", "--mode"},
		{"--popularity pareto", "--popularity"},
		{"--skus 10 --popularity zipf --zipf-s 0.5", "--zipf-s"},
		{"--stock -1", "--stock"},
		{"--qty 0", "--qty"},
		{"--duration 1h", "--duration"},
		{"--duration 1ms", "--duration"},
		{"--warmup 2h", "--warmup"},
		{"--ops -5", "--ops"},
		{"--ops 1000000000", "--ops"},
		{"--mode reserve --cancel-ratio 2", "--cancel-ratio"},
		{"--cancel-ratio 0.5", "--cancel-ratio"},
		{"--sellout --mode reserve", "--sellout"},
		{"--sellout --skus 3", "--sellout"},
		{"--late-buyers -1", "--late-buyers"},
		{"--sku-prefix bad/prefix", "--sku-prefix"},
		{"--sweep 16,x", "--sweep"},
		{"--sweep 16,0", "--sweep"},
		{"--chart-size 10x10", "--chart-size"},
		{"--chart run.gif", "--chart"},
		{"--timeout 0s", "--timeout"},
		{"--per-user-limit -1", "--per-user-limit"},
		{"--failover 3", "--failover"}, // needs --stockd
		{"--failover -1", "--failover"},
		{"--failover 3 --stockd ./stockd --sellout", "--failover"},
		{"--stockd-logs /tmp/x", "--stockd-logs"},
		{"--groups 3", "--groups"}, // needs --stockd
		{"--groups 0 --stockd ./stockd", "--groups"},
		{"--buyers", "-buyers"}, // missing value: the flag package's message
	} {
		out, errs, code := stockctl(append([]string{"bench"}, strings.Fields(tc.args)...)...)
		if code != exitUsage {
			t.Errorf("bench %s: exit %d, want %d (stdout %q)", tc.args, code, exitUsage, out)
			continue
		}
		if first := strings.SplitN(errs, "\n", 2)[0]; !strings.Contains(first, tc.flag) {
			t.Errorf("bench %s: error %q does not name %s", tc.args, first, tc.flag)
		}
	}
}

func TestBench_FlagDefaultsDependOnTheScenario(t *testing.T) {
	parse := func(args ...string) *benchFlags {
		t.Helper()
		c := newCLI("bench", "", "", &bytes.Buffer{}, &bytes.Buffer{})
		f := bindBenchFlags(c)
		if _, err := c.parse(args, 0, 0); err != nil {
			t.Fatal(err)
		}
		f.opTimeout = c.timeout
		if err := f.validate(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return f
	}
	if f := parse(); f.popularity != popHot || f.stock != maxStock || f.lateBuyers != 64 {
		t.Errorf("defaults: popularity %s stock %d late buyers %d", f.popularity, f.stock, f.lateBuyers)
	}
	if f := parse("--skus", "10"); f.popularity != popUniform {
		t.Errorf("10 SKUs: popularity %s, want uniform", f.popularity)
	}
	if f := parse("--sellout", "--buyers", "8"); f.stock != 1000 || f.lateBuyers != 8 {
		t.Errorf("sellout: stock %d late buyers %d, want 1000 and 8", f.stock, f.lateBuyers)
	}
	if f := parse("--sellout", "--stock", "5", "--late-buyers", "0"); f.stock != 5 || f.lateBuyers != 0 {
		t.Errorf("sellout with --stock 5 --late-buyers 0: stock %d late %d", f.stock, f.lateBuyers)
	}
	if f := parse("--sweep", "16, 128,4096"); len(f.sweepBuyers) != 3 || f.sweepBuyers[2] != 4096 {
		t.Errorf("sweep %v", f.sweepBuyers)
	}
}

// sampleResult is a fixed result, for the output shapes.
func sampleResult(sellout bool) *benchResult {
	sc := scenario{mode: modeDeduct, buyers: 128, clients: 1, skus: 1, popularity: popHot, stock: 1_000_000_000,
		qty: 1, duration: 2e9, warmup: 1e9, prefix: "bench-abc123-", sellout: sellout}
	r := &benchResult{
		Scenario: toScenarioJSON(sc), ElapsedS: 2.001, Ops: 50210, OK: 50000, PerSecond: 24987.5, UnitsSold: 61000,
		Rejected: rejectionsJSON{SoldOut: 200, LimitExceeded: 10}, Overloaded429: 7, Requests: 9000, Errors: 0,
		Latency:  latencyJSON{P50: 4.2, P90: 7.5, P99: 15.25, Max: 40.1, Mean: 5.0},
		Check:    checkReport{Verdict: verdictOK, SKUs: 1, Stock: 1_000_000_000, Acked: 61000, Sold: 61000, ReplicasAgree: "3/3"},
		Timeline: []timelinePoint{{Second: 0, OK: 25000, Rejected: 100, P50ms: 4, P90ms: 7, P99ms: 15}, {Second: 1, OK: 25000, Rejected: 110, Errors: 1, P50ms: 4.5, P90ms: 8, P99ms: 16}},
	}
	if sellout {
		r.Scenario.Stock, r.OK, r.Ops, r.UnitsSold, r.PerSecond, r.ElapsedS = 1000, 1000, 1128, 1000, 7352.9, 0.136
		r.Rejected, r.Timeline = rejectionsJSON{SoldOut: 128}, r.Timeline[:1]
		r.Check.Stock, r.Check.Acked, r.Check.Sold = 1000, 1000, 1000
		r.Sellout = &selloutJSON{SelloutS: 0.136, LastSaleS: 0.127, SoldOut: true, LateBuyers: 128, LateS: 1.9, LateRejected: 95000,
			LatePerSecond: 50000, LateLatency: latencyJSON{P50: 2, P90: 4, P99: 8, Max: 20, Mean: 2.5}, LateRequests: 95000,
			AppliedBefore: 70, AppliedAfter: 72, LogAllowance: 4}
	}
	return r
}

func TestBench_OutputGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(*bytes.Buffer) error
	}{
		{"bench_json", func(b *bytes.Buffer) error { return printResults(b, true, []*benchResult{sampleResult(false)}, false) }},
		{"bench_sellout_json", func(b *bytes.Buffer) error { return printResults(b, true, []*benchResult{sampleResult(true)}, false) }},
		{"bench_summary", func(b *bytes.Buffer) error { return printResults(b, false, []*benchResult{sampleResult(true)}, false) }},
		{"bench_sweep", func(b *bytes.Buffer) error {
			a, c := sampleResult(false), sampleResult(false)
			c.Scenario.Buyers, c.PerSecond = 4096, 31000
			return writeSweepTable(b, []*benchResult{a, c})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.fn(&b); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, b.String())
			if strings.HasSuffix(tc.name, "_json") {
				var v map[string]any
				if err := json.Unmarshal(b.Bytes(), &v); err != nil {
					t.Fatalf("not JSON: %v", err)
				}
			}
		})
	}
}

func TestBench_ChartIsAPNGOfTheRequestedSize(t *testing.T) {
	for _, size := range [][2]int{{1200, 700}, {320, 240}} {
		for _, r := range []*benchResult{sampleResult(false), sampleResult(true), {Scenario: scenarioJSON{Mode: modeDeduct}}} {
			var b bytes.Buffer
			if err := writeChart(&b, "png", r, size[0], size[1]); err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(&b)
			if err != nil {
				t.Fatalf("not a PNG: %v", err)
			}
			if got := img.Bounds().Size(); got.X != size[0] || got.Y != size[1] {
				t.Fatalf("chart is %v, want %dx%d", got, size[0], size[1])
			}
		}
	}
	dir := t.TempDir()
	if err := writeChartFile(filepath.Join(dir, "c.png"), sampleResult(false), 640, 480); err != nil {
		t.Fatal(err)
	}
	if err := writeChartFile(filepath.Join(dir, "no", "such", "dir.png"), sampleResult(false), 640, 480); err == nil || !strings.Contains(err.Error(), "--chart") {
		t.Fatalf("unwritable chart: %v, want an error naming --chart", err)
	}
	if err := writeChartFile(filepath.Join(dir, "c.gif"), sampleResult(false), 640, 480); err == nil || !strings.Contains(err.Error(), ".svg") {
		t.Fatalf("a .gif chart: %v, want an error naming the formats", err)
	}
}

// An .svg path gets an SVG with the axes' labels as text, the size asked for.
func TestBench_ChartSVG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.svg")
	if err := writeChartFile(path, sampleResult(false), 800, 600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	svg := string(b)
	for _, want := range []string{"<svg", `width="600pt"`, `height="450pt"`, "ops/s", "latency (ms)", "time (s)", "p99"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the SVG has no %q", want)
		}
	}
}

// The last second of a run is cut short by its end: its count is not a rate and is not
// plotted as one, so the throughput line does not fall to it; its latencies are plotted.
func TestBench_ChartLeavesOutThePartialLastSecond(t *testing.T) {
	pts := append(sampleResult(false).Timeline, timelinePoint{Second: 2, OK: 300, Rejected: 2, P50ms: 4, P90ms: 7, P99ms: 15})
	rates, latencies := chartSeries(pts)
	for _, s := range rates {
		if len(s.xys) != 2 || s.xys[1].X != 1 {
			t.Fatalf("%s: %v, want seconds 0 and 1 only", s.name, s.xys)
		}
	}
	if ok := rates[0].xys; ok[0].Y != 25000 || ok[1].Y != 25000 {
		t.Fatalf("ok/s %v", ok)
	}
	for _, s := range latencies {
		if len(s.xys) != 3 {
			t.Fatalf("%s: %v, want all three seconds", s.name, s.xys)
		}
	}
}

func TestBench_RequestIDsAreUniqueAndCheap(t *testing.T) {
	l := newLoad(scenario{popularity: popHot}, []*client.Client{nil}, []string{"s"}, "run1")
	seen := map[string]bool{}
	for id := 0; id < 12; id++ {
		b, err := l.newBuyer(id, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 500; i++ {
			rid := b.nextID('d')
			if seen[rid] {
				t.Fatalf("request id %q made twice", rid)
			}
			seen[rid] = true
		}
	}
	b, _ := l.newBuyer(1, 1)
	if got := b.nextID('o'); got != "run1-1-1o" || withSuffix(got, 'c') != "run1-1-1c" {
		t.Fatalf("ids %q / %q", got, withSuffix(got, 'c'))
	}
	if n := testing.AllocsPerRun(1000, func() { b.nextID('d') }); n > 1 {
		t.Fatalf("nextID allocates %v times, want at most 1 (the string)", n)
	}
}
