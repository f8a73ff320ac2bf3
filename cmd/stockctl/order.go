package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

var orderCommand = group("order", "reserve stock for an order, then confirm or cancel it", []sub{
	{"reserve", "hold stock for an order (all lines or none)", runOrderReserve},
	{"confirm", "the order is paid: its held units become sold", orderAction("confirm")},
	{"cancel", "release an order's held units", orderAction("cancel")},
	{"ship", "mark a confirmed order shipped", orderAction("ship")},
	{"get", "show an order", runOrderGet},
})

const orderHeader = "ORDER\tUSER\tSTATUS\tLINES\tEXPIRES\tVERSION"

func orderRows(o api.Order) [][]string {
	lines := make([]string, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = l.SKU + ":" + strconv.FormatInt(l.Qty, 10)
	}
	expires := "-"
	if o.Status == api.OrderHeld {
		expires = msTime(o.ExpiresAtMS)
	}
	return [][]string{{o.OrderID, o.UserID, o.Status, strings.Join(lines, ","), expires, strconv.FormatUint(o.Version, 10)}}
}

// parseLine reads one --line value, "sku:qty" or "sku" (one unit).
func parseLine(v string) (api.Line, error) {
	sku, qty, found := strings.Cut(v, ":")
	if !found {
		return api.Line{SKU: sku, Qty: 1}, nil
	}
	n, err := strconv.ParseInt(qty, 10, 64)
	if err != nil || n < 1 || sku == "" {
		return api.Line{}, fmt.Errorf("want sku:qty with a positive qty, got %q", v)
	}
	return api.Line{SKU: sku, Qty: n}, nil
}

func runOrderReserve(args []string, stdout, stderr io.Writer) error {
	c := newCLI("order reserve", "order reserve <order-id> --user U --line SKU[:QTY]... [--ttl D] [flags]", `
Holds stock for an order: every line, or none if any line cannot be served. The hold lasts
--ttl; confirm the order once paid, or cancel it. Unconfirmed holds are released when they
expire.

examples:
  stockctl order reserve o-1001 --user u-7 --line tee-red-m:2 --line cap
  stockctl order reserve o-1002 --user u-8 --line sneaker-42 --ttl 15m --json`, stdout, stderr)
	user := c.fs.String("user", "", "the buyer's user id (required)")
	var lines stringsFlag
	c.fs.Var(&lines, "line", "an order line, sku:qty or sku (one unit); repeat for several (required)")
	ttl := c.fs.Duration("ttl", 10*time.Minute, "how long the stock is held")
	reqID := c.fs.String("request-id", "", "idempotency key (default: a random one)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *user == "" {
		return c.usageError("--user is required")
	}
	if len(lines) == 0 {
		return c.usageError("at least one --line is required")
	}
	if *ttl < time.Millisecond {
		return c.usageError("--ttl must be at least 1ms, got %v", *ttl)
	}
	var ls []api.Line
	for _, v := range lines {
		l, err := parseLine(v)
		if err != nil {
			return c.usageError("--line: %v", err)
		}
		ls = append(ls, l)
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	o, err := cl.Reserve(ctx, pos[0], *user, ls, *ttl, client.WithRequestID(*reqID))
	if err != nil {
		return c.explain(err)
	}
	return c.print(o, orderHeader, orderRows(o))
}

func orderAction(action string) func(args []string, stdout, stderr io.Writer) error {
	return func(args []string, stdout, stderr io.Writer) error {
		c := newCLI("order "+action, "order "+action+" <order-id> [--request-id ID] [flags]", fmt.Sprintf(`
%s an order (confirm: paid, held units become sold; cancel: held units go back on sale;
ship: a confirmed order leaves the warehouse).

examples:
  stockctl order %s o-1001
  stockctl order %s o-1001 --json`, strings.ToUpper(action[:1])+action[1:], action, action), stdout, stderr)
		reqID := c.fs.String("request-id", "", "idempotency key (default: a random one)")
		pos, err := c.parse(args, 1, 1)
		if err != nil {
			return err
		}
		cl, ctx, done, err := c.connect()
		if err != nil {
			return err
		}
		defer done()
		call := map[string]func() (api.Order, error){
			"confirm": func() (api.Order, error) { return cl.Confirm(ctx, pos[0], client.WithRequestID(*reqID)) },
			"cancel":  func() (api.Order, error) { return cl.Cancel(ctx, pos[0], client.WithRequestID(*reqID)) },
			"ship":    func() (api.Order, error) { return cl.Ship(ctx, pos[0], client.WithRequestID(*reqID)) },
		}[action]
		o, err := call()
		if err != nil {
			return c.explain(err)
		}
		return c.print(o, orderHeader, orderRows(o))
	}
}

func runOrderGet(args []string, stdout, stderr io.Writer) error {
	c := newCLI("order get", "order get <order-id> [flags]", `
Shows an order: its user, lines, status and, while held, when the hold expires.

examples:
  stockctl order get o-1001
  stockctl order get o-1001 --json | jq -r .status`, stdout, stderr)
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	o, err := cl.GetOrder(ctx, pos[0])
	if err != nil {
		return c.explain(err)
	}
	return c.print(o, orderHeader, orderRows(o))
}
