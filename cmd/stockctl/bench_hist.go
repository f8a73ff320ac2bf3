package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts latencies in log-linear buckets, as HdrHistogram does: each power of two
// is split into 2^subBits equal buckets, so a percentile is exact to within 2^-subBits of its
// value (0.8% with 7 bits) and the memory is fixed whatever the number of samples. It is
// safe for concurrent use: Record is a few atomic adds, no lock, no allocation.
type histogram struct {
	subBits uint
	counts  []atomic.Uint64
	total   atomic.Uint64
	sum     atomic.Uint64 // ns; overflows only after ~584 years of summed latency
	max     atomic.Uint64
}

// histMaxValue is the largest latency a histogram tells apart (~18 minutes); longer ones
// count as this.
const histMaxValue = 1<<40 - 1

func newHistogram(subBits uint) *histogram {
	h := &histogram{subBits: subBits}
	h.counts = make([]atomic.Uint64, h.bucketOf(histMaxValue)+1)
	return h
}

// bucketOf maps a value to its bucket: values below 2·2^subBits have one bucket each; above,
// the top subBits+1 significant bits pick it.
func (h *histogram) bucketOf(v uint64) int {
	sub := uint64(1) << h.subBits
	if v < 2*sub {
		return int(v)
	}
	shift := uint(bits.Len64(v)) - (h.subBits + 1)
	return int(uint64(shift+1)*sub + v>>shift - sub)
}

// bucketHigh is the largest value that falls in bucket i.
func (h *histogram) bucketHigh(i int) uint64 {
	sub := 1 << h.subBits
	if i < 2*sub {
		return uint64(i)
	}
	shift := uint(i/sub - 1)
	m := uint64(i%sub + sub)
	return (m+1)<<shift - 1
}

// Record adds one sample.
func (h *histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	v = min(v, histMaxValue)
	h.counts[h.bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count is the number of samples.
func (h *histogram) Count() uint64 { return h.total.Load() }

// Max is the largest sample, exactly.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean is the average sample.
func (h *histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the value at or below which a fraction q (0..1) of the samples fall: the
// upper bound of the bucket holding the ⌈q·n⌉-th smallest sample, never above Max. It is 0
// with no samples.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.9999999)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(h.bucketHigh(i)), h.Max())
		}
	}
	return h.Max()
}

// Merge adds o's samples (same subBits) to h.
func (h *histogram) Merge(o *histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	h.sum.Add(o.sum.Load())
	for {
		m, v := h.max.Load(), o.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// timeline keeps, for each second of a run, the successes, rejections and a coarse latency
// histogram (6% precision, 5 KiB): what the chart draws. Its length is fixed at start, so
// its memory is bounded by the run's hard time cap.
type timeline struct {
	start time.Time
	secs  []timelineSecond
}

type timelineSecond struct {
	ok       atomic.Uint64
	rejected atomic.Uint64
	errors   atomic.Uint64
	lat      atomic.Pointer[histogram]
}

const timelineSubBits = 4

func newTimeline(start time.Time, span time.Duration) *timeline {
	n := int(span/time.Second) + 2
	return &timeline{start: start, secs: make([]timelineSecond, n)}
}

// record counts an op that ended at end; ops past the last second count in it.
func (t *timeline) record(end time.Time, o outcome, lat time.Duration) {
	i := int(end.Sub(t.start) / time.Second)
	i = min(max(i, 0), len(t.secs)-1)
	s := &t.secs[i]
	switch {
	case o == outcomeOK:
		s.ok.Add(1)
	case o.isRejection():
		s.rejected.Add(1)
	default:
		s.errors.Add(1)
	}
	h := s.lat.Load()
	if h == nil {
		h = newHistogram(timelineSubBits)
		if !s.lat.CompareAndSwap(nil, h) {
			h = s.lat.Load()
		}
	}
	h.Record(lat)
}

// timelinePoint is one second of a run as the chart and the JSON show it.
type timelinePoint struct {
	Second   int     `json:"t_s"`
	OK       uint64  `json:"ok"`
	Rejected uint64  `json:"rejected"`
	Errors   uint64  `json:"errors"`
	P50ms    float64 `json:"p50_ms"`
	P90ms    float64 `json:"p90_ms"`
	P99ms    float64 `json:"p99_ms"`
}

// points returns the seconds up to the last one with an op.
func (t *timeline) points() []timelinePoint {
	last := -1
	for i := range t.secs {
		if t.secs[i].lat.Load() != nil {
			last = i
		}
	}
	out := make([]timelinePoint, 0, last+1)
	for i := 0; i <= last; i++ {
		s := &t.secs[i]
		p := timelinePoint{Second: i, OK: s.ok.Load(), Rejected: s.rejected.Load(), Errors: s.errors.Load()}
		if h := s.lat.Load(); h != nil {
			p.P50ms, p.P90ms, p.P99ms = ms(h.Quantile(0.50)), ms(h.Quantile(0.90)), ms(h.Quantile(0.99))
		}
		out = append(out, p)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
