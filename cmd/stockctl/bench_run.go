package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/flashstock/flashstock/api"
)

// benchResult is one measured point: what --json prints (see testdata/bench_json.golden).
type benchResult struct {
	Scenario      scenarioJSON    `json:"scenario"`
	ElapsedS      float64         `json:"elapsed_s"`
	Ops           uint64          `json:"ops"`
	OK            uint64          `json:"ok"`
	PerSecond     float64         `json:"ok_per_s"` // successful deductions (or confirmed orders) per second
	UnitsSold     int64           `json:"units_sold"`
	Cancelled     uint64          `json:"cancelled"`
	Rejected      rejectionsJSON  `json:"rejected"`
	Overloaded429 uint64          `json:"overloaded_429s"` // 429 answers seen (each retried by the client)
	Requests      uint64          `json:"http_requests"`   // HTTP mutation requests sent in the measured window: batches and retries included
	Errors        uint64          `json:"errors"`          // ops whose outcome was unknown when they ended
	Resolved      int             `json:"resolved_by_replay"`
	Duplicates    uint64          `json:"duplicate_acks"` // answers flagged duplicate: a retry met its first answer
	Latency       latencyJSON     `json:"latency_ms"`
	Sellout       *selloutJSON    `json:"sellout,omitempty"`
	Raft          *raftJSON       `json:"raft,omitempty"`
	CPU           *cpuJSON        `json:"cpu,omitempty"`
	Check         checkReport     `json:"check"`
	Chart         string          `json:"chart,omitempty"`
	Timeline      []timelinePoint `json:"timeline"`
}

type scenarioJSON struct {
	Mode         string  `json:"mode"`
	Buyers       int     `json:"buyers"`
	Clients      int     `json:"clients"`
	Batching     bool    `json:"batching"`
	SKUs         int     `json:"skus"`
	Popularity   string  `json:"popularity"`
	ZipfS        float64 `json:"zipf_s,omitempty"`
	Stock        int64   `json:"stock"`
	Qty          int64   `json:"qty"`
	PerUserLimit int64   `json:"per_user_limit"`
	DurationS    float64 `json:"duration_s"`
	WarmupS      float64 `json:"warmup_s"`
	Ops          int64   `json:"max_ops,omitempty"`
	CancelRatio  float64 `json:"cancel_ratio,omitempty"`
	Sellout      bool    `json:"sellout"`
	SKUPrefix    string  `json:"sku_prefix"`
}

type rejectionsJSON struct {
	SoldOut           uint64 `json:"sold_out"`
	InsufficientStock uint64 `json:"insufficient_stock"`
	LimitExceeded     uint64 `json:"limit_exceeded"`
	Expired           uint64 `json:"expired"`
	Other             uint64 `json:"other"`
}

type latencyJSON struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// selloutJSON is the sell-out's own report.
type selloutJSON struct {
	SelloutS      float64     `json:"sellout_s"`   // until every buyer had its sold_out
	LastSaleS     float64     `json:"last_sale_s"` // until the last acknowledged sale
	SoldOut       bool        `json:"sold_out"`
	LateBuyers    int         `json:"late_buyers"`
	LateS         float64     `json:"late_s"`
	LateRejected  uint64      `json:"late_rejections"`
	LatePerSecond float64     `json:"late_rejections_per_s"`
	LateOther     uint64      `json:"late_other_answers"` // anything but sold_out: must be 0
	LateLatency   latencyJSON `json:"late_latency_ms"`
	LateRequests  uint64      `json:"late_http_requests"`
	Late429       uint64      `json:"late_overloaded_429s"`
	// The leader's applied index before and after the late phase, read with
	// GET /v1/cluster/self; LogAllowance is what the expire loop alone may add (≈1/s).
	AppliedBefore uint64 `json:"applied_index_before"`
	AppliedAfter  uint64 `json:"applied_index_after"`
	LogAllowance  uint64 `json:"log_allowance"`
	WroteLog      bool   `json:"rejections_wrote_log"`
}

func toScenarioJSON(sc scenario) scenarioJSON {
	s := scenarioJSON{Mode: sc.mode, Buyers: sc.buyers, Clients: sc.clients, SKUs: sc.skus, Popularity: sc.popularity,
		Stock: sc.stock, Qty: sc.qty, PerUserLimit: sc.perUserLimit, DurationS: sc.duration.Seconds(),
		WarmupS: sc.warmup.Seconds(), Batching: !sc.noBatching, Ops: sc.ops, CancelRatio: sc.cancelRatio, Sellout: sc.sellout, SKUPrefix: sc.prefix}
	if sc.popularity == popZipf {
		s.ZipfS = sc.zipfS
	}
	if sc.sellout {
		s.WarmupS = 0
	}
	return s
}

func latencyOf(h *histogram) latencyJSON {
	return latencyJSON{P50: round3(ms(h.Quantile(0.50))), P90: round3(ms(h.Quantile(0.90))),
		P99: round3(ms(h.Quantile(0.99))), Max: round3(ms(h.Max())), Mean: round3(ms(h.Mean()))}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// runPoint runs one scenario: create its SKUs, warm the connections, drive the buyers, replay
// unknown outcomes, and check the books.
func (env *benchEnv) runPoint(ctx context.Context, sc scenario, log io.Writer) (*benchResult, error) {
	skus, err := env.createSKUs(ctx, sc)
	if err != nil {
		return nil, err
	}
	if err := env.nodeClients(ctx); err != nil {
		return nil, err
	}
	l, buyers, err := env.warmBuyers(ctx, sc, skus)
	if err != nil {
		return nil, err
	}
	attempts0, over0 := env.counters()

	start := time.Now()
	res := &benchResult{Scenario: toScenarioJSON(sc)}
	var stats *phaseStats
	var tl *timeline
	cpuWindow := func(uint64) *cpuJSON { return nil } // the sell-out has no steady window
	if !sc.sellout {
		measureFrom := start.Add(sc.warmup)
		until := measureFrom.Add(sc.duration)
		tl = newTimeline(measureFrom, sc.duration+sc.opTimeout)
		stats = newPhaseStats(measureFrom, tl)
		octx, cancel := context.WithDeadline(ctx, until.Add(sc.opTimeout))
		watch := env.watchRaft(ctx)
		cpu0 := env.sampleCPUAt(octx, measureFrom)
		// The requests are counted over the measured window, like the ops they are set
		// beside: counted from before the warm-up, 16 buyers' batches read as 12-14 calls
		// per request where they carry 15-16.
		counts0 := make(chan [2]uint64, 1)
		countFrom := time.AfterFunc(time.Until(measureFrom), func() {
			a, o := env.counters()
			counts0 <- [2]uint64{a, o}
		})
		l.drive(octx, buyers, stats, until, sc.ops, false)
		if !countFrom.Stop() {
			c := <-counts0
			attempts0, over0 = c[0], c[1]
		}
		cpu1, cpuErr := env.sampleCPU(ctx)
		cancel()
		res.ElapsedS = time.Since(measureFrom).Seconds()
		cpuWindow = func(ok uint64) *cpuJSON {
			if s0, sampled := <-cpu0; sampled && cpuErr == nil {
				return cpuBetween(s0, cpu1, ok)
			}
			return nil // a node did not answer: no table rather than a wrong one
		}
		res.Raft = watch.stop(ctx)
		attempts1, over1 := env.counters()
		res.Requests, res.Overloaded429 = attempts1-attempts0, over1-over0
	} else {
		until := start.Add(sc.duration)
		tl = newTimeline(start, sc.duration+2*sc.opTimeout+2*time.Second)
		stats = newPhaseStats(start, tl)
		octx, cancel := context.WithDeadline(ctx, until.Add(sc.opTimeout))
		l.drive(octx, buyers, stats, until, sc.ops, true)
		cancel()
		attempts1, over1 := env.counters()
		res.Requests, res.Overloaded429 = attempts1-attempts0, over1-over0
		res.Sellout, err = env.lateBuyers(ctx, l, sc, start, stats, tl)
		if err != nil {
			return nil, err
		}
		res.ElapsedS = res.Sellout.SelloutS
	}
	res.Ops = stats.total()
	res.OK = stats.count(outcomeOK)
	res.CPU = cpuWindow(res.OK)
	if res.ElapsedS > 0 {
		res.PerSecond = math.Round(float64(res.OK)/res.ElapsedS*10) / 10
	}
	res.Cancelled = stats.count(outcomeCancelled)
	res.Rejected = rejectionsJSON{SoldOut: stats.count(outcomeSoldOut), InsufficientStock: stats.count(outcomeInsufficient),
		LimitExceeded: stats.count(outcomeLimit), Expired: stats.count(outcomeExpired), Other: stats.count(outcomeRejected)}
	res.Errors = stats.count(outcomeUnknown)
	res.Duplicates = l.dups.Load()
	res.Latency = latencyOf(stats.lat)
	res.Timeline = tl.points()
	res.ElapsedS = round3(res.ElapsedS)

	// Settle the unknown outcomes, then judge the books.
	if n := len(l.pending); n > 0 {
		fmt.Fprintf(log, "stockctl bench: replaying %d ops whose outcome was unknown, with their request ids\n", n)
	}
	resolved, unknown := l.replay(ctx, sc.opTimeout)
	res.Resolved = resolved
	expects := make([]skuExpect, len(skus))
	for i, s := range skus {
		expects[i] = skuExpect{SKU: s, Stock: sc.stock, Acked: l.acked[i].Load(), Unknown: unknown[i], Reserves: sc.mode == modeReserve}
		res.UnitsSold += expects[i].Acked
	}
	cctx, cancel := context.WithTimeout(ctx, convergeWait+4*sc.opTimeout)
	defer cancel()
	res.Check, err = runCheck(cctx, env.clients[0], env.nodes, sc.prefix, expects, convergeWait)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// lateBuyers is the sell-out's second phase: once every buyer saw sold_out, late buyers keep
// deducting for the rest of the duration (at least 1s) and every answer must be sold_out.
func (env *benchEnv) lateBuyers(ctx context.Context, l *load, sc scenario, start time.Time, stats *phaseStats, tl *timeline) (*selloutJSON, error) {
	end := time.Now()
	so := &selloutJSON{SelloutS: round3(end.Sub(start).Seconds()), LateBuyers: sc.lateBuyers,
		SoldOut: stats.count(outcomeSoldOut) == uint64(sc.buyers)}
	if last := stats.lastOK.Load(); last > 0 {
		so.LastSaleS = round3(time.Unix(0, last).Sub(start).Seconds())
	}
	if !so.SoldOut || sc.lateBuyers == 0 || ctx.Err() != nil {
		return so, nil
	}
	late := make([]*buyer, sc.lateBuyers)
	for i := range late {
		var err error
		if late[i], err = l.newBuyer(sc.buyers+i, uint64(sc.buyers+i)+1); err != nil {
			return nil, err
		}
	}
	before, err := env.leaderApplied(ctx)
	if err != nil {
		return nil, err
	}
	span := max(sc.duration-end.Sub(start), time.Second)
	req0, over0 := env.counters()
	from := time.Now()
	lateStats := newPhaseStats(from, tl)
	octx, cancel := context.WithDeadline(ctx, from.Add(span+sc.opTimeout))
	l.drive(octx, late, lateStats, from.Add(span), 0, false)
	cancel()
	lateS := time.Since(from).Seconds()
	req1, over1 := env.counters()
	so.LateRequests, so.Late429 = req1-req0, over1-over0
	after, err := env.leaderApplied(ctx)
	if err != nil {
		return nil, err
	}
	so.LateS = round3(lateS)
	so.LateRejected = lateStats.count(outcomeSoldOut)
	so.LateOther = lateStats.total() - so.LateRejected
	so.LatePerSecond = math.Round(float64(so.LateRejected)/lateS*10) / 10
	so.LateLatency = latencyOf(lateStats.lat)
	so.AppliedBefore, so.AppliedAfter = before, after
	so.LogAllowance = uint64(math.Ceil(lateS)) + 2
	so.WroteLog = after-before > so.LogAllowance
	return so, nil
}

// leaderApplied reads GET /v1/cluster/self on every node and returns the leader's applied
// index.
func (env *benchEnv) leaderApplied(ctx context.Context) (uint64, error) {
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		for _, a := range env.addrs {
			n, err := env.self(ctx, a)
			if err != nil {
				lastErr = err
				continue
			}
			if n.Role == api.RoleLeader {
				return n.AppliedIndex, nil
			}
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("no node says it leads (GET /v1/cluster/self): %v", lastErr)
}

func (env *benchEnv) self(ctx context.Context, addr string) (api.Node, error) {
	var n api.Node
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.scheme+addr+"/v1/cluster/self", nil)
	if err != nil {
		return n, err
	}
	if env.auth != "" {
		req.Header.Set("Authorization", env.auth)
	}
	resp, err := env.plain.Do(req)
	if err != nil {
		return n, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("%s: GET /v1/cluster/self: HTTP %d", addr, resp.StatusCode)
	}
	return n, json.NewDecoder(resp.Body).Decode(&n)
}

// warmBuyers makes the run's buyers over the env's clients and warms them up with a read.
func (env *benchEnv) warmBuyers(ctx context.Context, sc scenario, skus []string) (*load, []*buyer, error) {
	l := newLoad(sc, env.clients, skus, randomID(8))
	buyers := make([]*buyer, sc.buyers)
	for i := range buyers {
		var err error
		if buyers[i], err = l.newBuyer(i, uint64(i)+1); err != nil {
			return nil, nil, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, sc.opTimeout)
	defer cancel()
	if err := l.warm(wctx, buyers); err != nil {
		return nil, nil, fmt.Errorf("warm-up read: %w", err)
	}
	return l, buyers, nil
}
