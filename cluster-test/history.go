package clustertest

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
)

// OpKind is what a recorded operation did.
type OpKind uint8

const (
	OpDeduct OpKind = iota + 1
	OpRestock
	OpRead // a strong GET of the SKU
)

func (k OpKind) String() string {
	switch k {
	case OpDeduct:
		return "deduct"
	case OpRestock:
		return "restock"
	case OpRead:
		return "read"
	}
	return fmt.Sprintf("op(%d)", k)
}

// Outcome is how an operation ended.
type Outcome uint8

const (
	// OutOK: a definite success; Value is the remaining (deduct) or available (restock,
	// read) stock the node answered.
	OutOK Outcome = iota + 1
	// OutSoldOut and OutInsufficient: definite rejections of a deduction.
	OutSoldOut
	OutInsufficient
	// OutUnknown: no definite answer (timeout, reset, no leader until the op's deadline).
	// A mutation may have been applied, at any time after its call.
	OutUnknown
	// OutApplied: an unknown mutation that the ledger shows applied (exactly once).
	OutApplied
	// OutError: a definite error the workload never expects (not_found, invalid_argument,
	// ...); always a failure.
	OutError
)

func (o Outcome) String() string {
	return [...]string{"?", "ok", "sold_out", "insufficient", "unknown", "applied", "error"}[o]
}

// Input is an operation's call.
type Input struct {
	Kind OpKind `json:"kind"`
	SKU  string `json:"sku"`
	Qty  int64  `json:"qty,omitempty"`
}

// Output is an operation's answer.
type Output struct {
	Outcome Outcome `json:"outcome"`
	Value   int64   `json:"value"`
	Err     string  `json:"err,omitempty"`
}

// Op is one logical operation: every retry of one request_id is part of it, so its call is
// the first try's and its return the last one's.
type Op struct {
	Client    int    `json:"client"`
	RequestID string `json:"request_id,omitempty"`
	Input     Input  `json:"input"`
	Output    Output `json:"output"`
	Call      int64  `json:"call_ns"`   // monotonic, since the history began
	Return    int64  `json:"return_ns"` // math.MaxInt64 once resolved as "may have happened"
	Tries     int    `json:"tries"`     // calls of the client (each with its own retries)
	Duplicate bool   `json:"duplicate,omitempty"`
	Pinned    string `json:"pinned,omitempty"` // the only node the client talked to, if pinned
}

// Unknown reports whether the operation ended without a definite answer.
func (o Op) Unknown() bool { return o.Output.Outcome == OutUnknown || o.Output.Outcome == OutApplied }

// Mutation reports whether the operation may change state.
func (o Op) Mutation() bool { return o.Input.Kind == OpDeduct || o.Input.Kind == OpRestock }

// Acked reports whether a mutation got a definite answer (success or rejection).
func (o Op) Acked() bool {
	return o.Mutation() && (o.Output.Outcome == OutOK || o.Output.Outcome == OutSoldOut || o.Output.Outcome == OutInsufficient)
}

// History records operations with times from one monotonic clock.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewHistory starts a history's clock.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the monotonic time since the history began.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// At converts a time taken by the test into the history's clock.
func (h *History) At(t time.Time) int64 { return int64(t.Sub(h.start)) }

// Add records a finished operation.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns the operations sorted by call time.
func (h *History) Ops() []Op {
	h.mu.Lock()
	out := append([]Op(nil), h.ops...)
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Call < out[j].Call })
	return out
}

// infinity is the return time of an operation that may have happened at any time after
// its call (porcupine's return at infinity).
const infinity = math.MaxInt64

// counts summarizes a history for the summary table.
func counts(ops []Op) (total, unknown int) {
	for _, op := range ops {
		total++
		if op.Unknown() {
			unknown++
		}
	}
	return total, unknown
}

// marshalHistory is the history as JSON lines, for the results directory.
func marshalHistory(ops []Op) []byte {
	var out []byte
	for _, op := range ops {
		b, _ := json.Marshal(op)
		out = append(out, b...)
		out = append(out, '\n')
	}
	return out
}
