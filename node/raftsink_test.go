package node

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
)

// raftSeries gathers a registry's raft_* series as "name" or `name{label="value"}` (a
// summary as its _count and _sum) to their values, and each family's type ("COUNTER",
// "GAUGE", "SUMMARY") by name.
func raftSeries(t testing.TB, g prometheus.Gatherer) (values map[string]float64, types map[string]string) {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	values, types = map[string]float64{}, map[string]string{}
	for _, mf := range families {
		name := mf.GetName()
		if !strings.HasPrefix(name, "raft_") {
			continue
		}
		types[name] = mf.GetType().String()
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			ls := ""
			if len(labels) > 0 {
				ls = "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				values[name+ls] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				values[name+ls] = m.GetGauge().GetValue()
			case m.GetSummary() != nil:
				values[name+"_count"+ls] = float64(m.GetSummary().GetSampleCount())
				values[name+"_sum"+ls] = m.GetSummary().GetSampleSum()
				if len(m.GetSummary().GetQuantile()) > 0 {
					values[name+"_quantiles"+ls] = float64(len(m.GetSummary().GetQuantile()))
				}
			}
		}
	}
	return values, types
}

func raftSeriesValue(t testing.TB, g prometheus.Gatherer, series string) float64 {
	t.Helper()
	values, _ := raftSeries(t, g)
	return values[series]
}

func testMetrics(t testing.TB) *metrics {
	t.Helper()
	m, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.detachRaft)
	return m
}

// The keys below are under raft's own prefix but not ones raft records, so that a raft
// node left running by another test cannot change their values.

// TestRaftSink_SamplesShowOnTheNodesRegistryButNotPerRPCTimings: what raft records through
// go-metrics' global shows on /metrics under the compat sink's names and types, and the
// per-RPC timings (a sample per heartbeat) do not.
func TestRaftSink_SamplesShowOnTheNodesRegistryButNotPerRPCTimings(t *testing.T) {
	m := testMetrics(t)
	start := time.Now().Add(-3 * time.Millisecond)
	gometrics.MeasureSince([]string{"raft", "sinktest", "commitTime"}, start)
	gometrics.AddSample([]string{"raft", "sinktest", "commitTime"}, 2.5)
	gometrics.IncrCounter([]string{"raft", "sinktest", "apply"}, 2)
	gometrics.IncrCounter([]string{"raft", "sinktest", "apply"}, 1)
	gometrics.SetGauge([]string{"raft", "sinktest", "peers"}, 5)
	gometrics.SetGauge([]string{"raft", "sinktest", "peers"}, 3)
	gometrics.AddSampleWithLabels([]string{"raft", "sinktest", "installSnapshot"}, 7, []gometrics.Label{{Name: "peer_id", Value: "n2"}})
	gometrics.EmitKey([]string{"raft", "sinktest", "event"}, 1)
	for _, key := range [][]string{
		{"raft", "rpc", "appendEntries"}, {"raft", "rpc", "processHeartbeat"}, {"raft", "net", "getRPCType"},
		{"raft", "replication", "heartbeat", "n2"}, {"raft", "replication", "appendEntries", "rpc", "n2"},
	} {
		gometrics.MeasureSince(key, start)
	}
	gometrics.MeasureSinceWithLabels([]string{"raft", "replication", "heartbeat"}, start, []gometrics.Label{{Name: "peer_id", Value: "n2"}})
	gometrics.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 4, []gometrics.Label{{Name: "peer_id", Value: "n2"}})

	got, types := raftSeries(t, m.reg)
	if c := got["raft_sinktest_commitTime_count"]; c != 2 {
		t.Errorf("raft_sinktest_commitTime_count = %v, want 2", c)
	}
	// MeasureSince gives milliseconds: at least the 3 ms before start, plus the 2.5 sample.
	if s := got["raft_sinktest_commitTime_sum"]; s < 5.5 || s > 5.5+float64(time.Since(start).Milliseconds())+1 {
		t.Errorf("raft_sinktest_commitTime_sum = %v, want 3 ms or a little more, plus 2.5", s)
	}
	for name, typ := range map[string]string{"raft_sinktest_commitTime": "SUMMARY", "raft_sinktest_apply": "COUNTER", "raft_sinktest_peers": "GAUGE"} {
		if types[name] != typ {
			t.Errorf("%s is a %q, want %s", name, types[name], typ)
		}
	}
	want := map[string]float64{
		"raft_sinktest_apply":                               3,
		"raft_sinktest_peers":                               3,
		`raft_sinktest_installSnapshot_count{peer_id="n2"}`: 1,
		`raft_sinktest_installSnapshot_sum{peer_id="n2"}`:   7,
	}
	for series, v := range want {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}
	for series := range got {
		for _, prefix := range []string{"raft_rpc_", "raft_net_", "raft_replication_heartbeat", "raft_replication_appendEntries", "raft_sinktest_event"} {
			if strings.HasPrefix(series, prefix) {
				t.Errorf("series %s is shown", series)
			}
		}
		if strings.Contains(series, "_quantiles") {
			t.Errorf("%s: a raft summary has quantiles (each costs the hot path a stream insert)", series)
		}
	}
}

// TestRaftSink_EveryAttachedNodeSeesSamplesUntilItDetaches: raft's metrics are
// process-wide, so every node in a process shows them; a stopped node's sink gets no more.
func TestRaftSink_EveryAttachedNodeSeesSamplesUntilItDetaches(t *testing.T) {
	a, b := testMetrics(t), testMetrics(t)
	key := []string{"raft", "sinktest", "detach"}
	gometrics.IncrCounter(key, 1)
	a.detachRaft()
	a.detachRaft() // a node may stop twice (Shutdown after a failed start); the second is a no-op
	gometrics.IncrCounter(key, 1)
	if got := raftSeriesValue(t, a.reg, "raft_sinktest_detach"); got != 1 {
		t.Errorf("detached node's raft_sinktest_detach = %v, want 1", got)
	}
	if got := raftSeriesValue(t, b.reg, "raft_sinktest_detach"); got != 2 {
		t.Errorf("attached node's raft_sinktest_detach = %v, want 2", got)
	}
}

// TestRaftSink_SampleOfAKnownKeyAllocatesNothing: after a key's first sample, a sample
// through go-metrics' global, the fanout and the sink allocates nothing, and neither does
// dropping a per-RPC timing. (A sample with labels is left out: go-metrics itself copies
// the labels of every such sample before any sink sees it.)
func TestRaftSink_SampleOfAKnownKeyAllocatesNothing(t *testing.T) {
	testMetrics(t)
	timer, sample := []string{"raft", "sinktest", "commitTime"}, []string{"raft", "sinktest", "applyBatchNum"}
	counter, gauge := []string{"raft", "sinktest", "apply"}, []string{"raft", "sinktest", "peers"}
	perRPC := []string{"raft", "rpc", "appendEntries"}
	start := time.Now()
	record := func() {
		gometrics.MeasureSince(timer, start)
		gometrics.AddSample(sample, 3)
		gometrics.IncrCounter(counter, 1)
		gometrics.SetGauge(gauge, 3)
		gometrics.MeasureSince(perRPC, start)
	}
	record() // the first sample of each key makes its instrument
	if allocs := testing.AllocsPerRun(1000, record); allocs != 0 {
		t.Errorf("%v allocations per round of five samples, want 0", allocs)
	}
}

// TestRaftSink_ConcurrentFirstSamplesMakeOneSeries: samples of new keys on many goroutines
// at once, while scrapes run, each land in the one series of their key.
func TestRaftSink_ConcurrentFirstSamplesMakeOneSeries(t *testing.T) {
	s := newRaftSink()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	const workers, keys, rounds = 4, 20, 5
	var wg sync.WaitGroup
	stop := make(chan struct{})
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		for {
			select {
			case <-stop:
				return
			default:
				_, _ = reg.Gather()
			}
		}
	}()
	for range workers {
		wg.Go(func() {
			for range rounds {
				for k := range keys {
					s.IncrCounter([]string{"raft", "sinktest", fmt.Sprint("k", k)}, 1)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-scraped
	got, _ := raftSeries(t, reg)
	for k := range keys {
		if v := got[fmt.Sprint("raft_sinktest_k", k)]; v != workers*rounds {
			t.Errorf("raft_sinktest_k%d = %v, want %d", k, v, workers*rounds)
		}
	}
}

// TestRaftSink_SeriesWithoutSampleForAMinuteGoes: as in the compat sink, a series with no
// sample for raftSeriesExpiry disappears and comes back from zero with its next sample.
func TestRaftSink_SeriesWithoutSampleForAMinuteGoes(t *testing.T) {
	s := newRaftSink()
	busy, idle := []string{"raft", "sinktest", "busy"}, []string{"raft", "sinktest", "idle"}
	at := func(now time.Time) map[string]float64 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectorAt{s, now})
		values, _ := raftSeries(t, reg)
		return values
	}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	s.IncrCounter(busy, 1)
	s.IncrCounter(idle, 1)
	check := func(now time.Time, want map[string]float64) {
		t.Helper()
		got := at(now)
		for _, name := range []string{"raft_sinktest_busy", "raft_sinktest_idle"} {
			if g, ok := got[name]; g != want[name] || ok != (want[name] != 0) {
				t.Errorf("at t0+%v: %s = %v (present %v), want %v", now.Sub(t0), name, g, ok, want[name])
			}
		}
	}
	check(t0, map[string]float64{"raft_sinktest_busy": 1, "raft_sinktest_idle": 1})
	s.IncrCounter(busy, 1)
	check(t0.Add(30*time.Second), map[string]float64{"raft_sinktest_busy": 2, "raft_sinktest_idle": 1})
	check(t0.Add(raftSeriesExpiry), map[string]float64{"raft_sinktest_busy": 2, "raft_sinktest_idle": 1})
	check(t0.Add(raftSeriesExpiry+time.Second), map[string]float64{"raft_sinktest_busy": 2})
	check(t0.Add(30*time.Second+raftSeriesExpiry+time.Second), nil)
	s.IncrCounter(idle, 1)
	check(t0.Add(2*raftSeriesExpiry), map[string]float64{"raft_sinktest_idle": 1})
}

// collectorAt collects a raftSink as at a given time.
type collectorAt struct {
	s   *raftSink
	now time.Time
}

func (c collectorAt) Describe(chan<- *prometheus.Desc)    {}
func (c collectorAt) Collect(ch chan<- prometheus.Metric) { c.s.collectAt(ch, c.now) }

func TestRaftKeyExported(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"raft.commitTime", true},
		{"raft.fsm.applyBatch", true},
		{"raft.boltdb.storeLogs", true},
		{"raft.replication.installSnapshot.n2", true},
		{"raft.replication.appendEntriesX", true},
		{"raft", true},
		{"raft.rpc.appendEntries", false},
		{"raft.rpc.appendEntries.storeLogs", false},
		{"raft.net.rpcDecode", false},
		{"raft.replication.heartbeat", false},
		{"raft.replication.heartbeat.n2", false},
		{"raft.replication.appendEntries.rpc.n2", false},
		{"raft.replication.appendEntries.logs", false},
	} {
		if got := raftKeyExported(strings.Split(tc.key, ".")); got != tc.want {
			t.Errorf("%s: exported %v, want %v", tc.key, got, tc.want)
		}
	}
}

// BenchmarkRaftMetricsSample: one sample through go-metrics' global to one node's sink,
// as raft records it: a timer of a shown key, and a per-RPC timing that is dropped.
func BenchmarkRaftMetricsSample(b *testing.B) {
	m, err := newMetrics()
	if err != nil {
		b.Fatal(err)
	}
	defer m.detachRaft()
	for _, key := range [][]string{{"raft", "commitTime"}, {"raft", "rpc", "appendEntries"}} {
		b.Run(strings.Join(key, "."), func(b *testing.B) {
			start := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				gometrics.MeasureSince(key, start)
			}
		})
	}
}
