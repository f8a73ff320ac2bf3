package main

import (
	"sync"
	"testing"
	"time"
)

func TestHistogram_BucketsCoverEveryValueWithinPrecision(t *testing.T) {
	h := newHistogram(7)
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 123456, 1 << 30, histMaxValue} {
		i := h.bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf(%d) = %d, below the bucket of a smaller value (%d)", v, i, prev)
		}
		prev = i
		hi := h.bucketHigh(i)
		if hi < v {
			t.Fatalf("value %d in bucket %d whose high is %d", v, i, hi)
		}
		if float64(hi-v) > float64(v)/128+1 {
			t.Fatalf("value %d: bucket high %d is more than 1/128 above it", v, hi)
		}
		if i > 0 && h.bucketHigh(i-1) >= v {
			t.Fatalf("value %d also fits bucket %d (high %d)", v, i-1, h.bucketHigh(i-1))
		}
	}
	if got, want := len(h.counts), h.bucketOf(histMaxValue)+1; got != want {
		t.Fatalf("%d buckets, want %d", got, want)
	}
}

func TestHistogram_Quantiles(t *testing.T) {
	tests := []struct {
		name    string
		samples func(record func(time.Duration))
		q       float64
		want    time.Duration
	}{
		{"empty", func(func(time.Duration)) {}, 0.5, 0},
		{"one sample", func(r func(time.Duration)) { r(3 * time.Millisecond) }, 0.99, 3 * time.Millisecond},
		{"uniform 1..10000µs p50", uniformMicros, 0.50, 5000 * time.Microsecond},
		{"uniform 1..10000µs p90", uniformMicros, 0.90, 9000 * time.Microsecond},
		{"uniform 1..10000µs p99", uniformMicros, 0.99, 9900 * time.Microsecond},
		{"uniform 1..10000µs max", uniformMicros, 1, 10000 * time.Microsecond},
		{"one slow outlier in 1000", func(r func(time.Duration)) {
			for i := 0; i < 999; i++ {
				r(time.Millisecond)
			}
			r(2 * time.Second)
		}, 0.99, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistogram(7)
			tt.samples(h.Record)
			got := h.Quantile(tt.q)
			if diff := got - tt.want; diff < 0 || float64(diff) > float64(tt.want)/128+1 {
				t.Fatalf("Quantile(%v) = %v, want %v (+ at most 1/128)", tt.q, got, tt.want)
			}
		})
	}
}

func uniformMicros(record func(time.Duration)) {
	for i := 1; i <= 10000; i++ {
		record(time.Duration(i) * time.Microsecond)
	}
}

func TestHistogram_MaxMeanAndClamp(t *testing.T) {
	h := newHistogram(7)
	h.Record(-time.Second) // a clock step: counts as 0
	h.Record(time.Hour)    // past the range: clamped
	h.Record(2 * time.Millisecond)
	if h.Count() != 3 {
		t.Fatalf("count %d, want 3", h.Count())
	}
	if h.Max() != histMaxValue {
		t.Fatalf("max %v, want the clamp %v", h.Max(), time.Duration(histMaxValue))
	}
	if q := h.Quantile(0.5); q < 2*time.Millisecond || q > 2*time.Millisecond+2*time.Millisecond/128 {
		t.Fatalf("p50 %v, want ≈2ms", q)
	}
}

func TestHistogram_ConcurrentRecordAndMerge(t *testing.T) {
	h, other := newHistogram(7), newHistogram(7)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	other.Record(time.Minute)
	h.Merge(other)
	if h.Count() != 8001 || h.Max() != time.Minute {
		t.Fatalf("count %d max %v, want 8001 and 1m", h.Count(), h.Max())
	}
}

func TestTimeline_PointsPerSecond(t *testing.T) {
	start := time.Unix(1000, 0)
	tl := newTimeline(start, 3*time.Second)
	tl.record(start.Add(100*time.Millisecond), outcomeOK, time.Millisecond)
	tl.record(start.Add(200*time.Millisecond), outcomeSoldOut, 3*time.Millisecond)
	tl.record(start.Add(2500*time.Millisecond), outcomeUnknown, time.Second)
	tl.record(start.Add(time.Hour), outcomeOK, time.Millisecond) // past the end: last second
	pts := tl.points()
	if len(pts) != 5 {
		t.Fatalf("%d points, want 5 (seconds 0..4): %+v", len(pts), pts)
	}
	if pts[0].OK != 1 || pts[0].Rejected != 1 || pts[2].Errors != 1 || pts[4].OK != 1 || pts[1].OK+pts[1].Rejected != 0 {
		t.Fatalf("counts per second wrong: %+v", pts)
	}
	if pts[2].P99ms < 1000 || pts[2].P99ms > 1070 {
		t.Fatalf("second 2 p99 %vms, want ≈1000", pts[2].P99ms)
	}
}
