package node

import (
	"sync"

	gometrics "github.com/hashicorp/go-metrics/compat"
)

// raft and raft-boltdb report their metrics to go-metrics' global sink, through the
// go-metrics compat package: to armon/go-metrics by default, to hashicorp/go-metrics with
// -tags hashicorpmetrics (docs/RAFT-NOTES.md, "Versions"). This file uses that same compat
// package, so whichever of the two a build really uses is the one that gets our sink.
//
// That global is process-wide, and raft's metric keys do not name the node; so this is the
// one piece of package-level state in node, on purpose: it mirrors a process-wide fact
// rather than hiding it. The first node installs a fanout as go-metrics' global sink, once
// per process; every node attaches its own Prometheus sink to it while it runs and
// detaches it when it stops. Every attached sink sees every node's raft metrics.
//
// A program that installs its own go-metrics global sink after a node started replaces
// the fanout, and raft's metrics then no longer reach /metrics.
var raftSinks = &fanoutSink{sinks: map[*fanoutEntry]struct{}{}}

var installRaftSinks sync.Once

type fanoutSink struct {
	mu    sync.RWMutex
	sinks map[*fanoutEntry]struct{}
}

type fanoutEntry struct{ sink gometrics.MetricSink }

var _ gometrics.MetricSink = (*fanoutSink)(nil)

// attachRaftMetrics feeds raft's metrics into sink until the returned func is called.
func attachRaftMetrics(sink gometrics.MetricSink) (detach func()) {
	installRaftSinks.Do(func() {
		// NewGlobal cannot fail with this config (no sink needs to connect anywhere).
		_, _ = gometrics.NewGlobal(raftMetricsConfig(), raftSinks)
	})
	e := &fanoutEntry{sink}
	raftSinks.mu.Lock()
	raftSinks.sinks[e] = struct{}{}
	raftSinks.mu.Unlock()
	return func() {
		raftSinks.mu.Lock()
		delete(raftSinks.sinks, e)
		raftSinks.mu.Unlock()
	}
}

func (f *fanoutSink) each(fn func(gometrics.MetricSink)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for e := range f.sinks {
		fn(e.sink)
	}
}

func (f *fanoutSink) SetGauge(key []string, val float32) {
	f.each(func(s gometrics.MetricSink) { s.SetGauge(key, val) })
}

func (f *fanoutSink) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	f.each(func(s gometrics.MetricSink) { s.SetGaugeWithLabels(key, val, labels) })
}

func (f *fanoutSink) EmitKey(key []string, val float32) {
	f.each(func(s gometrics.MetricSink) { s.EmitKey(key, val) })
}

func (f *fanoutSink) IncrCounter(key []string, val float32) {
	f.each(func(s gometrics.MetricSink) { s.IncrCounter(key, val) })
}

func (f *fanoutSink) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	f.each(func(s gometrics.MetricSink) { s.IncrCounterWithLabels(key, val, labels) })
}

func (f *fanoutSink) AddSample(key []string, val float32) {
	f.each(func(s gometrics.MetricSink) { s.AddSample(key, val) })
}

func (f *fanoutSink) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	f.each(func(s gometrics.MetricSink) { s.AddSampleWithLabels(key, val, labels) })
}
