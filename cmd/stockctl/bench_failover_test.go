package main

import "testing"

// The failover distributions are nearest-rank percentiles of a few samples: every figure
// printed is a time some kill took.
func TestDistOf_NearestRank(t *testing.T) {
	for _, tc := range []struct {
		name string
		ms   []float64
		want distJSON
	}{
		{"none", nil, distJSON{}},
		{"one", []float64{420}, distJSON{N: 1, Min: 420, P50: 420, P90: 420, Max: 420}},
		{"ten unsorted", []float64{900, 100, 800, 200, 700, 300, 600, 400, 500, 1000},
			distJSON{N: 10, Min: 100, P50: 500, P90: 900, Max: 1000}},
		{"three", []float64{300, 100, 200}, distJSON{N: 3, Min: 100, P50: 200, P90: 300, Max: 300}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := distOf(tc.ms); got != tc.want {
				t.Fatalf("distOf(%v) = %+v, want %+v", tc.ms, got, tc.want)
			}
		})
	}
}
