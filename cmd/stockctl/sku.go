package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

var skuCommand = group("sku", "create, read, restock and watch SKUs", []sub{
	{"create", "create a SKU with its initial stock", runSKUCreate},
	{"get", "show a SKU's stock", runSKUGet},
	{"list", "list SKUs", runSKUList},
	{"restock", "add units to a SKU", runSKURestock},
	{"adjust", "correct a SKU's available units, with a reason (damage, miscount, ...)", runSKUAdjust},
	{"retire", "take a SKU out of sale for good, writing off what is available", runSKURetire},
	{"history", "show a SKU's ledger of stock movements", runSKUHistory},
	{"watch", "print a SKU's state now and after every change", runSKUWatch},
})

const skuHeader = "SKU\tAVAILABLE\tRESERVED\tSOLD\tLIMIT\tVERSION"

func skuRows(skus ...api.SKU) [][]string {
	rows := make([][]string, 0, len(skus))
	for _, s := range skus {
		limit := "-"
		if s.PerUserLimit > 0 {
			limit = strconv.FormatInt(s.PerUserLimit, 10)
		}
		name := s.SKU
		if s.Retired {
			name += " (retired)"
		}
		rows = append(rows, []string{name, i64(s.Available), i64(s.Reserved), i64(s.Sold), limit, strconv.FormatUint(s.Version, 10)})
	}
	return rows
}

func i64(v int64) string { return strconv.FormatInt(v, 10) }

// positive checks a quantity flag, naming it when it is wrong.
func (c *cli) positive(flag string, v int64) error {
	if v < 1 {
		return c.usageError("--%s must be a positive number of units, got %d", flag, v)
	}
	return nil
}

func runSKUCreate(args []string, stdout, stderr io.Writer) error {
	c := newCLI("sku create", "sku create <sku> --stock N [--per-user-limit K] [flags]", `
Creates a SKU with N units available. --per-user-limit caps the units one user may buy or
hold (0: no cap); --limit is the same flag.

examples:
  stockctl sku create tee-red-m --stock 100
  stockctl sku create sneaker-42 --stock 5 --per-user-limit 1 --json`, stdout, stderr)
	stock := c.fs.Int64("stock", 0, "initial units available (required; 0 allowed)")
	limit := c.fs.Int64("per-user-limit", 0, "units one user may buy or hold (0: no cap); the API's per_user_limit")
	c.fs.Int64Var(limit, "limit", 0, "the same as --per-user-limit")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if !c.isSet("stock") {
		return c.usageError("--stock is required (0 allowed)")
	}
	if *stock < 0 {
		return c.usageError("--stock must be 0 or more, got %d", *stock)
	}
	if *limit < 0 {
		return c.usageError("--per-user-limit must be 0 (none) or more, got %d", *limit)
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	s, err := cl.CreateSKU(ctx, pos[0], *stock, client.WithPerUserLimit(*limit))
	if err != nil {
		return c.explain(err)
	}
	return c.print(s, skuHeader, skuRows(s))
}

func runSKUGet(args []string, stdout, stderr io.Writer) error {
	c := newCLI("sku get", "sku get <sku> [--stale] [flags]", `
Shows a SKU's available, reserved and sold units. The read is linearizable (served by the
leader) unless --stale, which reads any node's local state and says how far behind it is.

examples:
  stockctl sku get tee-red-m
  stockctl sku get tee-red-m --stale --json`, stdout, stderr)
	stale := c.fs.Bool("stale", false, "read from any node's local state (faster, maybe behind)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	var opts []client.CallOption
	var info client.ReadInfo
	if *stale {
		opts = append(opts, client.WithStale(), client.WithReadInfo(&info))
	}
	s, err := cl.GetSKU(ctx, pos[0], opts...)
	if err != nil {
		return c.explain(err)
	}
	if err := c.print(s, skuHeader, skuRows(s)); err != nil {
		return err
	}
	if *stale && !c.json {
		fmt.Fprintf(stderr, "(stale read from %s at index %d, %v since it heard from the leader)\n", info.Node, info.AppliedIndex, info.LastContact)
	}
	return nil
}

func runSKUList(args []string, stdout, stderr io.Writer) error {
	c := newCLI("sku list", "sku list [--prefix P] [--limit N] [--after SKU] [flags]", `
Lists SKUs in id order. Page through a long list with --after (the last id shown).

examples:
  stockctl sku list
  stockctl sku list --prefix tee- --limit 20
  stockctl sku list --json | jq -r '.[] | select(.available == 0) | .sku'`, stdout, stderr)
	prefix := c.fs.String("prefix", "", "only SKUs whose id starts with this")
	limit := c.fs.Int("limit", 100, "at most this many (1..1000)")
	after := c.fs.String("after", "", "start after this SKU id")
	stale := c.fs.Bool("stale", false, "read from any node's local state")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return c.usageError("--limit must be 1..1000, got %d", *limit)
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	opts := []client.CallOption{client.WithLimit(*limit), client.WithAfter(*after)}
	if *stale {
		opts = append(opts, client.WithStale())
	}
	skus, err := cl.ListSKUs(ctx, *prefix, opts...)
	if err != nil {
		return c.explain(err)
	}
	if skus == nil {
		skus = []api.SKU{}
	}
	return c.print(skus, skuHeader, skuRows(skus...))
}

func runSKURestock(args []string, stdout, stderr io.Writer) error {
	c := newCLI("sku restock", "sku restock <sku> --qty N [--request-id ID] [flags]", `
Adds N units to a SKU's available stock. Rerunning with the same --request-id applies it
at most once (use it when a previous run's outcome is unknown).

examples:
  stockctl sku restock tee-red-m --qty 50
  stockctl sku restock tee-red-m --qty 50 --request-id restock-2024-11-11`, stdout, stderr)
	qty := c.fs.Int64("qty", 0, "units to add (required)")
	reqID := c.fs.String("request-id", "", "idempotency key (default: a random one)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if err := c.positive("qty", *qty); err != nil {
		return err
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	s, err := cl.Restock(ctx, pos[0], *qty, client.WithRequestID(*reqID))
	if err != nil {
		return c.explain(err)
	}
	return c.print(s, skuHeader, skuRows(s))
}

func runSKUAdjust(args []string, stdout, stderr io.Writer) error {
	c := newCLI("sku adjust", "sku adjust <sku> --qty N --reason R [--request-id ID] [flags]", `
Corrects a SKU's available units by N, negative or positive, when the count in the system is
wrong: units damaged or lost, a miscount, units found. The ledger keeps the reason (1-64
characters of [A-Za-z0-9._:-]). Taking more units than are available is refused (exit
status 4): units held by orders or sold are not adjusted. Rerunning with the same
--request-id applies it at most once.

examples:
  stockctl sku adjust tee-red-m --qty -3 --reason damage
  stockctl sku adjust tee-red-m --qty 2 --reason miscount --request-id count-2024-11-12`, stdout, stderr)
	qty := c.fs.Int64("qty", 0, "units to add (positive) or take away (negative); required")
	reason := c.fs.String("reason", "", "why: damage, miscount, lost, found, ... (required)")
	reqID := c.fs.String("request-id", "", "idempotency key (default: a random one)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *qty == 0 {
		return c.usageError("--qty must be a non-zero number of units, got 0")
	}
	if *reason == "" {
		return c.usageError("--reason is required (damage, miscount, ...)")
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	s, err := cl.Adjust(ctx, pos[0], *qty, *reason, client.WithRequestID(*reqID))
	if err != nil {
		return c.explain(err)
	}
	return c.print(s, skuHeader, skuRows(s))
}

func runSKURetire(args []string, stdout, stderr io.Writer) error {
	c := newCLI("sku retire", "sku retire <sku> [--request-id ID] [flags]", `
Takes a SKU out of sale for good. Units still available are written off (a "retire"
movement in the ledger); orders holding units of it must be confirmed, cancelled or expired
first (else exit status 4). A retired SKU stays readable, with its history, but takes no
stock and sells nothing, and its id is not reused.

examples:
  stockctl sku retire tee-red-m
  stockctl sku retire tee-red-m --json`, stdout, stderr)
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
	s, err := cl.Retire(ctx, pos[0], client.WithRequestID(*reqID))
	if err != nil {
		return c.explain(err)
	}
	return c.print(s, skuHeader, skuRows(s))
}

func runSKUHistory(args []string, stdout, stderr io.Writer) error {
	c := newCLI("sku history", "sku history <sku> [--limit N] [flags]", `
Shows the ledger of a SKU: every movement of stock with the order or request behind it,
oldest first.

examples:
  stockctl sku history tee-red-m
  stockctl sku history tee-red-m --limit 1000 --json`, stdout, stderr)
	limit := c.fs.Int("limit", 100, "at most this many movements (1..1000)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return c.usageError("--limit must be 1..1000, got %d", *limit)
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	h, err := cl.History(ctx, pos[0], client.WithLimit(*limit))
	if err != nil {
		return c.explain(err)
	}
	if h.Movements == nil {
		h.Movements = []api.Movement{}
	}
	rows := make([][]string, 0, len(h.Movements))
	for _, m := range h.Movements {
		rows = append(rows, []string{strconv.FormatUint(m.Index, 10), m.Kind, fmt.Sprintf("%+d", m.Qty),
			dash(m.OrderID), dash(m.RequestID), dash(m.UserID), dash(m.Reason), msTime(m.TimeMS)})
	}
	return c.print(h, "INDEX\tKIND\tQTY\tORDER\tREQUEST\tUSER\tREASON\tTIME", rows)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runSKUWatch(args []string, stdout, stderr io.Writer) error {
	c := newCLI("sku watch", "sku watch <sku> [--count N] [flags]", `
Prints a SKU's state now and again after every change, until Ctrl-C (or --count states).
It reconnects by itself when the node serving it goes away. With --json, one JSON object
per line. --timeout does not apply unless set.

examples:
  stockctl sku watch tee-red-m
  stockctl sku watch tee-red-m --json --count 10 | jq .available`, stdout, stderr)
	count := c.fs.Int("count", 0, "stop after this many states (0: until Ctrl-C)")
	c.timeout, c.untimed = 0, true
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *count < 0 {
		return c.usageError("--count must be 0 (no end) or more, got %d", *count)
	}
	if c.timeout <= 0 {
		c.timeout = 1<<63 - 1
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	n := 0
	for s, err := range cl.WatchSeq(ctx, pos[0]) {
		if err != nil {
			return c.explain(err)
		}
		if c.json {
			if err := writeJSONLine(stdout, s); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stdout, "%s available=%d reserved=%d sold=%d version=%d\n", s.SKU, s.Available, s.Reserved, s.Sold, s.Version)
		}
		if n++; *count > 0 && n >= *count {
			return nil
		}
	}
	return nil // Ctrl-C or --timeout: a watch ends that way
}
