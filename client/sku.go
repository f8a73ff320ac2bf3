package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/flashstock/flashstock/api"
)

// mutation builds the request of a mutation: the body, request_id included, is encoded
// once for every try.
func mutation(method, path string, body any, reqID string) (*request, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("flashstock: encode request: %w", err)
	}
	return &request{method: method, path: path, body: b, route: toLeader, reqID: reqID}, nil
}

func (o *callOptions) requestIDOrNew() string {
	if o.requestID != "" {
		return o.requestID
	}
	return newRequestID()
}

// read builds the request of a read at the consistency the options ask for.
func (o *callOptions) read(path string, query url.Values) *request {
	r := &request{method: http.MethodGet, path: path, route: toLeader}
	if o.stale {
		if query == nil {
			query = url.Values{}
		}
		query.Set("consistency", api.Stale)
		r.route, r.key = toAny, o.key
	}
	if len(query) > 0 {
		r.path += "?" + query.Encode()
	}
	return r
}

func (o *callOptions) decode(out any) func(*http.Response, *Endpoint) error {
	dec := decodeInto(out)
	if o.info == nil {
		return dec
	}
	return func(resp *http.Response, e *Endpoint) error {
		o.fillInfo(resp, e)
		return dec(resp, e)
	}
}

func skuPath(sku string) string { return "/v1/skus/" + url.PathEscape(sku) }

// CreateSKU creates a SKU with stock units (WithPerUserLimit caps what one user may buy).
// Creating an existing SKU fails with ErrAlreadyExists; a retry of this same call returns
// the SKU it created.
func (c *Client) CreateSKU(ctx context.Context, sku string, stock int64, opts ...CallOption) (api.SKU, error) {
	o := collect(opts)
	id := o.requestIDOrNew()
	r, err := mutation(http.MethodPut, skuPath(sku),
		api.CreateSKURequest{Stock: &stock, PerUserLimit: o.perUserLimit, RequestID: id}, id)
	var out api.SKU
	if err == nil {
		err = c.do(ctx, c.poolFor(ctx, sku), r, decodeInto(&out))
	}
	return out, err
}

// GetSKU reads a SKU: linearizable by default, from any node's local state WithStale.
func (c *Client) GetSKU(ctx context.Context, sku string, opts ...CallOption) (api.SKU, error) {
	o := collect(opts)
	var out api.SKU
	err := c.do(ctx, c.poolFor(ctx, sku), o.read(skuPath(sku), nil), o.decode(&out))
	return out, err
}

// ListSKUs lists SKUs whose id starts with prefix ("" for all), in id order; WithLimit and
// WithAfter page through them.
func (c *Client) ListSKUs(ctx context.Context, prefix string, opts ...CallOption) ([]api.SKU, error) {
	o := collect(opts)
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if o.limit > 0 {
		q.Set("limit", strconv.Itoa(o.limit))
	}
	if o.after != "" {
		q.Set("after", o.after)
	}
	var out api.SKUList
	err := c.do(ctx, c.pool, o.read("/v1/skus", q), o.decode(&out))
	return out.SKUs, err
}

// Restock adds qty units to a SKU's available stock.
func (c *Client) Restock(ctx context.Context, sku string, qty int64, opts ...CallOption) (api.SKU, error) {
	o := collect(opts)
	id := o.requestIDOrNew()
	r, err := mutation(http.MethodPost, skuPath(sku)+"/restock", api.RestockRequest{Qty: qty, RequestID: id}, id)
	var out api.SKU
	if err == nil {
		err = c.do(ctx, c.poolFor(ctx, sku), r, decodeInto(&out))
	}
	return out, err
}

// Adjust corrects a SKU's available stock by qty units, negative or positive, for a reason
// the ledger keeps (1-64 characters of [A-Za-z0-9._:-]: "damage", "miscount", ...). Taking
// more than is available fails with ErrInsufficientStock; a retired SKU with
// ErrFailedPrecondition. Retries reuse one request_id, so it applies at most once.
func (c *Client) Adjust(ctx context.Context, sku string, qty int64, reason string, opts ...CallOption) (api.SKU, error) {
	o := collect(opts)
	id := o.requestIDOrNew()
	r, err := mutation(http.MethodPost, skuPath(sku)+"/adjust", api.AdjustRequest{Qty: qty, Reason: reason, RequestID: id}, id)
	var out api.SKU
	if err == nil {
		err = c.do(ctx, c.poolFor(ctx, sku), r, decodeInto(&out))
	}
	return out, err
}

// Retire takes a SKU out of sale for good: units still available are written off in the
// ledger, and the SKU stays readable (Retired set) but takes no stock and sells nothing.
// It fails with ErrFailedPrecondition while orders hold units of it, or if it is retired
// already.
func (c *Client) Retire(ctx context.Context, sku string, opts ...CallOption) (api.SKU, error) {
	o := collect(opts)
	id := o.requestIDOrNew()
	r, err := mutation(http.MethodPost, skuPath(sku)+"/retire", api.RetireRequest{RequestID: id}, id)
	var out api.SKU
	if err == nil {
		err = c.do(ctx, c.poolFor(ctx, sku), r, decodeInto(&out))
	}
	return out, err
}

// Deduct buys qty units of a SKU for user at once ("buy now"). It fails with ErrSoldOut when
// nothing is left, ErrInsufficientStock when fewer than qty are, and ErrLimitExceeded past
// the SKU's per-user limit. Retries reuse one request_id, so the units are taken at most
// once; Duplicate in the answer says it is the replayed answer of an earlier try.
func (c *Client) Deduct(ctx context.Context, sku string, qty int64, user string, opts ...CallOption) (api.DeductResponse, error) {
	o := collect(opts)
	id := o.requestIDOrNew()
	p := c.poolFor(ctx, sku)
	if p.batcher != nil {
		return p.batcher.deduct(ctx, api.DeductItem{SKU: sku, Qty: qty, RequestID: id, UserID: user})
	}
	r, err := mutation(http.MethodPost, skuPath(sku)+"/deduct", api.DeductRequest{Qty: qty, RequestID: id, UserID: user}, id)
	var out api.DeductResponse
	if err == nil {
		err = c.do(ctx, p, r, decodeInto(&out))
	}
	return out, err
}

// History returns a SKU's ledger of stock movements, oldest first (WithLimit bounds it).
func (c *Client) History(ctx context.Context, sku string, opts ...CallOption) (api.History, error) {
	o := collect(opts)
	var q url.Values
	if o.limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(o.limit)}}
	}
	var out api.History
	err := c.do(ctx, c.poolFor(ctx, sku), o.read(skuPath(sku)+"/history", q), o.decode(&out))
	return out, err
}

// orderPath escapes an order id: ids are any printable ASCII, '/' and '?' included.
func orderPath(id string) string {
	return "/v1/orders/" + url.PathEscape(id)
}
