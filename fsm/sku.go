package fsm

import "github.com/flashstock/flashstock/api"

func (a *applier) createSKU(c Command) (Result, error) {
	s, err := a.sku(c.SKU)
	if err != nil {
		return Result{}, err
	}
	if s != nil && s.Retired {
		// Its ledger and the users' counts stay under the id: a new SKU must take another.
		return reject(api.AlreadyExists, "sku %q exists, retired; a SKU id is not reused", c.SKU), nil
	}
	if s != nil {
		return reject(api.AlreadyExists, "sku %q already exists", c.SKU), nil
	}
	s = &skuRecord{SKU: SKU{SKU: c.SKU, Available: c.Qty, PerUserLimit: c.PerUserLimit}, Restocked: c.Qty}
	a.touch(s)
	if c.Qty > 0 {
		if err := a.move(s, MoveCreate, c.Qty, c); err != nil {
			return Result{}, err
		}
	}
	return Result{Code: api.OK, SKU: s.SKU}, nil
}

func (a *applier) restock(c Command) (Result, error) {
	s, err := a.sku(c.SKU)
	if err != nil || s == nil {
		return notFoundSKU(c.SKU), err
	}
	if res := checkAdd(s, c.Qty); !res.OK() {
		return res, nil
	}
	s.Available += c.Qty
	s.Restocked += c.Qty
	a.touch(s)
	if err := a.move(s, MoveRestock, c.Qty, c); err != nil {
		return Result{}, err
	}
	return Result{Code: api.OK, SKU: s.SKU}, nil
}

func (a *applier) deduct(c Command) (Result, error) {
	s, err := a.sku(c.SKU)
	if err != nil || s == nil {
		return notFoundSKU(c.SKU), err
	}
	if res := a.checkTake(s, c.UserID, c.Qty); !res.OK() {
		res.SKU = s.SKU
		return res, nil
	}
	s.Available -= c.Qty
	s.Sold += c.Qty
	a.touch(s)
	if err := a.addUserCount(s, c.UserID, c.Qty); err != nil {
		return Result{}, err
	}
	if err := a.move(s, MoveDeduct, c.Qty, c); err != nil {
		return Result{}, err
	}
	return Result{Code: api.OK, SKU: s.SKU}, nil
}

// adjust corrects a SKU's available stock by a signed quantity, with a reason: units found
// damaged or lost, a count that was wrong. It changes the total with it (the units never
// were, or no longer are, in stock), so available+reserved+sold stays the total. Units held
// by orders or sold are not its business: an adjustment below zero available is refused.
func (a *applier) adjust(c Command) (Result, error) {
	s, err := a.sku(c.SKU)
	if err != nil || s == nil {
		return notFoundSKU(c.SKU), err
	}
	if res := checkAdd(s, c.Qty); !res.OK() {
		return res, nil
	}
	if c.Qty < 0 && s.Available < -c.Qty {
		return reject(api.InsufficientStock, "sku %q has %d available, cannot adjust by %d", c.SKU, s.Available, c.Qty), nil
	}
	s.Available += c.Qty
	s.Restocked += c.Qty
	a.touch(s)
	if err := a.move(s, MoveAdjust, c.Qty, c); err != nil {
		return Result{}, err
	}
	return Result{Code: api.OK, SKU: s.SKU}, nil
}

// retire takes a SKU out of sale for good. Units held by orders must be settled first
// (confirmed, cancelled or expired), so no order is left pointing at stock that is gone;
// units still available are written off, in the ledger, so the books close at zero.
// Sold units and the history stay readable.
func (a *applier) retire(c Command) (Result, error) {
	s, err := a.sku(c.SKU)
	if err != nil || s == nil {
		return notFoundSKU(c.SKU), err
	}
	if s.Retired {
		return reject(api.FailedPrecondition, "sku %q is already retired", c.SKU), nil
	}
	if s.Reserved > 0 {
		return reject(api.FailedPrecondition, "sku %q has %d units held by orders; confirm, cancel or let them expire before retiring it", c.SKU, s.Reserved), nil
	}
	off := s.Available
	s.Available = 0
	s.Restocked -= off
	s.Retired = true
	a.touch(s)
	if err := a.move(s, MoveRetire, -off, c); err != nil {
		return Result{}, err
	}
	return Result{Code: api.OK, SKU: s.SKU}, nil
}

// checkAdd refuses adding qty units to a retired SKU or past MaxTotalStock.
func checkAdd(s *skuRecord, qty int64) Result {
	if s.Retired {
		return retiredSKU(s.SKU.SKU)
	}
	if s.Restocked+qty > MaxTotalStock {
		return reject(api.Overflow, "sku %q would hold %d units in total, more than %d", s.SKU.SKU, s.Restocked+qty, int64(MaxTotalStock))
	}
	return Result{Code: api.OK}
}

// retiredSKU is the answer to anything that would stock or sell a retired SKU.
func retiredSKU(sku string) Result {
	return reject(api.FailedPrecondition, "sku %q is retired", sku)
}

func notFoundSKU(sku string) Result {
	return reject(api.NotFound, "sku %q not found", sku)
}
