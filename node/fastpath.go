package node

import (
	"context"
	"net/http"

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
// The rejection is the fsm's own (fsm.Take), given only where it does not depend on the
// user's count under a per-user limit, which only apply sees: sold out at zero stock, a
// retired SKU, too little stock for a SKU without a limit.
//
// Stock is read with fsm.GetSKU, from the machine's in-memory view of the SKUs a sale
// touches: cheap enough per call that nothing is cached here.
type rejecter struct {
	n    groupStore
	ctx  context.Context
	read bool // the read index was taken
	err  error
}

func newRejecter(ctx context.Context, g groupStore) *rejecter {
	return &rejecter{n: g, ctx: ctx}
}

// reject returns the rejection for a first try of cmd, or false to send it to the log.
func (r *rejecter) reject(cmd fsm.Command, firstTry bool) (fsm.Result, bool) {
	if !firstTry || cmd.Kind != fsm.KindDeduct {
		return fsm.Result{}, false
	}
	// A cheap look at local state first: only a likely rejection pays for a read index.
	if _, ok := r.rejection(cmd); !ok {
		return fsm.Result{}, false
	}
	if !r.read {
		// What was read before the read index proves nothing: the SKU is read again below.
		r.read, r.err = true, r.n.strongRead(r.ctx)
	}
	if r.err != nil || r.n.state().Remembers(cmd.RequestID) {
		return fsm.Result{}, false
	}
	return r.rejection(cmd)
}

// rejection is fsm.Take's answer for cmd where it is decided without the user's count and
// is a rejection.
func (r *rejecter) rejection(cmd fsm.Command) (fsm.Result, bool) {
	s, err := r.n.state().GetSKU(cmd.SKU)
	if err != nil {
		return fsm.Result{}, false
	}
	res, decided := fsm.Take(s, cmd.UserID, cmd.Qty, nil)
	if !decided || res.OK() {
		return fsm.Result{}, false
	}
	res.SKU = s
	return res, true
}

// firstTry reads HeaderAttempt: only an explicit "1" is a first try.
func firstTry(r *http.Request) bool { return r.Header.Get(api.HeaderAttempt) == "1" }
