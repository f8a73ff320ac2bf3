package api

import (
	"fmt"
	"testing"
)

// The slot of a SKU is stored, in effect, in every placement: these values are frozen. If
// this test fails, SlotOf changed and every cluster's SKUs would move to groups that do
// not hold them. Fix SlotOf, never the table.
func TestSlotOf_IsFrozen(t *testing.T) {
	for sku, want := range map[string]int{
		"":              0,
		"a":             0x330, // CRC-32C("a") = 0xc1d04330
		"123456789":     0x283, // the CRC-32C check value, 0xe3069283
		"sku-1":         0x2d8,
		"sku-2":         0x12c,
		"SKU-000042":    0x3f5,
		"iphone-17-pro": 0x0e8,
		"鞋-42":          0x186,
	} {
		if got := SlotOf(sku); got != want {
			t.Errorf("SlotOf(%q) = %#x, frozen value %#x", sku, got, want)
		}
	}
}

// Sequential SKU names, the common case, must not cluster in a few slots: with 100 keys
// per slot on average, no slot may hold under half or over twice that.
func TestSlotOf_SpreadsSequentialNames(t *testing.T) {
	const perSlot = 100
	for _, format := range []string{"sku-%d", "SKU-%06d", "%d"} {
		var count [SlotCount]int
		for i := range SlotCount * perSlot {
			s := SlotOf(fmt.Sprintf(format, i))
			if s < 0 || s >= SlotCount {
				t.Fatalf("SlotOf out of range: %d", s)
			}
			count[s]++
		}
		lo, hi := count[0], count[0]
		for _, c := range count {
			lo, hi = min(lo, c), max(hi, c)
		}
		if lo < perSlot/2 || hi > perSlot*2 {
			t.Errorf("%s: slots hold %d..%d keys, want %d..%d", format, lo, hi, perSlot/2, perSlot*2)
		}
	}
}

func BenchmarkSlotOf(b *testing.B) {
	skus := []string{"sku-1", "SKU-000042", "a-rather-long-stock-keeping-unit-name-of-64-bytes-or-so-0000001"}
	for _, sku := range skus {
		b.Run(fmt.Sprintf("len=%d", len(sku)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				SlotOf(sku)
			}
		})
	}
}

// Every routed call computes a slot: it must cost no allocation.
func TestSlotOf_DoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { SlotOf("SKU-000042") }); n != 0 {
		t.Errorf("SlotOf allocates %v times per call", n)
	}
}

func TestPlacement_GroupOfFollowsTheSlotTable(t *testing.T) {
	p := &Placement{Groups: []Group{
		{ID: MetaGroupID, Kind: GroupMeta},
		{ID: 1, Kind: GroupData, Slots: []SlotRange{{From: 0, To: 512}}},
		{ID: 2, Kind: GroupData, Slots: []SlotRange{{From: 512, To: 640}, {From: 644, To: SlotCount}}},
	}}
	for sku, want := range map[string]uint64{"sku-2": 1, "a": 2, "SKU-000042": 2} { // slots 300, 816, 1013
		if g := p.GroupOf(sku); g == nil || g.ID != want {
			t.Errorf("GroupOf(%q) = %v, want group %d", sku, g, want)
		}
	}
	if g := p.GroupOf("123456789"); g != nil { // slot 643: nobody's
		t.Errorf("GroupOf of an unowned slot = group %d", g.ID)
	}
}
