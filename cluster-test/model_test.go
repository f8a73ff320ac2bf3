package clustertest

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// The model must accept what a correct store may answer and reject what it may not; these
// histories are small enough to reason about by hand.
func TestInventoryModel_Histories(t *testing.T) {
	deduct := func(client int, call, ret int64, qty int64, out Output) Op {
		return Op{Client: client, Input: Input{Kind: OpDeduct, SKU: "s", Qty: qty}, Output: out, Call: call, Return: ret}
	}
	read := func(client int, call, ret int64, v int64) Op {
		return Op{Client: client, Input: Input{Kind: OpRead, SKU: "s"}, Output: Output{Outcome: OutOK, Value: v}, Call: call, Return: ret}
	}
	ok := func(v int64) Output { return Output{Outcome: OutOK, Value: v} }
	tests := []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"sequential sale to sold out", []Op{
			deduct(0, 0, 1, 2, ok(1)), deduct(0, 2, 3, 1, ok(0)), deduct(0, 4, 5, 1, Output{Outcome: OutSoldOut}),
		}, porcupine.Ok},
		{"oversell", []Op{
			deduct(0, 0, 1, 2, ok(1)), deduct(1, 2, 3, 2, ok(-1)),
		}, porcupine.Illegal},
		{"sold out before any sale", []Op{
			deduct(0, 0, 1, 1, Output{Outcome: OutSoldOut}),
		}, porcupine.Illegal},
		{"stale read after a sale", []Op{
			deduct(0, 0, 1, 1, ok(2)), read(1, 2, 3, 3),
		}, porcupine.Illegal},
		{"concurrent read may see either", []Op{
			deduct(0, 0, 10, 1, ok(2)), read(1, 1, 2, 3), read(2, 11, 12, 2),
		}, porcupine.Ok},
		{"unknown deduction may have happened", []Op{
			deduct(0, 0, infinity, 1, Output{Outcome: OutUnknown}), read(1, 5, 6, 2),
		}, porcupine.Ok},
		{"unknown deduction may not have happened", []Op{
			deduct(0, 0, infinity, 1, Output{Outcome: OutUnknown}), read(1, 5, 6, 3),
		}, porcupine.Ok},
		{"applied deduction happens once", []Op{
			deduct(0, 0, infinity, 1, Output{Outcome: OutApplied}), read(1, 5, 6, 3), read(1, 7, 8, 1),
		}, porcupine.Illegal},
		{"insufficient needs some stock", []Op{
			deduct(0, 0, 1, 5, Output{Outcome: OutInsufficient}), deduct(0, 2, 3, 3, ok(0)),
		}, porcupine.Ok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := porcupine.CheckOperationsVerbose(inventoryModel(3), porcupineOps(tt.ops), 0)
			if res != tt.want {
				t.Errorf("got %s, want %s", res, tt.want)
			}
		})
	}
}
