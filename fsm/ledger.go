package fsm

import "fmt"

// move appends a movement to the ledger, linked to the SKU's previous one. The ledger
// keeps the newest LedgerMax movements of all: older ones are gone even while their
// entry's group still holds newer ones, and a group goes once all of it is older.
func (a *applier) move(s *skuRecord, kind MovementKind, qty int64, c Command) error {
	a.meta.MoveSeq++
	seq := a.meta.MoveSeq
	m := movementRecord{Movement: Movement{Index: a.index, SKU: s.SKU.SKU, Kind: kind, Qty: qty,
		OrderID: c.OrderID, RequestID: c.RequestID, UserID: c.UserID, Reason: c.Reason, Time: a.time}, Prev: s.LastMove}
	m.encode(a.record())
	a.ledgerNew.add(seq, a.done())
	s.LastMove = seq
	floor := ledgerFloor(a.meta)
	if floor == 0 || floor < a.ledgerOldEnd {
		return nil
	}
	// The floor moves by one per movement, so at most one group comes to its end.
	c2 := a.ledger.Cursor()
	k, v := c2.First()
	if k == nil {
		return nil
	}
	n, err := ledgerLayout.count(v)
	if err != nil {
		return err
	}
	if a.ledgerOldEnd = beUint64(k) + uint64(n); a.ledgerOldEnd > floor {
		return nil
	}
	a.ledgerOldEnd = 0
	if err := c2.Delete(); err != nil {
		return fmt.Errorf("prune movement: %w", err)
	}
	return nil
}
