package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// Scenario modes.
const (
	modeDeduct  = "deduct"  // buy now: one Deduct per op
	modeReserve = "reserve" // Reserve, then Confirm (or Cancel, --cancel-ratio of them) per op
)

// Hard caps: whatever the flags say, a bench run stays bounded in time, ops and memory.
const (
	maxBuyers      = 16384
	maxClients     = 64
	maxSKUs        = 100_000
	maxStock       = 1_000_000_000 // the contract's bound of an initial stock
	maxDuration    = 10 * time.Minute
	maxWarmup      = time.Minute
	maxOps         = 100_000_000
	maxSweepPoints = 16
	convergeWait   = 15 * time.Second // replicas' stale reads must reach the leader's state within this
)

// scenario is one bench configuration, checked.
type scenario struct {
	mode         string
	buyers       int
	clients      int
	skus         int
	popularity   string
	zipfS        float64
	stock        int64
	qty          int64
	perUserLimit int64
	duration     time.Duration
	warmup       time.Duration
	ops          int64
	cancelRatio  float64
	holdTTL      time.Duration
	sellout      bool
	lateBuyers   int
	prefix       string
	opTimeout    time.Duration
	noBatching   bool
}

// benchFlags are the bench's own flags as parsed, before defaults that depend on others.
type benchFlags struct {
	scenario
	sweep          string
	chart          string
	chartSize      string
	stockd         string
	stockdArgs     stringsFlag
	stockdGroups   int
	stockdWait     time.Duration
	cpuProfile     string
	failover       int
	stockdLogs     string
	set            func(name string) bool // whether a flag was given
	sweepBuyers    []int
	chartW, chartH int
}

func bindBenchFlags(c *cli) *benchFlags {
	f := &benchFlags{}
	fs := c.fs
	fs.StringVar(&f.mode, "mode", modeDeduct, "scenario: deduct (buy now) or reserve (reserve → confirm, some cancelled)")
	fs.IntVar(&f.buyers, "buyers", 64, fmt.Sprintf("concurrent buyers, each one op at a time (1..%d)", maxBuyers))
	fs.IntVar(&f.clients, "clients", 1, "client.Client instances the buyers share (buyer i uses client i mod N)")
	fs.IntVar(&f.skus, "skus", 1, fmt.Sprintf("SKUs to create (1..%d)", maxSKUs))
	fs.StringVar(&f.popularity, "popularity", "", "how buyers pick SKUs: hot (all on the first), uniform or zipf (default: hot for 1 SKU, else uniform)")
	fs.Float64Var(&f.zipfS, "zipf-s", 1.1, "zipf exponent (> 1): larger means fewer, hotter best sellers")
	fs.Int64Var(&f.stock, "stock", maxStock, "initial units per SKU (default 10^9, or 1000 with --sellout)")
	fs.Int64Var(&f.qty, "qty", 1, "units per op")
	fs.Int64Var(&f.perUserLimit, "per-user-limit", 0, "per-user limit of every SKU (0: none); each buyer is one user")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, fmt.Sprintf("measured load time (at most %v)", maxDuration))
	fs.DurationVar(&f.warmup, "warmup", time.Second, "load before measuring, not counted (sell-out: reads only)")
	fs.Int64Var(&f.ops, "ops", 0, fmt.Sprintf("stop after this many measured ops (0: --duration only; at most %d)", maxOps))
	fs.Float64Var(&f.cancelRatio, "cancel-ratio", 0, "reserve mode: fraction of held orders cancelled instead of confirmed (0..1)")
	fs.DurationVar(&f.holdTTL, "hold-ttl", 30*time.Second, "reserve mode: how long a hold lasts")
	fs.BoolVar(&f.sellout, "sellout", false, "sell out one hot SKU: buyers stop at their first sold_out, then late buyers measure sold-out rejections")
	fs.IntVar(&f.lateBuyers, "late-buyers", 0, "sell-out: buyers that keep deducting after the sell-out (default --buyers; 0 with the flag: none)")
	fs.StringVar(&f.prefix, "sku-prefix", "", "prefix of the run's SKU ids (default: bench-<random>-, unique per run)")
	fs.StringVar(&f.sweep, "sweep", "", "comma list of buyer counts: run the scenario at each and print a table, e.g. 16,128,512,4096")
	fs.StringVar(&f.chart, "chart", "", "write a chart `file`, PNG or SVG by its extension: throughput and latency percentiles per second")
	fs.StringVar(&f.chartSize, "chart-size", "1200x700", "chart size WIDTHxHEIGHT in pixels")
	fs.BoolVar(&f.noBatching, "no-batching", false, "send every Deduct as its own request (client.Config.DisableBatching) instead of batching concurrent ones")
	fs.StringVar(&f.stockd, "stockd", "", "`path` of a stockd binary: start a fresh 3-node loopback cluster for the run, stop it after")
	fs.IntVar(&f.stockdGroups, "groups", 1, "with --stockd: `G` data groups (stockd --groups on the bootstrapping node; above 1 the run waits until every group has its replicas and a leader, and reports where each group's leader is)")
	fs.Var(&f.stockdArgs, "stockd-arg", "extra flag for every stockd of --stockd, e.g. --stockd-arg=--max-inflight=4096 (repeatable)")
	fs.DurationVar(&f.stockdWait, "stockd-wait", 30*time.Second, "--stockd: longest wait for the cluster to have 3 members and a leader")
	fs.IntVar(&f.failover, "failover", 0, fmt.Sprintf("with --stockd: SIGKILL the leader N times idle, then N times under the load, restarting it each time; print kill → new leader and kill → next acknowledged deduction (min/p50/p90/max) (0..%d)", maxFailoverKills))
	fs.StringVar(&f.stockdLogs, "stockd-logs", "", "with --stockd: copy the nodes' logs into `dir` when the run ends")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (the client side, warm-up included) to `file`; stockd serves its own with --pprof")
	f.set = c.isSet
	return f
}

// validate applies defaults that depend on other flags and names the flag of every broken
// rule (the first one found).
func (f *benchFlags) validate() error {
	set := f.set
	if set == nil {
		set = func(string) bool { return false }
	}
	switch f.mode {
	case modeDeduct, modeReserve:
	default:
		return fmt.Errorf("--mode must be %s or %s, got %q", modeDeduct, modeReserve, f.mode)
	}
	if f.buyers < 1 || f.buyers > maxBuyers {
		return fmt.Errorf("--buyers must be 1..%d, got %d", maxBuyers, f.buyers)
	}
	if f.clients < 1 || f.clients > maxClients {
		return fmt.Errorf("--clients must be 1..%d, got %d", maxClients, f.clients)
	}
	if f.skus < 1 || f.skus > maxSKUs {
		return fmt.Errorf("--skus must be 1..%d, got %d", maxSKUs, f.skus)
	}
	if f.popularity == "" {
		f.popularity = popUniform
		if f.skus == 1 {
			f.popularity = popHot
		}
	}
	if _, err := newPicker(f.popularity, f.skus, f.zipfS, 1); err != nil {
		if f.popularity == popZipf {
			return fmt.Errorf("--zipf-s: %v", err)
		}
		return fmt.Errorf("--popularity: %v", err)
	}
	if f.sellout && !set("stock") {
		f.stock = 1000
	}
	if f.stock < 0 || f.stock > maxStock {
		return fmt.Errorf("--stock must be 0..%d, got %d", maxStock, f.stock)
	}
	if f.qty < 1 || f.qty > maxStock {
		return fmt.Errorf("--qty must be 1..%d, got %d", maxStock, f.qty)
	}
	if f.perUserLimit < 0 {
		return fmt.Errorf("--per-user-limit must not be negative, got %d", f.perUserLimit)
	}
	if f.duration < 100*time.Millisecond || f.duration > maxDuration {
		return fmt.Errorf("--duration must be 100ms..%v, got %v", maxDuration, f.duration)
	}
	if f.warmup < 0 || f.warmup > maxWarmup {
		return fmt.Errorf("--warmup must be 0..%v, got %v", maxWarmup, f.warmup)
	}
	if f.ops < 0 || f.ops > maxOps {
		return fmt.Errorf("--ops must be 0..%d, got %d", maxOps, f.ops)
	}
	if f.cancelRatio < 0 || f.cancelRatio > 1 {
		return fmt.Errorf("--cancel-ratio must be 0..1, got %g", f.cancelRatio)
	}
	if f.cancelRatio > 0 && f.mode != modeReserve {
		return fmt.Errorf("--cancel-ratio needs --mode %s", modeReserve)
	}
	if f.holdTTL < time.Second || f.holdTTL > time.Hour {
		return fmt.Errorf("--hold-ttl must be 1s..1h, got %v", f.holdTTL)
	}
	if f.sellout && f.mode != modeDeduct {
		return fmt.Errorf("--sellout needs --mode %s", modeDeduct)
	}
	if f.sellout && f.skus != 1 {
		return fmt.Errorf("--sellout sells out one hot SKU: --skus must be 1, got %d", f.skus)
	}
	if !set("late-buyers") {
		f.lateBuyers = f.buyers
	}
	if f.lateBuyers < 0 || f.lateBuyers > maxBuyers {
		return fmt.Errorf("--late-buyers must be 0..%d, got %d", maxBuyers, f.lateBuyers)
	}
	if f.prefix != "" {
		// The longest SKU id is prefix + "b16384-" + "99999": it must stay within 64.
		if len(f.prefix) > 48 || strings.Trim(f.prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") != "" {
			return fmt.Errorf("--sku-prefix must be at most 48 of [A-Za-z0-9._:-], got %q", f.prefix)
		}
	}
	if f.opTimeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %v", f.opTimeout)
	}
	f.sweepBuyers = nil
	if f.sweep != "" {
		for _, s := range strings.Split(f.sweep, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 || n > maxBuyers {
				return fmt.Errorf("--sweep: %q is not a buyer count 1..%d", s, maxBuyers)
			}
			f.sweepBuyers = append(f.sweepBuyers, n)
		}
		if len(f.sweepBuyers) > maxSweepPoints {
			return fmt.Errorf("--sweep: at most %d points, got %d", maxSweepPoints, len(f.sweepBuyers))
		}
	}
	if _, err := fmt.Sscanf(f.chartSize, "%dx%d", &f.chartW, &f.chartH); err != nil ||
		f.chartW < 320 || f.chartW > 4000 || f.chartH < 240 || f.chartH > 3000 {
		return fmt.Errorf("--chart-size must be WIDTHxHEIGHT within 320x240..4000x3000, got %q", f.chartSize)
	}
	if f.chart != "" && chartFormat(f.chart) == "" {
		return fmt.Errorf("--chart must name a .png or .svg file, got %q", f.chart)
	}
	if f.failover < 0 || f.failover > maxFailoverKills {
		return fmt.Errorf("--failover must be 0..%d, got %d", maxFailoverKills, f.failover)
	}
	if f.failover > 0 && (f.stockd == "" || f.mode != modeDeduct || f.sellout || f.sweep != "") {
		return fmt.Errorf("--failover needs --stockd (it kills the cluster's processes) and --mode %s, without --sellout or --sweep", modeDeduct)
	}
	if f.stockdLogs != "" && f.stockd == "" {
		return fmt.Errorf("--stockd-logs needs --stockd")
	}
	if f.stockdGroups < 1 || f.stockdGroups > api.SlotCount {
		return fmt.Errorf("--groups must be 1..%d, got %d", api.SlotCount, f.stockdGroups)
	}
	if f.stockdGroups > 1 && f.stockd == "" {
		return fmt.Errorf("--groups needs --stockd (a running cluster has the groups it was created with)")
	}
	if f.stockdWait <= 0 || f.stockdWait > 5*time.Minute {
		return fmt.Errorf("--stockd-wait must be 1ns..5m, got %v", f.stockdWait)
	}
	return nil
}

func runBench(args []string, stdout, stderr io.Writer) error {
	c := newCLI("bench", "bench [--buyers N] [--skus N] [--duration D] [--mode deduct|reserve] [--sellout] [--sweep LIST] [--stockd PATH] [flags]", `
Runs a flash sale against the cluster through the Go client and measures it: successful
deductions per second, rejections by reason, 429s, errors, and p50/p90/p99/max latency of
each op from its first call to its final answer, retries included. It ends with the
oversell check: every SKU strong-read at the leader must have sold exactly the units
acknowledged to buyers, never more than its stock, with available+reserved+sold == stock;
every node's stale reads must reach the same state within 15s. OK, AMBIGUOUS (some outcomes
stayed unknown) or FAIL; FAIL exits with status 1.

Each run creates its own SKUs (--sku-prefix, random by default), so runs never interfere.
--stockd starts a fresh 3-node cluster on free loopback ports for the run and stops it
after (SIGTERM, then SIGKILL after 10s), deleting its data.

--sellout sells one SKU of --stock units (default 1000): buyers stop at their first sold_out;
it reports the time to sell out, then --late-buyers keep deducting for the rest of
--duration and every answer must be sold_out. It reports those rejections per second and
how far the leader's applied index moved meanwhile (a sold-out rejection must not write the
log; the leader's expire loop adds about one entry per second).

--failover N (with --stockd) measures failover instead of throughput: it SIGKILLs the
leader N times with the cluster idle, then N times under the load of --buyers, restarting
the killed node after each kill and waiting until it caught up, 0.5–2s between kills. It
prints kill → new leader (idle and loaded) and kill → the first deduction acknowledged to a
buyer whose attempt was sent after the kill (min/p50/p90/max), and checks the books after.

--timeout bounds each op (retries included) and each setup or check call.

examples:
  stockctl bench --stockd ./stockd --buyers 128 --duration 10s
  stockctl bench --buyers 512 --skus 1000 --popularity zipf --chart run.png
  stockctl bench --mode reserve --cancel-ratio 0.2 --skus 100
  stockctl bench --stockd ./stockd --sellout --buyers 512 --duration 5s
  stockctl bench --stockd ./stockd --sweep 16,128,512,1024,4096 --duration 5s --json
  stockctl bench --stockd ./stockd --failover 20 --buyers 64`, stdout, stderr)
	f := bindBenchFlags(c)
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	f.opTimeout = c.timeout
	if err := f.validate(); err != nil {
		return c.usageError("%v", err)
	}
	if f.prefix == "" {
		f.prefix = "bench-" + randomID(6) + "-"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cl *stockdCluster
	if f.stockd != "" {
		var err error
		cl, err = startCluster(ctx, f.stockd, f.stockdArgs, f.stockdGroups, f.stockdWait, stderr)
		if err != nil {
			return err
		}
		cl.keepLogs = f.stockdLogs
		defer func() {
			if err := cl.stop(); err != nil {
				fmt.Fprintf(stderr, "stockctl bench: stopping the stockd cluster: %v\n", err)
			}
		}()
		c.endpoints = strings.Join(cl.httpAddrs, ",")
	}
	env, err := newBenchEnv(c, f)
	if err != nil {
		return err
	}
	defer env.close()

	if f.cpuProfile != "" {
		stopProfile, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	if f.failover > 0 {
		res, err := env.runFailover(ctx, cl, f.scenario, f.failover, stderr)
		if err != nil {
			return c.explain(err)
		}
		if c.json {
			err = writeJSON(stdout, res)
		} else {
			writeFailover(stdout, res)
		}
		if err != nil {
			return err
		}
		if res.Check.Verdict == verdictFail {
			return fmt.Errorf("oversell check FAILED after the kills:\n  %s", strings.Join(res.Check.Problems, "\n  "))
		}
		return ctx.Err()
	}
	points := f.sweepBuyers
	if len(points) == 0 {
		points = []int{f.buyers}
	}
	var results []*benchResult
	for _, n := range points {
		sc := f.scenario
		sc.buyers = n
		if len(f.sweepBuyers) > 0 {
			sc.prefix += "b" + strconv.Itoa(n) + "-"
			if !f.set("late-buyers") {
				sc.lateBuyers = n
			}
		}
		res, err := env.runPoint(ctx, sc, stderr)
		if err != nil {
			return c.explain(err)
		}
		results = append(results, res)
		if f.chart != "" {
			path := f.chart
			if len(f.sweepBuyers) > 0 {
				path = strings.TrimSuffix(path, ".png") + "-b" + strconv.Itoa(n) + ".png"
			}
			if err := writeChartFile(path, res, f.chartW, f.chartH); err != nil {
				return err
			}
			res.Chart = path
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := printResults(stdout, c.json, results, len(f.sweepBuyers) > 0); err != nil {
		return err
	}
	for _, r := range results {
		if r.Check.Verdict == verdictFail {
			return fmt.Errorf("oversell check FAILED at %d buyers:\n  %s", r.Scenario.Buyers, strings.Join(r.Check.Problems, "\n  "))
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return nil
}

// randomID is n random base-36 characters, from crypto/rand once per run (not per op).
func randomID(n int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = digits[int(b[i])%len(digits)]
	}
	return string(b)
}

// benchEnv is what the points of a bench share: the clients the buyers use (with counting
// transports), one client per node for the replica check, and an HTTP client for
// GET /v1/cluster/self.
type benchEnv struct {
	c       *cli
	f       *benchFlags
	clients []*client.Client
	counts  []*countingTransport
	nodes   []*client.Client
	addrs   []string
	plain   *http.Client
	scheme  string
	auth    string
}

func newBenchEnv(c *cli, f *benchFlags) (*benchEnv, error) {
	env := &benchEnv{c: c, f: f, scheme: "http://"}
	base := client.Config{Token: c.token}
	for _, e := range strings.Split(c.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			base.Endpoints = append(base.Endpoints, e)
		}
	}
	if err := base.Validate(); err != nil {
		return nil, c.usageError("--endpoints %q: %v", c.endpoints, err)
	}
	if c.cacert != "" || c.cert != "" || c.key != "" || strings.HasPrefix(c.endpoints, "https://") {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		base.TLS = tc
		env.scheme = "https://"
	}
	if c.token != "" {
		env.auth = "Bearer " + c.token
	}
	// Enough idle connections per node for every buyer of the largest point.
	maxB := f.buyers
	for _, n := range f.sweepBuyers {
		maxB = max(maxB, n)
	}
	maxB = max(maxB, f.lateBuyers)
	for i := 0; i < f.clients; i++ {
		ct := &countingTransport{next: benchTransport(base, maxB/f.clients+16)}
		cfg := base
		cfg.Transport = ct
		cfg.DisableBatching = f.noBatching
		cl, err := client.New(cfg)
		if err != nil {
			env.close()
			return nil, c.usageError("--endpoints %q: %v", c.endpoints, err)
		}
		env.clients = append(env.clients, cl)
		env.counts = append(env.counts, ct)
	}
	env.plain = &http.Client{Transport: benchTransport(base, 8), Timeout: c.timeout}
	return env, nil
}

// benchTransport is a keep-alive pool sized for the buyers: without enough idle slots per
// host, connections would be closed and dialed again under load.
func benchTransport(cfg client.Config, idlePerHost int) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   idlePerHost,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
		DisableCompression:    true,
		TLSClientConfig:       cfg.TLS,
		ForceAttemptHTTP2:     false,
	}
}

func (env *benchEnv) close() {
	for _, cl := range env.clients {
		cl.Close()
	}
	for _, n := range env.nodes {
		n.Close()
	}
	if env.plain != nil {
		env.plain.CloseIdleConnections()
	}
}

// nodeClients makes one client per node the buyers' client knows, for stale reads of that
// node alone.
func (env *benchEnv) nodeClients(ctx context.Context) error {
	if env.nodes != nil {
		return nil
	}
	// The client learns the nodes' addresses from its endpoints (DNS names expanded).
	var addrs []string
	for _, e := range env.clients[0].Endpoints() {
		addrs = append(addrs, e.Addr)
	}
	for _, a := range addrs {
		cfg := client.Config{Endpoints: []string{a}, Token: env.c.token, MaxAttempts: 3}
		if env.scheme == "https://" {
			tc, err := env.c.tlsConfig()
			if err != nil {
				return err
			}
			cfg.TLS = tc
		}
		n, err := client.New(cfg)
		if err != nil {
			return err
		}
		env.nodes = append(env.nodes, n)
	}
	env.addrs = addrs
	return ctx.Err()
}

// createSKUs makes the run's SKUs, 32 at a time.
func (env *benchEnv) createSKUs(ctx context.Context, sc scenario) ([]string, error) {
	skus := make([]string, sc.skus)
	for i := range skus {
		skus[i] = sc.prefix + strconv.Itoa(i)
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make([]error, 32)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(skus) || errs[w] != nil {
					return
				}
				cctx, cancel := context.WithTimeout(ctx, sc.opTimeout)
				var opts []client.CallOption
				if sc.perUserLimit > 0 {
					opts = append(opts, client.WithPerUserLimit(sc.perUserLimit))
				}
				if _, err := env.clients[0].CreateSKU(cctx, skus[i], sc.stock, opts...); err != nil {
					errs[w] = fmt.Errorf("create SKU %s: %w", skus[i], err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	return skus, errors.Join(errs...)
}

// counters sums the transports' counts.
func (env *benchEnv) counters() (attempts, overloaded uint64) {
	for _, ct := range env.counts {
		attempts += ct.attempts.Load()
		overloaded += ct.overloaded.Load()
	}
	return attempts, overloaded
}

// startCPUProfile profiles this process into path until the returned function runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
