package main

import (
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

func TestVerdict_Books(t *testing.T) {
	sku := func(avail, reserved, sold int64) api.SKU {
		return api.SKU{SKU: "s", Available: avail, Reserved: reserved, Sold: sold}
	}
	tests := []struct {
		name    string
		expect  skuExpect
		final   *api.SKU // nil: missing from the final read
		replica []string
		want    string
		problem string // a substring of the first problem
	}{
		{"sold exactly what was acknowledged", skuExpect{Stock: 500, Acked: 500}, ptr(sku(0, 0, 500)), nil, verdictOK, ""},
		{"partly sold", skuExpect{Stock: 500, Acked: 120}, ptr(sku(380, 0, 120)), nil, verdictOK, ""},
		{"restocked", skuExpect{Stock: 700, Acked: 650}, ptr(sku(50, 0, 650)), nil, verdictOK, ""},
		{"oversold", skuExpect{Stock: 500, Acked: 501}, ptr(sku(-1, 0, 501)), nil, verdictFail, "oversold"},
		{"lost an acknowledged sale", skuExpect{Stock: 500, Acked: 500}, ptr(sku(1, 0, 499)), nil, verdictFail, "lost acknowledged"},
		{"sold more than acknowledged", skuExpect{Stock: 500, Acked: 400}, ptr(sku(99, 0, 401)), nil, verdictFail, "unacknowledged"},
		{"books do not balance", skuExpect{Stock: 500, Acked: 100}, ptr(sku(300, 0, 100)), nil, verdictFail, "do not balance"},
		{"unknown outcomes within range", skuExpect{Stock: 500, Acked: 100, Unknown: 3}, ptr(sku(398, 0, 102)), nil, verdictAmbi, ""},
		{"unknown outcomes, sold past range", skuExpect{Stock: 500, Acked: 100, Unknown: 3}, ptr(sku(396, 0, 104)), nil, verdictFail, "unacknowledged"},
		{"holds left over", skuExpect{Stock: 10, Acked: 5, Reserves: true}, ptr(sku(3, 2, 5)), nil, verdictFail, "held units"},
		{"missing SKU", skuExpect{Stock: 10}, nil, nil, verdictFail, "missing"},
		{"replica did not converge", skuExpect{Stock: 10, Acked: 10}, ptr(sku(0, 0, 10)), []string{"node n3 did not converge"}, verdictFail, "n3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.expect.SKU = "s"
			finals := map[string]api.SKU{}
			if tt.final != nil {
				finals["s"] = *tt.final
			}
			agree := 3 - len(tt.replica)
			r := verdict([]skuExpect{tt.expect}, finals, tt.replica, agree, 3)
			if r.Verdict != tt.want {
				t.Fatalf("verdict %s, want %s (%v)", r.Verdict, tt.want, r.Problems)
			}
			if tt.problem == "" && len(r.Problems) > 0 {
				t.Fatalf("problems %v, want none", r.Problems)
			}
			if tt.problem != "" && (len(r.Problems) == 0 || !strings.Contains(r.Problems[0], tt.problem)) {
				t.Fatalf("problems %v, want one about %q", r.Problems, tt.problem)
			}
		})
	}
}

func TestVerdict_BoundsTheProblemList(t *testing.T) {
	var expects []skuExpect
	for i := 0; i < 50; i++ {
		expects = append(expects, skuExpect{SKU: "s" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Stock: 1})
	}
	r := verdict(expects, map[string]api.SKU{}, nil, 3, 3)
	if len(r.Problems) != maxProblems+1 || !strings.Contains(r.Problems[maxProblems], "30 more") {
		t.Fatalf("%d problems, last %q; want %d and a count of the rest", len(r.Problems), r.Problems[len(r.Problems)-1], maxProblems+1)
	}
}

func TestFirstDiff(t *testing.T) {
	want := map[string]api.SKU{"a": {Available: 1, Sold: 2, Version: 9}}
	if d := firstDiff(want, map[string]api.SKU{"a": {Available: 1, Sold: 2, Version: 7}}); d != "" {
		t.Fatalf("same stock, other version: %q, want no difference", d)
	}
	if d := firstDiff(want, map[string]api.SKU{"a": {Available: 2, Sold: 1}}); !strings.Contains(d, "a:") {
		t.Fatalf("diff %q, want it to name SKU a", d)
	}
	if d := firstDiff(want, map[string]api.SKU{}); d != "a missing" {
		t.Fatalf("diff %q, want a missing", d)
	}
}

func ptr[T any](v T) *T { return &v }
