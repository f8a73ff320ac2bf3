package node

import (
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flashstock/flashstock/fsm"
	"github.com/flashstock/flashstock/internal/version"
)

// metrics is one process's Prometheus registry and the instruments of the process
// itself (HTTP, auth, rate limits, build). Each process (each Node) has its own registry
// (no prometheus.DefaultRegisterer), so several nodes in one process (in-process test
// clusters) each show their own numbers. Each group registers its own instruments on it
// (groupMetrics), every series with a group label.
//
// hashicorp/raft's and raft-boltdb's own metrics (raft_commitTime, raft_fsm_applyBatch,
// raft_boltdb_*; not raft's per-RPC timings, unexportedRaftKeys) cannot be per node or per
// group: they go to go-metrics' global, process-wide sink with neither in the key. Each
// node's registry therefore includes a raftSink fed by the process-wide fanout of
// raftmetrics.go: with one node and one group per process (stockd) they are that group's;
// otherwise they are summed over the process's groups and nodes.
type metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	rateLimited  prometheus.Counter
	// placementSteps counts the placement controller's steps by kind and outcome.
	placementSteps *prometheus.CounterVec

	detachRaft func() // stops feeding this node's go-metrics sink
}

// groupMetrics are one group's instruments, registered on the process's registry with a
// constant group label while the group runs.
type groupMetrics struct {
	deductions *prometheus.CounterVec
	units      prometheus.Counter
	rejections *prometheus.CounterVec
	applyBatch prometheus.Histogram
	applySize  prometheus.Histogram
	storeLogs  prometheus.Histogram
	diskStalls prometheus.Counter

	unregister func() // takes every one of the group's collectors off the registry
}

// groupLabel names the group of a per-group series.
const groupLabel = "group"

// maxStockMetrics bounds the per-SKU stock series (listed plus top).
const maxStockMetrics = 1000

func newMetrics() (*metrics, error) {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &metrics{reg: reg}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flashstock_http_requests_total",
		Help: "HTTP requests answered, by route pattern, method and status code."}, []string{"route", "method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "flashstock_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request (a watch counts until it ends), by route pattern and method.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route", "method"})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flashstock_auth_failures_total",
		Help: "Requests refused by auth: unauthenticated (401) or forbidden (403, role too weak)."}, []string{"reason"})
	m.rateLimited = prometheus.NewCounter(prometheus.CounterOpts{Name: "flashstock_rate_limited_total",
		Help: "Requests refused with 429 by the per-client rate limit."})
	// The Go runtime and process collectors describe the process, not the node; with
	// several nodes in one process each shows the same numbers.
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.placementSteps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flashstock_placement_steps_total",
		Help: "Placement steps this node's controller carried out (outcome done: recorded in the meta log) or failed, by step kind."}, []string{"kind", "outcome"})
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.authFailures, m.rateLimited, m.placementSteps} {
		f(c)
	}

	// The usual *_build_info form: constant 1, the build in its labels, so a query can
	// join it to any series or count the members still on an old version mid-upgrade.
	build := version.Get()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "flashstock_build_info",
		Help:        "Always 1; the labels name the running build: version, git revision and Go version.",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": build.GoVersion}})
	buildInfo.Set(1)
	f(buildInfo)

	sink := newRaftSink()
	f(sink)
	m.detachRaft = attachRaftMetrics(sink)
	return m, nil
}

// newGroupMetrics registers the group's instruments on the process's registry.
func (g *Group) newGroupMetrics() (*groupMetrics, error) {
	reg := g.srv.metrics.reg
	label := prometheus.Labels{groupLabel: strconv.FormatUint(g.id, 10)}
	var registered []prometheus.Collector
	m := &groupMetrics{unregister: func() {
		for _, c := range registered {
			reg.Unregister(c)
		}
	}}
	var failed error
	f := func(c prometheus.Collector) {
		if failed != nil {
			return
		}
		if err := reg.Register(c); err != nil {
			failed = err
			return
		}
		registered = append(registered, c)
	}
	m.deductions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flashstock_deductions_total", ConstLabels: label,
		Help: "Deductions this node answered as leader with success; duplicate=\"true\" for a retry given its first answer."}, []string{"duplicate"})
	m.units = prometheus.NewCounter(prometheus.CounterOpts{Name: "flashstock_deducted_units_total", ConstLabels: label,
		Help: "Units sold by the deductions this node answered as leader (duplicates not counted)."})
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flashstock_rejections_total", ConstLabels: label,
		Help: "Commands this node answered as leader with a rejection, by command, reason (error code) and path: log (decided in apply) or fast_path (sold out without a log write)."},
		[]string{"command", "reason", "path"})
	m.applyBatch = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flashstock_fsm_apply_batch_seconds", ConstLabels: label,
		Help:    "Time the state machine takes to apply one batch of log entries (one bbolt transaction).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})
	m.applySize = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flashstock_fsm_apply_batch_entries", ConstLabels: label,
		Help: "Log entries per applied batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)})
	m.storeLogs = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flashstock_raft_store_logs_seconds",
		Help:        "Time one write of entries to the raft log takes, fsync included; store is the log store's kind.",
		ConstLabels: prometheus.Labels{groupLabel: label[groupLabel], "store": g.logStoreKind()},
		Buckets:     prometheus.ExponentialBuckets(0.0001, 2, 18)})
	m.diskStalls = prometheus.NewCounter(prometheus.CounterOpts{Name: "flashstock_disk_stalls_total", ConstLabels: label,
		Help: "Raft log writes that took longer than the disk stall timeout."})
	for _, c := range []prometheus.Collector{m.deductions, m.units, m.rejections, m.applyBatch, m.applySize, m.storeLogs, m.diskStalls} {
		f(c)
	}
	f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flashstock_read_rounds_total", ConstLabels: label,
		Help: "Leadership confirmations (a heartbeat round each) this node started for strong reads and sold-out answers; reads waiting at the same time share one."},
		func() float64 { return float64(g.readRounds.Load()) }))

	gauge := func(name, help string, fn func() float64) {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: label}, fn))
	}
	// These five names predate this file; the chaos suite and dashboards read them.
	gauge("flashstock_raft_leader", "1 while this node believes it leads.", func() float64 {
		return b2f(g.raft.State() == raft.Leader)
	})
	gauge("flashstock_raft_term", "Current raft term.", func() float64 { return float64(g.raft.CurrentTerm()) })
	gauge("flashstock_raft_commit_index", "Highest log index known committed.", func() float64 { return float64(g.raft.CommitIndex()) })
	gauge("flashstock_fsm_applied_index", "Highest log index the state machine applied.", func() float64 { return float64(g.appliedIndex()) })
	gauge("flashstock_proposals_inflight", "Log entries proposed on the leader and not yet resolved.", func() float64 {
		return float64(g.inflight.Load())
	})
	gauge("flashstock_raft_last_contact_seconds", "Seconds since this node heard from the leader (0 on the leader, -1 never).", func() float64 {
		ms := g.lastContactMS()
		if ms < 0 {
			return -1
		}
		return float64(ms) / 1000
	})
	gauge("flashstock_raft_last_snapshot_bytes", "Size of the newest raft snapshot on disk.", func() float64 {
		list, err := g.snaps.List()
		if err != nil || len(list) == 0 {
			return 0
		}
		return float64(list[0].Size)
	})
	gauge("flashstock_raft_last_snapshot_index", "Log index of the newest raft snapshot on disk.", func() float64 {
		list, err := g.snaps.List()
		if err != nil || len(list) == 0 {
			return 0
		}
		return float64(list[0].Index)
	})
	gauge("flashstock_disk_stalled", "1 while a raft log write has been running past the disk stall timeout.", func() float64 {
		return b2f(g.diskStalled.Load())
	})
	states := prometheus.NewDesc("flashstock_raft_state", "1 for this node's raft state (follower, candidate, leader, shutdown).", []string{"state"}, label)
	f(collectorFunc{desc: states, collect: func(ch chan<- prometheus.Metric) {
		cur := g.raft.State()
		for _, s := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
			ch <- prometheus.MustNewConstMetric(states, prometheus.GaugeValue, b2f(s == cur), stateName(s))
		}
	}})
	if !g.isMeta() && (len(g.cfg.StockMetricsSKUs) > 0 || g.cfg.StockMetricsTop > 0) {
		f(g.stockCollector(label))
	}
	if failed != nil {
		m.unregister()
		return nil, failed
	}
	return m, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	case raft.Leader:
		return "leader"
	}
	return "shutdown"
}

// collectorFunc is a collector of one family made at scrape time.
type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// stockScanLimit bounds the SKUs a top-N scrape reads; past it the top is of the first
// stockScanLimit SKUs in key order (a scrape must not read an unbounded catalogue).
const stockScanLimit = 100_000

// stockCollector reports available, reserved and sold of the listed SKUs and of the top
// sellers, from local state at scrape time (as stale as this node is).
func (g *Group) stockCollector(label prometheus.Labels) prometheus.Collector {
	desc := prometheus.NewDesc("flashstock_sku_units", "Units of a SKU by column (available, reserved, sold); only for the SKUs chosen by --stock-metrics-skus and --stock-metrics-top.", []string{"sku", "column"}, label)
	return collectorFunc{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		chosen := map[string]fsm.SKU{}
		for _, name := range g.cfg.StockMetricsSKUs {
			if s, err := g.fsm.GetSKU(name); err == nil {
				chosen[name] = s
			}
		}
		if k := g.cfg.StockMetricsTop; k > 0 {
			var all []fsm.SKU
			after := ""
			for len(all) < stockScanLimit {
				page, err := g.fsm.ListSKUs("", after, maxListLimit)
				if err != nil || len(page) == 0 {
					break
				}
				all = append(all, page...)
				after = page[len(page)-1].SKU
			}
			sort.SliceStable(all, func(i, j int) bool { return all[i].Sold > all[j].Sold })
			for _, s := range all[:min(k, len(all))] {
				chosen[s.SKU] = s
			}
		}
		for name, s := range chosen {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(s.Available), name, "available")
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(s.Reserved), name, "reserved")
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(s.Sold), name, "sold")
		}
	}}
}

func (n *Node) handleMetrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
}

// statusRecorder keeps the status a handler wrote, for the request metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush passes through, so server-sent events (watch) still stream.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// countResult records the leader's answer to a command; fastPath says the answer was made
// without the log (the sold-out fast path).
func (g *Group) countResult(cmd fsm.Command, res fsm.Result, fastPath bool) {
	path := "log"
	if fastPath {
		path = "fast_path"
	}
	switch {
	case !res.OK():
		g.metrics.rejections.WithLabelValues(cmd.Kind.String(), string(res.Code), path).Inc()
	case cmd.Kind == fsm.KindDeduct:
		g.metrics.deductions.WithLabelValues(strconv.FormatBool(res.Duplicate)).Inc()
		if !res.Duplicate {
			g.metrics.units.Add(float64(cmd.Qty))
		}
	}
}

func (n *Node) countAuthFailure(reason string) { n.metrics.authFailures.WithLabelValues(reason).Inc() }
func (n *Node) countRateLimited()              { n.metrics.rateLimited.Inc() }

// timedFSM times every batch the state machine applies.
type timedFSM struct {
	*stateMachine
	m *groupMetrics
}

func (t timedFSM) ApplyBatch(logs []*raft.Log) []any {
	start := time.Now()
	out := t.stateMachine.ApplyBatch(logs)
	t.m.applyBatch.Observe(time.Since(start).Seconds())
	t.m.applySize.Observe(float64(len(logs)))
	return out
}

func (t timedFSM) Apply(l *raft.Log) any { return t.ApplyBatch([]*raft.Log{l})[0] }

var _ raft.BatchingFSM = timedFSM{}
