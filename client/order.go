package client

import (
	"context"
	"net/http"
	"time"

	"github.com/flashstock/flashstock/api"
)

// Reserve holds stock for an order: every line atomically, or none (the error says which
// line failed, as Deduct's would). The hold lasts ttl (at least 1ms); Confirm
// turns it into a sale, Cancel releases it, and unconfirmed holds are released when they
// expire.
func (c *Client) Reserve(ctx context.Context, orderID, user string, lines []api.Line, ttl time.Duration, opts ...CallOption) (api.Order, error) {
	o := collect(opts)
	id := o.requestIDOrNew()
	r, err := mutation(http.MethodPost, "/v1/orders", api.ReserveRequest{OrderID: orderID, UserID: user, Lines: lines,
		TTLMillis: ttl.Milliseconds(), RequestID: id}, id)
	var out api.Order
	if err != nil {
		return out, err
	}
	p, err := c.orderPool(ctx, lines)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, p, r, decodeInto(&out))
	return out, err
}

// Confirm records that an order was paid: its held units become sold. It fails with
// ErrExpired when the hold ran out first.
func (c *Client) Confirm(ctx context.Context, orderID string, opts ...CallOption) (api.Order, error) {
	return c.orderAction(ctx, orderID, "confirm", opts)
}

// Cancel releases an order's held units.
func (c *Client) Cancel(ctx context.Context, orderID string, opts ...CallOption) (api.Order, error) {
	return c.orderAction(ctx, orderID, "cancel", opts)
}

// Ship marks a confirmed order shipped (stock counts do not change); an unconfirmed one
// fails with ErrFailedPrecondition.
func (c *Client) Ship(ctx context.Context, orderID string, opts ...CallOption) (api.Order, error) {
	return c.orderAction(ctx, orderID, "ship", opts)
}

func (c *Client) orderAction(ctx context.Context, orderID, action string, opts []CallOption) (api.Order, error) {
	o := collect(opts)
	id := o.requestIDOrNew()
	r, err := mutation(http.MethodPost, orderPath(orderID)+"/"+action, api.OrderActionRequest{RequestID: id}, id)
	var out api.Order
	if err == nil {
		err = c.do(ctx, c.pool, r, decodeInto(&out))
	}
	return out, err
}

// GetOrder reads an order (strong by default; WithStale allowed).
func (c *Client) GetOrder(ctx context.Context, orderID string, opts ...CallOption) (api.Order, error) {
	o := collect(opts)
	var out api.Order
	err := c.do(ctx, c.pool, o.read(orderPath(orderID), nil), o.decode(&out))
	return out, err
}
