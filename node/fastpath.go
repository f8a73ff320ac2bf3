package node

import (
	"context"
	"net/http"
	"strconv"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// rejecter answers deductions that cannot succeed without writing the log: when a
// linearizable read shows too little stock, the rejection is what the log would have said,
// at a point inside the request's lifetime. Flash sales end with a flood of late buyers;
// each would otherwise cost a log entry and a share of three fsyncs to learn "sold out".
//
// Only a call's first try qualifies. The log records a rejection under its request_id and a
// retry gets that first answer back; an answer made here is recorded nowhere, so if an
// earlier try of the same call were still travelling it could commit after a restock and
// contradict us. A first try has no earlier try. Everything else takes the log path.
//
// The rejection is the same code the fsm gives: sold_out at zero stock; insufficient_stock
// only for SKUs without a per-user limit (with a limit, the fsm may say limit_exceeded
// first, and that needs the user's count, which only apply sees).
//
// Stock is read with fsm.GetSKU, from the machine's in-memory view of the SKUs a sale
// touches: cheap enough per call that nothing is cached here.
type rejecter struct {
	n    *Node
	ctx  context.Context
	read bool // the read index was taken
	err  error
}

func (n *Node) newRejecter(ctx context.Context) *rejecter {
	return &rejecter{n: n, ctx: ctx}
}

// reject returns the rejection for a first try of cmd, or false to send it to the log.
func (r *rejecter) reject(cmd fsm.Command, firstTry bool) (fsm.Result, bool) {
	if !firstTry || cmd.Kind != fsm.KindDeduct {
		return fsm.Result{}, false
	}
	// A cheap look at local state first: only a likely rejection pays for a read index.
	if s, ok := r.sku(cmd.SKU); !ok || !cannotTake(s, cmd.Qty) {
		return fsm.Result{}, false
	}
	if !r.read {
		// What was read before the read index proves nothing: the SKU is read again below.
		r.read, r.err = true, r.n.strongRead(r.ctx)
	}
	if r.err != nil || r.n.fsm.Remembers(cmd.RequestID) {
		return fsm.Result{}, false
	}
	s, ok := r.sku(cmd.SKU)
	if !ok || !cannotTake(s, cmd.Qty) {
		return fsm.Result{}, false
	}
	if s.Available == 0 {
		return fsm.Result{Code: api.SoldOut, Message: "sku " + strconv.Quote(s.SKU) + " is sold out", SKU: s}, true
	}
	return fsm.Result{Code: api.InsufficientStock, SKU: s,
		Message: "sku " + strconv.Quote(s.SKU) + " has " + strconv.FormatInt(s.Available, 10) + " available, asked for " + strconv.FormatInt(cmd.Qty, 10)}, true
}

func (r *rejecter) sku(name string) (fsm.SKU, bool) {
	s, err := r.n.fsm.GetSKU(name)
	return s, err == nil
}

// cannotTake is false for a retired SKU: its answer is failed_precondition, which the log
// gives.
func cannotTake(s fsm.SKU, qty int64) bool {
	return !s.Retired && (s.Available == 0 || s.PerUserLimit == 0 && s.Available < qty)
}

// firstTry reads HeaderAttempt: only an explicit "1" is a first try.
func firstTry(r *http.Request) bool { return r.Header.Get(api.HeaderAttempt) == "1" }
