package node

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
)

// raftSink is one node's go-metrics sink for hashicorp/raft's and raft-boltdb's metrics,
// and the Prometheus collector that shows them on the node's /metrics. It replaces
// go-metrics' compat Prometheus sink, which for every sample joined and escaped the key,
// hashed the labels into a string, and copied and re-stored its instrument in a sync.Map:
// raft records several samples per log entry and per AppendEntries, and that was 5-8 % of
// a node's CPU at 16 buyers (BENCHMARKS.md, "Where a lone deduction's CPU goes"). Here a
// sample of a key seen before allocates nothing: the key's parts are hashed in place, the
// instrument is found in an immutable map and confirmed by comparing parts, and only a
// key's first sample builds its series name (raftSeriesName) and instrument.
//
// The series are the compat sink's: a key's parts joined with "_" (raft.commitTime is
// raft_commitTime), a gauge for SetGauge, a counter for IncrCounter, a summary for
// AddSample and MeasureSince (milliseconds, go-metrics' timer unit), labels as constant
// labels; EmitKey has no Prometheus form and is dropped. One thing differs: a summary has
// _sum and _count but no quantiles. The compat sink's quantile streams (0.5, 0.9, 0.99 over
// 10 s) cost some 340 ns per sample, far more than everything else here together, and a
// quantile over a process's mixed groups cannot be aggregated anyway; the distributions
// that matter have histograms of our own per group (flashstock_raft_store_logs_seconds,
// flashstock_fsm_apply_batch_seconds, flashstock_http_request_duration_seconds).
//
// As in the compat sink, a series that gets no sample for raftSeriesExpiry disappears (a
// former leader stops showing raft_leader_dispatchNumLogs), to come back from zero with its
// next sample. The hot path reads no clock for that: a sample marks its instrument, and a
// scrape stamps the marked ones; a sample racing its series' expiry may be lost.
type raftSink struct {
	// instruments maps raftKeyHash to the instruments of that hash (several only on a
	// collision). The map is never written once stored: a new key or an expiry stores a
	// changed copy, under mu, so a sample reads it without a lock.
	instruments atomic.Pointer[map[uint64][]*raftInstrument]
	mu          sync.Mutex
}

// raftSeriesExpiry is how long a raft series stays without a sample (the Expiration the
// compat sink had).
const raftSeriesExpiry = time.Minute

type raftKind uint8

const (
	raftGauge raftKind = iota + 1
	raftCounter
	raftSummary
)

type raftInstrument struct {
	kind   raftKind
	key    []string
	labels []gometrics.Label

	gauge   prometheus.Gauge
	counter prometheus.Counter
	summary prometheus.Summary

	sampled atomic.Bool // a sample arrived since the last scrape
	seen    time.Time   // the last scrape that found it sampled; under raftSink.mu
}

var (
	_ gometrics.MetricSink = (*raftSink)(nil)
	_ prometheus.Collector = (*raftSink)(nil)
)

func newRaftSink() *raftSink {
	s := &raftSink{}
	s.instruments.Store(&map[uint64][]*raftInstrument{})
	return s
}

// unexportedRaftKeys are the leading parts of the keys not shown. Raft times every RPC it
// sends and serves, heartbeats included: a follower serves some 50 heartbeats a second per
// group, and each was a sample through the sink. Our own per-group metrics tell the same
// story (raft_store_logs_seconds, last contact, commit and apply times). go-metrics could
// drop them itself (Config.BlockedPrefixes), but only by joining every sample's key into a
// string and walking a radix tree with it.
var unexportedRaftKeys = [][]string{
	{"raft", "net"},
	{"raft", "rpc"},
	{"raft", "replication", "heartbeat"},
	{"raft", "replication", "appendEntries"},
}

// raftKeyExported reports whether a key is shown on /metrics.
func raftKeyExported(key []string) bool {
	for _, prefix := range unexportedRaftKeys {
		if len(key) >= len(prefix) && slices.Equal(key[:len(prefix)], prefix) {
			return false
		}
	}
	return true
}

// raftSeriesName is a key's Prometheus name, as the compat sink made it.
func raftSeriesName(key []string) string {
	return raftNameReplacer.Replace(strings.Join(key, "_"))
}

var raftNameReplacer = strings.NewReplacer(" ", "_", ".", "_", "=", "_", "-", "_", "/", "_")

var raftKeySeed = maphash.MakeSeed()

// raftKeyHash hashes a sample's kind, key and labels part by part, so that ["ab", "c"]
// and ["a", "bc"] differ without a separator.
func raftKeyHash(kind raftKind, key []string, labels []gometrics.Label) uint64 {
	const prime = 1099511628211 // FNV-1a's 64-bit prime, to mix the parts' hashes
	h := uint64(kind)
	for _, p := range key {
		h = (h ^ maphash.String(raftKeySeed, p)) * prime
	}
	for _, l := range labels {
		h = (h ^ maphash.String(raftKeySeed, l.Name)) * prime
		h = (h ^ maphash.String(raftKeySeed, l.Value)) * prime
	}
	return h
}

// instrument returns the instrument of a sample, made on the key's first sample.
func (s *raftSink) instrument(kind raftKind, key []string, labels []gometrics.Label) *raftInstrument {
	h := raftKeyHash(kind, key, labels)
	for _, in := range (*s.instruments.Load())[h] {
		if in.is(kind, key, labels) {
			in.markSampled()
			return in
		}
	}
	return s.create(h, kind, key, labels)
}

func (in *raftInstrument) is(kind raftKind, key []string, labels []gometrics.Label) bool {
	return in.kind == kind && slices.Equal(in.key, key) && slices.Equal(in.labels, labels)
}

// markSampled writes only when the flag changes: samples on several cores then share
// its cache line instead of passing it around.
func (in *raftInstrument) markSampled() {
	if !in.sampled.Load() {
		in.sampled.Store(true)
	}
}

func (s *raftSink) create(h uint64, kind raftKind, key []string, labels []gometrics.Label) *raftInstrument {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.instruments.Load()
	for _, in := range old[h] { // made by a sample that held mu before this one
		if in.is(kind, key, labels) {
			in.markSampled()
			return in
		}
	}
	in := &raftInstrument{kind: kind, key: slices.Clone(key), labels: slices.Clone(labels)}
	in.sampled.Store(true)
	name := raftSeriesName(key)
	constLabels := prometheus.Labels{}
	for _, l := range labels {
		constLabels[l.Name] = l.Value
	}
	help := "hashicorp/raft's or raft-boltdb's go-metrics key " + strings.Join(key, ".") + ", for the whole process (every node and group in it)."
	if kind == raftSummary {
		help += " A timer's samples are milliseconds."
	}
	switch kind {
	case raftGauge:
		in.gauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: constLabels})
	case raftCounter:
		in.counter = prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: constLabels})
	case raftSummary:
		in.summary = prometheus.NewSummary(prometheus.SummaryOpts{Name: name, Help: help, ConstLabels: constLabels})
	}
	next := make(map[uint64][]*raftInstrument, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[h] = append(slices.Clip(old[h]), in)
	s.instruments.Store(&next)
	return in
}

func (s *raftSink) SetGauge(key []string, val float32) { s.SetGaugeWithLabels(key, val, nil) }

func (s *raftSink) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	if raftKeyExported(key) {
		s.instrument(raftGauge, key, labels).gauge.Set(float64(val))
	}
}

// EmitKey is dropped: a key/value event has no Prometheus form (nor had it in the compat sink).
func (s *raftSink) EmitKey([]string, float32) {}

func (s *raftSink) IncrCounter(key []string, val float32) { s.IncrCounterWithLabels(key, val, nil) }

func (s *raftSink) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	// A counter only grows (Add panics otherwise); none of raft's should get one.
	if val >= 0 && raftKeyExported(key) {
		s.instrument(raftCounter, key, labels).counter.Add(float64(val))
	}
}

func (s *raftSink) AddSample(key []string, val float32) { s.AddSampleWithLabels(key, val, nil) }

func (s *raftSink) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	if raftKeyExported(key) {
		s.instrument(raftSummary, key, labels).summary.Observe(float64(val))
	}
}

// Describe describes nothing: the series appear with raft's samples, so this is an
// unchecked collector (prometheus.Registerer).
func (s *raftSink) Describe(chan<- *prometheus.Desc) {}

func (s *raftSink) Collect(ch chan<- prometheus.Metric) { s.collectAt(ch, time.Now()) }

// collectAt is Collect at a given time, which also expires the series without a sample
// since raftSeriesExpiry before now.
func (s *raftSink) collectAt(ch chan<- prometheus.Metric, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := *s.instruments.Load()
	expired := false
	for _, ins := range cur {
		for _, in := range ins {
			if in.sampled.Swap(false) {
				in.seen = now
			} else if now.Sub(in.seen) > raftSeriesExpiry {
				expired = true
				continue
			}
			switch in.kind {
			case raftGauge:
				ch <- in.gauge
			case raftCounter:
				ch <- in.counter
			case raftSummary:
				ch <- in.summary
			}
		}
	}
	if !expired {
		return
	}
	next := make(map[uint64][]*raftInstrument, len(cur))
	for h, ins := range cur {
		var keep []*raftInstrument
		for _, in := range ins {
			if !now.After(in.seen.Add(raftSeriesExpiry)) {
				keep = append(keep, in)
			}
		}
		if len(keep) > 0 {
			next[h] = keep
		}
	}
	s.instruments.Store(&next)
}
