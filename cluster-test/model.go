package clustertest

import (
	"fmt"
	"sort"

	"github.com/anishathalye/porcupine"
)

// inventoryModel is the sequential specification porcupine checks histories against: the
// state of one SKU is its available stock, and every SKU starts with initial units (the
// scenarios create their SKUs before the history begins). The model is partitioned by
// SKU, so each SKU's history is checked on its own.
//
//   - deduct(q) → ok(remaining): available >= q and remaining == available-q.
//   - deduct(q) → sold_out: available == 0; → insufficient: 0 < available < q.
//   - deduct(q) → applied (outcome unknown, the ledger shows it applied): available >= q.
//   - deduct(q) → unknown: applied if available >= q, else a rejection; as its return is
//     at infinity it may also be placed after everything, which is "never happened".
//   - restock(q) → ok(available): available+q == available answered; unknown/applied:
//     available += q.
//   - read → ok(available): available unchanged and equal to the answer.
func inventoryModel(initial int64) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			bySKU := map[string][]porcupine.Operation{}
			for _, op := range history {
				sku := op.Input.(Input).SKU
				bySKU[sku] = append(bySKU[sku], op)
			}
			keys := make([]string, 0, len(bySKU))
			for k := range bySKU {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, bySKU[k])
			}
			return out
		},
		Init: func() any { return initial },
		Step: func(state, input, output any) (bool, any) {
			return stepInventory(state.(int64), input.(Input), output.(Output))
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(Input), output.(Output)
			switch {
			case in.Kind == OpRead && out.Outcome == OutOK:
				return fmt.Sprintf("%s read → %d", in.SKU, out.Value)
			case out.Outcome == OutOK:
				return fmt.Sprintf("%s %s(%d) → ok %d", in.SKU, in.Kind, in.Qty, out.Value)
			default:
				return fmt.Sprintf("%s %s(%d) → %s", in.SKU, in.Kind, in.Qty, out.Outcome)
			}
		},
		DescribeState: func(state any) string { return fmt.Sprintf("available=%d", state.(int64)) },
	}
}

// stepInventory is the model's step: whether the system could answer out to in from
// available, and the available stock after it.
func stepInventory(available int64, in Input, out Output) (bool, int64) {
	switch in.Kind {
	case OpRead:
		return out.Outcome == OutOK && out.Value == available, available
	case OpRestock:
		next := available + in.Qty
		switch out.Outcome {
		case OutOK:
			return out.Value == next, next
		case OutApplied, OutUnknown:
			return true, next
		}
	case OpDeduct:
		switch out.Outcome {
		case OutOK:
			return available >= in.Qty && out.Value == available-in.Qty, available - in.Qty
		case OutSoldOut:
			return available == 0, available
		case OutInsufficient:
			return available > 0 && available < in.Qty, available
		case OutApplied:
			return available >= in.Qty, available - in.Qty
		case OutUnknown:
			if available >= in.Qty {
				return true, available - in.Qty
			}
			return true, available
		}
	}
	return false, available
}

// porcupineOps turns the checkable operations of a history into porcupine's form. Reads
// without an answer say nothing and are left out, as are mutations the ledger shows were
// never applied (dropped by resolveUnknown before).
func porcupineOps(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		if op.Output.Outcome == OutError || op.Input.Kind == OpRead && op.Output.Outcome != OutOK {
			continue
		}
		ret := op.Return
		if op.Unknown() {
			ret = infinity
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: op.Input, Call: op.Call, Output: op.Output, Return: ret})
	}
	return out
}
