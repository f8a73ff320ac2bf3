package fsm

import (
	"fmt"
	"slices"

	"github.com/flashstock/flashstock/api"
)

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

// sku returns the cached record of a SKU, or nil if it does not exist.
func (a *applier) sku(name string) (*skuRecord, error) {
	if s, ok := a.cache[name]; ok {
		return s, nil
	}
	v := a.skus.Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	s, err := decodeSKU(name, v)
	if err != nil {
		return nil, err
	}
	a.cache[name] = &s
	return &s, nil
}

func (a *applier) touch(s *skuRecord) {
	if s.Version != a.index { // its first change in this entry: versions are entry indexes
		a.changes = append(a.changes, s.SKU.SKU)
	}
	s.Version = a.index
	a.cache[s.SKU.SKU] = s
	a.dirty[s.SKU.SKU] = true
	if a.stage && s.listed != a.batch {
		s.listed = a.batch
		a.changed = append(a.changed, s)
	}
}

// flush writes the SKUs changed in this transaction, in key order.
func (a *applier) flush() error {
	names := make([]string, 0, len(a.dirty))
	for n := range a.dirty {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := a.skus.Put([]byte(n), a.cache[n].encode()); err != nil {
			return fmt.Errorf("put sku %q: %w", n, err)
		}
	}
	return nil
}

// userCount reads how many units a user bought or holds of a SKU with a per-user limit.
func (a *applier) userCount(sku, user string) int64 {
	v := a.users.Get(skuKey(sku, []byte(user)))
	if len(v) != 8 {
		return 0
	}
	return int64(beUint64(v))
}

func (a *applier) addUserCount(s *skuRecord, user string, delta int64) error {
	if s.PerUserLimit == 0 {
		return nil
	}
	k := skuKey(s.SKU.SKU, []byte(user))
	n := a.userCount(s.SKU.SKU, user) + delta
	if n <= 0 {
		return a.users.Delete(k)
	}
	return a.users.Put(k, u64(uint64(n)))
}

// checkTake says whether qty units of s can go to user: the rejection a Deduct or a
// Reserve line gets, or OK.
func (a *applier) checkTake(s *skuRecord, user string, qty int64) Result {
	res, _ := Take(s.SKU, user, qty, func() int64 { return a.userCount(s.SKU.SKU, user) })
	return res
}

// Take is the one rule of whether qty units of s can go to a buyer: the rejection a Deduct
// or an order line gets, or OK. Its messages are stored with the answers in the
// exactly-once table, so they are part of the state: never reword them. have gives the
// buyer's units of s so far; it is asked only
// under a per-user limit (it costs apply a read). With have nil — the node's sold-out fast
// path, which cannot see the users' counts only apply keeps — decided is false where the
// answer would need them.
func Take(s SKU, user string, qty int64, have func() int64) (res Result, decided bool) {
	switch {
	case s.Retired:
		return retiredSKU(s.SKU), true
	case s.Available == 0:
		return reject(api.SoldOut, "sku %q is sold out", s.SKU), true
	case s.PerUserLimit > 0 && have == nil:
		return Result{}, false
	case s.PerUserLimit > 0:
		if n := have(); n+qty > s.PerUserLimit {
			return reject(api.LimitExceeded, "user %q has %d of sku %q, limit %d", user, n, s.SKU, s.PerUserLimit), true
		}
	}
	if s.Available < qty {
		return reject(api.InsufficientStock, "sku %q has %d available, asked for %d", s.SKU, s.Available, qty), true
	}
	return Result{Code: api.OK}, true
}
