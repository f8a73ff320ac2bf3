package api

// Code is the stable, machine-readable name of an outcome. Codes are part of the wire
// contract: clients branch on them, never on message text, so a code is never renamed.
type Code string

// The vocabulary. The comment on each says when a client may retry the same request.
const (
	// OK is the absence of an error. It never appears in an error body.
	OK Code = "ok"
	// InvalidArgument: the request breaks an input rule. Never retry unchanged.
	InvalidArgument Code = "invalid_argument"
	// MethodNotAllowed: the path exists but not with this HTTP method (the Allow header
	// lists the ones it takes). Never retry unchanged.
	MethodNotAllowed Code = "method_not_allowed"
	// Unauthorized: missing or wrong credentials. Retry only with new credentials.
	Unauthorized Code = "unauthorized"
	// NotFound: the SKU, order or member does not exist. Not retryable.
	NotFound Code = "not_found"
	// AlreadyExists: a SKU or order with that id exists. Not retryable.
	AlreadyExists Code = "already_exists"
	// SoldOut: the SKU has no available stock at all. Not retryable (stock may be restocked,
	// but that is a new decision for the caller, with a new request_id).
	SoldOut Code = "sold_out"
	// InsufficientStock: fewer units available than asked for. Not retryable.
	InsufficientStock Code = "insufficient_stock"
	// LimitExceeded: the user's per-user limit for the SKU would be passed. Not retryable.
	LimitExceeded Code = "limit_exceeded"
	// Expired: the order's hold ran out before it was confirmed. Not retryable.
	Expired Code = "expired"
	// FailedPrecondition: the order is not in the state the command needs (for example
	// shipping an unconfirmed order). Not retryable.
	FailedPrecondition Code = "failed_precondition"
	// Overflow: a restock would take a SKU's total stock past MaxTotalStock. Not retryable.
	Overflow Code = "overflow"
	// CrossGroup: the order's lines live in different raft groups, which one order cannot
	// span until cross-group orders exist (issue 17). Not retryable as it is.
	CrossGroup Code = "cross_group"
	// Overloaded: the leader is at its bound of in-flight proposals; nothing was proposed.
	// Safe to retry after Retry-After.
	Overloaded Code = "overloaded"
	// NotLeader: this node cannot serve the request; the error names the leader when known.
	// Nothing was proposed, safe to retry there.
	NotLeader Code = "not_leader"
	// NoLeader: the cluster has no leader right now (election, lost quorum). Safe to retry
	// with the same request_id after a backoff.
	NoLeader Code = "no_leader"
	// Timeout: the outcome is unknown — the command may still commit. Retry with the same
	// request_id to learn the first answer.
	Timeout Code = "timeout"
	// Internal: a server fault. The outcome of a mutation is unknown; retry with the same
	// request_id.
	Internal Code = "internal"
)

type codeInfo struct {
	status    int
	retryable bool
}

// codes is the one table that maps the vocabulary to HTTP statuses and retry safety. The
// statuses are numbers, not net/http's names: they are part of the wire contract
// (docs/API.md), and the packages that use api without speaking HTTP (fsm, paxos) should
// not link net/http for them.
var codes = map[Code]codeInfo{
	OK:                 {200, false},
	InvalidArgument:    {400, false},
	MethodNotAllowed:   {405, false},
	Unauthorized:       {401, false},
	NotFound:           {404, false},
	AlreadyExists:      {409, false},
	SoldOut:            {409, false},
	InsufficientStock:  {409, false},
	LimitExceeded:      {409, false},
	Expired:            {409, false},
	FailedPrecondition: {409, false},
	Overflow:           {409, false},
	CrossGroup:         {409, false},
	Overloaded:         {429, true},
	NotLeader:          {503, true},
	NoLeader:           {503, true},
	Timeout:            {504, true},
	Internal:           {500, true},
}

// Known reports whether c belongs to the vocabulary.
func (c Code) Known() bool { _, ok := codes[c]; return ok }

// HTTPStatus is the status a node answers with for c; unknown codes are internal errors.
func (c Code) HTTPStatus() int {
	if info, ok := codes[c]; ok {
		return info.status
	}
	return 500
}

// Retryable reports whether resending the same request (same request_id) is safe and may
// succeed. Mutations are only ever retried with their original request_id.
func (c Code) Retryable() bool { return codes[c].retryable }

// Codes lists the vocabulary, for documentation and exhaustive tests.
func Codes() []Code {
	return []Code{OK, InvalidArgument, MethodNotAllowed, Unauthorized, NotFound, AlreadyExists, SoldOut,
		InsufficientStock, LimitExceeded, Expired, FailedPrecondition, Overflow, CrossGroup, Overloaded,
		NotLeader, NoLeader, Timeout, Internal}
}
