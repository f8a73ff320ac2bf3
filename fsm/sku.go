package fsm

import "github.com/flashstock/flashstock/api"

func (a *applier) createSKU(c Command) (Result, error) {
	s, err := a.sku(c.SKU)
	if err != nil {
		return Result{}, err
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
	if s.Restocked+c.Qty > MaxTotalStock {
		return reject(api.Overflow, "sku %q would hold %d units in total, more than %d", c.SKU, s.Restocked+c.Qty, int64(MaxTotalStock)), nil
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

func notFoundSKU(sku string) Result {
	return reject(api.NotFound, "sku %q not found", sku)
}
