package node

import (
	"slices"
	"sync"
	"sync/atomic"

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
// per process; every node attaches its own raftSink to it while it runs and detaches it
// when it stops. Every attached sink sees every node's raft metrics.
//
// A program that installs its own go-metrics global sink after a node started replaces
// the fanout, and raft's metrics then no longer reach /metrics.
var raftSinks = &fanoutSink{}

var installRaftSinks sync.Once

// fanoutSink passes each sample to every attached sink. The list is replaced, never
// changed, on attach and detach (under mu), so a sample reads it without a lock; a sample
// racing a detach may still reach the detached sink.
type fanoutSink struct {
	mu    sync.Mutex
	sinks atomic.Pointer[[]gometrics.MetricSink]
}

var _ gometrics.MetricSink = (*fanoutSink)(nil)

// attachRaftMetrics feeds raft's metrics into sink until the returned func is called.
func attachRaftMetrics(sink gometrics.MetricSink) (detach func()) {
	installRaftSinks.Do(func() {
		// NewGlobal cannot fail with this config (no sink needs to connect anywhere).
		_, _ = gometrics.NewGlobal(raftMetricsConfig(), raftSinks)
	})
	raftSinks.update(func(sinks []gometrics.MetricSink) []gometrics.MetricSink { return append(sinks, sink) })
	var once sync.Once
	return func() {
		once.Do(func() {
			raftSinks.update(func(sinks []gometrics.MetricSink) []gometrics.MetricSink {
				i := slices.Index(sinks, sink)
				return slices.Delete(sinks, i, i+1)
			})
		})
	}
}

// update stores fn's change to a copy of the list.
func (f *fanoutSink) update(fn func([]gometrics.MetricSink) []gometrics.MetricSink) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cur []gometrics.MetricSink
	if p := f.sinks.Load(); p != nil {
		cur = *p
	}
	next := fn(slices.Clone(cur))
	f.sinks.Store(&next)
}

func (f *fanoutSink) each() []gometrics.MetricSink {
	if p := f.sinks.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *fanoutSink) SetGauge(key []string, val float32) {
	for _, s := range f.each() {
		s.SetGauge(key, val)
	}
}

func (f *fanoutSink) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	for _, s := range f.each() {
		s.SetGaugeWithLabels(key, val, labels)
	}
}

func (f *fanoutSink) EmitKey(key []string, val float32) {
	for _, s := range f.each() {
		s.EmitKey(key, val)
	}
}

func (f *fanoutSink) IncrCounter(key []string, val float32) {
	for _, s := range f.each() {
		s.IncrCounter(key, val)
	}
}

func (f *fanoutSink) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	for _, s := range f.each() {
		s.IncrCounterWithLabels(key, val, labels)
	}
}

func (f *fanoutSink) AddSample(key []string, val float32) {
	for _, s := range f.each() {
		s.AddSample(key, val)
	}
}

func (f *fanoutSink) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	for _, s := range f.each() {
		s.AddSampleWithLabels(key, val, labels)
	}
}

// raftMetricsConfig is go-metrics' configuration for raft's metrics: no hostname prefix
// (Prometheus adds the instance), and no runtime stats (their goroutine never stops, and
// client_golang's Go collector is the better source). No filter either: the keys we do not
// show are dropped by raftSink (unexportedRaftKeys), which looks at their parts, where
// go-metrics' BlockedPrefixes would join every sample's key into a string and walk a radix
// tree with it.
func raftMetricsConfig() *gometrics.Config {
	c := gometrics.DefaultConfig("")
	c.EnableHostname = false
	c.EnableRuntimeMetrics = false
	c.EnableServiceLabel = false
	return c
}
