package fsm

import (
	"testing"

	"github.com/flashstock/flashstock/api"
)

// Take is the one stock rule: apply asks it with the user's count, the node's fast path
// without, and gets an answer only where the count does not matter.
func TestTake_TheOneStockRule(t *testing.T) {
	has := func(n int64) func() int64 { return func() int64 { return n } }
	for _, tc := range []struct {
		name    string
		s       SKU
		qty     int64
		have    func() int64
		want    api.Code
		decided bool
	}{
		{"enough", SKU{SKU: "a", Available: 5}, 2, nil, api.OK, true},
		{"sold out before any limit", SKU{SKU: "a", Available: 0, PerUserLimit: 1}, 1, nil, api.SoldOut, true},
		{"retired before sold out", SKU{SKU: "a", Available: 0, Retired: true}, 1, nil, api.FailedPrecondition, true},
		{"too few, no limit", SKU{SKU: "a", Available: 1}, 2, nil, api.InsufficientStock, true},
		{"too few under a limit: the count comes first", SKU{SKU: "a", Available: 1, PerUserLimit: 5}, 2, nil, "", false},
		{"limit passed", SKU{SKU: "a", Available: 9, PerUserLimit: 2}, 2, has(1), api.LimitExceeded, true},
		{"limit reached exactly", SKU{SKU: "a", Available: 9, PerUserLimit: 2}, 1, has(1), api.OK, true},
		{"within the limit but too few", SKU{SKU: "a", Available: 1, PerUserLimit: 5}, 2, has(0), api.InsufficientStock, true},
	} {
		res, decided := Take(tc.s, "u", tc.qty, tc.have)
		if decided != tc.decided || decided && res.Code != tc.want {
			t.Errorf("%s: %s decided=%v, want %s decided=%v", tc.name, res.Code, decided, tc.want, tc.decided)
		}
	}
}
