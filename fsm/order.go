package fsm

import (
	"fmt"

	"github.com/flashstock/flashstock/api"
)

func (a *applier) order(id string) (*Order, error) {
	v := a.orders.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	o, err := decodeOrder(v)
	if err != nil {
		return nil, fmt.Errorf("order %q: %w", id, err)
	}
	return &o, nil
}

func (a *applier) putOrder(o *Order) error {
	o.Version = a.index
	if err := a.orders.Put([]byte(o.OrderID), orderBytes(o)); err != nil {
		return fmt.Errorf("put order %q: %w", o.OrderID, err)
	}
	return nil
}

// reserve holds every line of an order, or none: all lines are checked before any changes.
func (a *applier) reserve(c Command) (Result, error) {
	existing, err := a.order(c.OrderID)
	if err != nil {
		return Result{}, err
	}
	if existing != nil {
		return reject(api.AlreadyExists, "order %q already exists", c.OrderID), nil
	}
	skus := make([]*skuRecord, len(c.Lines))
	for i, l := range c.Lines {
		s, err := a.sku(l.SKU)
		if err != nil || s == nil {
			return notFoundSKU(l.SKU), err
		}
		if res := a.checkTake(s, c.UserID, l.Qty); !res.OK() {
			return res, nil
		}
		skus[i] = s
	}
	for i, l := range c.Lines {
		s := skus[i]
		s.Available -= l.Qty
		s.Reserved += l.Qty
		a.touch(s)
		if err := a.addUserCount(s, c.UserID, l.Qty); err != nil {
			return Result{}, err
		}
		if err := a.move(s, MoveReserve, l.Qty, c); err != nil {
			return Result{}, err
		}
	}
	o := &Order{OrderID: c.OrderID, UserID: c.UserID, Lines: c.Lines, Status: OrderHeld,
		CreatedAt: a.time, ExpiresAt: a.time + c.TTLMillis}
	if err := a.putOrder(o); err != nil {
		return Result{}, err
	}
	if err := a.holds.Put(holdKey(o.ExpiresAt, o.OrderID), nil); err != nil {
		return Result{}, fmt.Errorf("put hold: %w", err)
	}
	return Result{Code: api.OK, Order: *o}, nil
}

// confirm turns a live hold into a sale.
func (a *applier) confirm(c Command) (Result, error) {
	o, res, err := a.heldOrder(c)
	if o == nil || err != nil {
		return res, err
	}
	// Level 0: a hold past its time is refused but left for the expiry round (from level
	// 1 actOn has released it already).
	if a.time >= o.ExpiresAt {
		return reject(api.Expired, "order %q expired at %d", o.OrderID, o.ExpiresAt), nil
	}
	if err := a.endHold(o, OrderConfirmed, MoveConfirm, c); err != nil {
		return Result{}, err
	}
	return Result{Code: api.OK, Order: *o}, nil
}

func (a *applier) cancel(c Command) (Result, error) {
	o, res, err := a.heldOrder(c)
	if o == nil || err != nil {
		return res, err
	}
	if err := a.endHold(o, OrderCancelled, MoveCancel, c); err != nil {
		return Result{}, err
	}
	return Result{Code: api.OK, Order: *o}, nil
}

func (a *applier) ship(c Command) (Result, error) {
	o, res, err := a.actOn(c)
	if a.meta.Level < 1 && res.Code == api.Expired {
		res = reject(api.FailedPrecondition, "order %q is %s; only a confirmed order ships", c.OrderID, OrderExpired)
	}
	if o == nil || err != nil {
		return res, err
	}
	if o.Status != OrderConfirmed {
		return reject(api.FailedPrecondition, "order %q is %s; only a confirmed order ships", o.OrderID, o.Status), nil
	}
	o.Status = OrderShipped
	if err := a.putOrder(o); err != nil {
		return Result{}, err
	}
	return Result{Code: api.OK, Order: *o}, nil
}

// heldOrder loads the order a confirm or cancel acts on; a nil order comes with the
// rejection to give.
func (a *applier) heldOrder(c Command) (*Order, Result, error) {
	o, res, err := a.actOn(c)
	if o == nil || err != nil {
		return nil, res, err
	}
	if o.Status != OrderHeld {
		return nil, reject(api.FailedPrecondition, "order %q is %s, not held", o.OrderID, o.Status), nil
	}
	return o, Result{}, nil
}

// actOn loads the order a confirm, cancel or ship acts on; a nil order comes with the
// rejection to give. An order past its hold by the command's time is expired for every
// action, whether or not an expiry round has released it: if none has, this command
// releases it first, as that round would (the ledger says expire, whatever the action), so
// no later command can still cancel or confirm it. That is apply level 1 (level.go); at
// level 0 an unreleased hold is left as it is.
func (a *applier) actOn(c Command) (*Order, Result, error) {
	o, err := a.order(c.OrderID)
	if err != nil {
		return nil, Result{}, err
	}
	if o == nil {
		return nil, reject(api.NotFound, "order %q not found", c.OrderID), nil
	}
	if a.meta.Level >= 1 && o.pastHold(a.time) {
		if err := a.endHold(o, OrderExpired, MoveExpire, Command{}); err != nil {
			return nil, Result{}, err
		}
	}
	if o.Status == OrderExpired {
		return nil, reject(api.Expired, "order %q expired at %d", o.OrderID, o.ExpiresAt), nil
	}
	return o, Result{}, nil
}

// pastHold reports whether o is still held although its hold ended at or before now (Unix
// ms): it is expired for every action and every read, released or not.
func (o *Order) pastHold(now int64) bool {
	return o.Status == OrderHeld && now >= o.ExpiresAt
}

// endHold moves an order's held units out of reserved: to sold (confirm) or back to
// available (cancel, expire).
func (a *applier) endHold(o *Order, status OrderStatus, kind MovementKind, c Command) error {
	for _, l := range o.Lines {
		s, err := a.sku(l.SKU)
		if err != nil {
			return err
		}
		if s == nil {
			return fmt.Errorf("order %q holds sku %q, which does not exist", o.OrderID, l.SKU)
		}
		s.Reserved -= l.Qty
		if kind == MoveConfirm {
			s.Sold += l.Qty
		} else {
			s.Available += l.Qty
			if err := a.addUserCount(s, o.UserID, -l.Qty); err != nil {
				return err
			}
		}
		a.touch(s)
		mc := c
		mc.OrderID, mc.UserID = o.OrderID, o.UserID
		if err := a.move(s, kind, l.Qty, mc); err != nil {
			return err
		}
	}
	o.Status = status
	if err := a.holds.Delete(holdKey(o.ExpiresAt, o.OrderID)); err != nil {
		return fmt.Errorf("delete hold: %w", err)
	}
	return a.putOrder(o)
}

// expireHolds releases holds whose time is at or before the command's time, oldest first,
// at most MaxExpirePerCommand of them; the leader proposes again while a full batch comes back.
func (a *applier) expireHolds() (Result, error) {
	var due []*Order
	c := a.holds.Cursor()
	for k, _ := c.First(); k != nil && len(due) < MaxExpirePerCommand; k, _ = c.Next() {
		if len(k) < 8 {
			return Result{}, fmt.Errorf("hold key %x too short", k)
		}
		if expires := int64(beUint64(k) ^ (1 << 63)); expires > a.time {
			break
		}
		o, err := a.order(string(k[8:]))
		if err != nil {
			return Result{}, err
		}
		if o == nil {
			return Result{}, fmt.Errorf("hold names order %q, which does not exist", k[8:])
		}
		due = append(due, o)
	}
	for _, o := range due {
		if err := a.endHold(o, OrderExpired, MoveExpire, Command{}); err != nil {
			return Result{}, err
		}
	}
	return Result{Code: api.OK, Expired: int64(len(due))}, nil
}
