package main

import (
	"fmt"
	"io"

	"github.com/flashstock/flashstock/client"
)

func runDeduct(args []string, stdout, stderr io.Writer) error {
	c := newCLI("deduct", "deduct <sku> --user U [--qty N] [--request-id ID] [flags]", `
Buy now: takes N units (default 1) of a SKU for a user at once. Fails with exit status 4
when the SKU is sold out, has fewer than N units, or the user's limit would be passed.

Retries after a lost answer or a leader change reuse one request id, so the units are
taken at most once. If the command gives up (exit status 5) the outcome is unknown: rerun
it with the --request-id it printed to learn the first answer.

examples:
  stockctl deduct tee-red-m --user u-1001
  stockctl deduct tee-red-m --user u-1001 --qty 2 --request-id order-77 --json`, stdout, stderr)
	user := c.fs.String("user", "", "the buyer's user id (required)")
	qty := c.fs.Int64("qty", 1, "units to buy")
	reqID := c.fs.String("request-id", "", "idempotency key (default: a random one)")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *user == "" {
		return c.usageError("--user is required")
	}
	if err := c.positive("qty", *qty); err != nil {
		return err
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	res, err := cl.Deduct(ctx, pos[0], *qty, *user, client.WithRequestID(*reqID))
	if err != nil {
		return c.explain(err)
	}
	if c.json {
		return writeJSON(stdout, res)
	}
	dup := ""
	if res.Duplicate {
		dup = " (already applied: this is the first answer of that request id)"
	}
	fmt.Fprintf(stdout, "bought %d of %s for %s: %d left%s\n", *qty, pos[0], *user, res.Remaining, dup)
	return nil
}
