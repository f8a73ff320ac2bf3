package main

import (
	"strings"
	"testing"
)

func TestPicker_StaysInBounds(t *testing.T) {
	for _, kind := range []string{popHot, popUniform, popZipf} {
		for _, n := range []int{1, 2, 7, 1000} {
			p, err := newPicker(kind, n, 1.1, 42)
			if err != nil {
				t.Fatalf("%s/%d: %v", kind, n, err)
			}
			seen := map[int]int{}
			for i := 0; i < 20000; i++ {
				k := p.pick()
				if k < 0 || k >= n {
					t.Fatalf("%s over %d SKUs picked %d", kind, n, k)
				}
				seen[k]++
			}
			switch {
			case kind == popHot && len(seen) != 1:
				t.Errorf("hot over %d SKUs picked %d different ones", n, len(seen))
			case kind == popUniform && n <= 7 && len(seen) != n:
				t.Errorf("uniform over %d SKUs reached only %d", n, len(seen))
			}
		}
	}
}

func TestPicker_ZipfFavoursTheFirstSKUs(t *testing.T) {
	p, err := newPicker(popZipf, 1000, 1.2, 7)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, 1000)
	for i := 0; i < 100000; i++ {
		counts[p.pick()]++
	}
	if !(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[999]) {
		t.Fatalf("zipf counts not falling with rank: #0 %d, #1 %d, #10 %d, #999 %d", counts[0], counts[1], counts[10], counts[999])
	}
}

func TestPicker_IsReproducibleBySeed(t *testing.T) {
	a, _ := newPicker(popUniform, 100, 0, 9)
	b, _ := newPicker(popUniform, 100, 0, 9)
	for i := 0; i < 100; i++ {
		if a.pick() != b.pick() {
			t.Fatal("same seed, different picks")
		}
	}
}

func TestPicker_RejectsBadSettings(t *testing.T) {
	for _, tc := range []struct {
		kind string
		n    int
		s    float64
		want string
	}{
		{"pareto", 10, 1.1, "unknown popularity"},
		{popZipf, 10, 1.0, "must be > 1"},
		{popUniform, 0, 1.1, "at least 1 SKU"},
	} {
		if _, err := newPicker(tc.kind, tc.n, tc.s, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("newPicker(%q, %d, %g) = %v, want an error containing %q", tc.kind, tc.n, tc.s, err, tc.want)
		}
	}
}
