package api

import "strconv"

// The JSON bodies of the HTTP contract (DESIGN.md, "HTTP API (v1, JSON)").

// Consistency levels of a read.
const (
	Strong = "strong" // linearizable: served by the leader after it confirms its leadership
	Stale  = "stale"  // any node's local state; see the staleness headers
)

// Headers a node adds to reads and forwarded requests.
const (
	HeaderAppliedIndex  = "X-Flashstock-Applied-Index"   // the answering node's applied log index
	HeaderLastContactMS = "X-Flashstock-Last-Contact-Ms" // ms since it heard from the leader (0 on the leader)
	HeaderForwardedBy   = "X-Flashstock-Forwarded-By"    // set by a follower forwarding to the leader
	HeaderLeader        = "X-Flashstock-Leader"          // the leader's HTTP address, on every answer when known
	// HeaderGroup names the raft group a multi-group cluster's answer about a SKU or an
	// order is from; HeaderLeader is then that group's leader.
	HeaderGroup = "X-Flashstock-Group"
	// HeaderAttempt numbers the tries of one logical call (1 = the first). Only a first try
	// may be answered sold_out from a linearizable read without a log write: no earlier try
	// of it can still commit and contradict that answer. Without the header a deduction
	// always goes through the log.
	HeaderAttempt = "X-Flashstock-Attempt"
)

// SKU is a stock-keeping unit as the API shows it.
type SKU struct {
	SKU          string `json:"sku"`
	Available    int64  `json:"available"`
	Reserved     int64  `json:"reserved"`
	Sold         int64  `json:"sold"`
	PerUserLimit int64  `json:"per_user_limit"`
	Version      uint64 `json:"version"`
	// Retired SKUs are read-only: no stock comes in, nothing is sold (failed_precondition).
	Retired   bool `json:"retired,omitempty"`
	Duplicate bool `json:"duplicate,omitempty"`
}

// CreateSKURequest is the body of PUT /v1/skus/{sku}. Stock is required.
type CreateSKURequest struct {
	Stock        *int64 `json:"stock"`
	PerUserLimit int64  `json:"per_user_limit"`
	RequestID    string `json:"request_id,omitempty"`
}

// RestockRequest is the body of POST /v1/skus/{sku}/restock.
type RestockRequest struct {
	Qty       int64  `json:"qty"`
	RequestID string `json:"request_id"`
}

// AdjustRequest is the body of POST /v1/skus/{sku}/adjust: a correction of available
// stock by Qty (negative: units damaged, lost, counted too high; positive: units found),
// with a Reason of 1-64 characters of [A-Za-z0-9._:-] that the ledger keeps.
type AdjustRequest struct {
	Qty       int64  `json:"qty"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id"`
}

// RetireRequest is the body of POST /v1/skus/{sku}/retire.
type RetireRequest struct {
	RequestID string `json:"request_id"`
}

// DeductRequest is the body of POST /v1/skus/{sku}/deduct.
type DeductRequest struct {
	Qty       int64  `json:"qty"`
	RequestID string `json:"request_id"`
	UserID    string `json:"user_id"`
}

// DeductResponse answers a deduction. Duplicate marks the first answer of a request_id
// replayed, not applied again.
type DeductResponse struct {
	Remaining int64 `json:"remaining"`
	Duplicate bool  `json:"duplicate"`
}

// AppendJSON appends r as encoding/json marshals it, without reflection: a node answers
// every plain-HTTP deduction with one.
func (r DeductResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"remaining":`...)
	b = strconv.AppendInt(b, r.Remaining, 10)
	b = append(b, `,"duplicate":`...)
	b = strconv.AppendBool(b, r.Duplicate)
	return append(b, '}')
}

// MaxBatchItems bounds the deductions of one batch request.
const MaxBatchItems = 4096

// BatchDeductRequest is the body of POST /v1/batch/deduct: many buyers' deductions in one
// request, each with its own request_id and answer (a client batches concurrent calls).
type BatchDeductRequest struct {
	Items []DeductItem `json:"items"`
}

// DeductItem is one deduction of a batch. Attempt numbers its tries as HeaderAttempt does.
type DeductItem struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	RequestID string `json:"request_id"`
	UserID    string `json:"user_id"`
	Attempt   int    `json:"attempt,omitempty"`
}

// BatchDeductResponse has one result per item, in order.
type BatchDeductResponse struct {
	Results []DeductResult `json:"results"`
}

// DeductResult is a DeductResponse, or the item's error.
type DeductResult struct {
	Remaining int64  `json:"remaining"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Error     *Error `json:"error,omitempty"`
}

// SKUList answers GET /v1/skus.
type SKUList struct {
	SKUs []SKU `json:"skus"`
}

// Line is one SKU and quantity of an order.
type Line struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// ReserveRequest is the body of POST /v1/orders.
type ReserveRequest struct {
	OrderID   string `json:"order_id"`
	UserID    string `json:"user_id"`
	Lines     []Line `json:"lines"`
	TTLMillis int64  `json:"ttl_ms"`
	RequestID string `json:"request_id"`
}

// OrderActionRequest is the body of POST /v1/orders/{id}/confirm, /cancel and /ship.
type OrderActionRequest struct {
	RequestID string `json:"request_id"`
}

// Order statuses.
const (
	OrderHeld      = "held"
	OrderConfirmed = "confirmed"
	OrderCancelled = "cancelled"
	OrderExpired   = "expired"
	OrderShipped   = "shipped"
)

// Order is a multi-line purchase.
type Order struct {
	OrderID     string `json:"order_id"`
	UserID      string `json:"user_id"`
	Lines       []Line `json:"lines"`
	Status      string `json:"status"`
	ExpiresAtMS int64  `json:"expires_at_ms"`
	CreatedAtMS int64  `json:"created_at_ms"`
	Version     uint64 `json:"version"`
	Duplicate   bool   `json:"duplicate,omitempty"`
}

// Movement is one line of a SKU's audit ledger.
type Movement struct {
	Index     uint64 `json:"index"`
	Seq       uint64 `json:"seq"`
	Kind      string `json:"kind"`
	Qty       int64  `json:"qty"`
	OrderID   string `json:"order_id,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	Reason    string `json:"reason,omitempty"` // adjust only
	TimeMS    int64  `json:"time_ms"`
}

// History answers GET /v1/skus/{sku}/history, oldest first.
type History struct {
	SKU       string     `json:"sku"`
	Movements []Movement `json:"movements"`
}

// Roles and suffrages in the cluster view.
const (
	RoleLeader    = "leader"
	RoleFollower  = "follower"
	RoleCandidate = "candidate"
	RoleUnknown   = "unknown" // not reachable from the answering node
	Voter         = "voter"
	Nonvoter      = "nonvoter"
)

// Node is one member in GET /v1/cluster.
type Node struct {
	ID            string `json:"id"`
	RaftAddr      string `json:"raft_addr"`
	HTTPAddr      string `json:"http_addr"`
	Role          string `json:"role"`
	Suffrage      string `json:"suffrage"`
	AppliedIndex  uint64 `json:"applied_index"`
	LastContactMS int64  `json:"last_contact_ms"`
	// WallClockMS is the member's wall clock when it answered (Unix ms). A new leader asks
	// the voters for it to start cluster time (docs/DESIGN.md, "Cluster time").
	WallClockMS int64 `json:"wall_clock_ms,omitempty"`
	// ClusterTimeMS is the cluster time the member judges reads by: the time holds expire
	// by (expires_at_ms) and the exactly-once window counts.
	ClusterTimeMS int64 `json:"cluster_time_ms,omitempty"`
	// ApplyLevel is the level of apply rules in force in the member's state, and
	// MaxApplyLevel the highest its build knows (docs/DESIGN.md, "Rolling upgrades").
	ApplyLevel    uint64 `json:"apply_level"`
	MaxApplyLevel uint64 `json:"max_apply_level"`
	// MetaLevel is the meta group's apply level in the member's replica (a multi-group
	// cluster's; placement/meta/level.go), and MaxMetaLevel the highest its build knows:
	// absent for a build before the meta levels, which holds the meta log's level at 0.
	MetaLevel    uint64 `json:"meta_level,omitempty"`
	MaxMetaLevel uint64 `json:"max_meta_level,omitempty"`
	// Version and Revision are the member's own build, as it reports it; empty when it
	// does not answer (or predates the field).
	Version  string `json:"version,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Groups is the member's replica of each raft group it hosts (group 1 alone in a
	// single-group cluster), in id order, as the member reports it; empty for a member
	// that does not answer or predates the field.
	Groups []NodeGroup `json:"groups,omitempty"`
	// State is the node's state in a multi-group cluster's placement: NodeActive, or
	// NodeDraining while its replicas move off before it leaves. Empty in a single-group
	// cluster, which has no placement.
	State string `json:"state,omitempty"`
}

// NodeGroup is one member's replica of one raft group.
type NodeGroup struct {
	ID           uint64 `json:"id"`
	Role         string `json:"role"`
	AppliedIndex uint64 `json:"applied_index"`
	// Failed says why the replica stopped (a poisoned state machine, a failed state write);
	// a failed replica serves nothing until the process restarts.
	Failed string `json:"failed,omitempty"`
}

// Cluster answers GET /v1/cluster.
type Cluster struct {
	Leader string `json:"leader"`
	Term   uint64 `json:"term"`
	Nodes  []Node `json:"nodes"`
	// ConfigIndex is the log index of the configuration shown. A membership change that
	// carries it applies only to that configuration: of two changes made from the same
	// view, one fails with failed_precondition, however they are timed.
	ConfigIndex uint64 `json:"config_index"`
	// Groups are the cluster's raft groups, by id, as the answering node knows them: the
	// placement's (meta group first, then data groups 1..G, each with its leader when
	// known), or for a single-group cluster its one data group, 1, owning every slot,
	// whose replicas are the raft configuration.
	Groups []Group `json:"groups"`
	// PlacementVersion is the version of the placement Groups come from; 0 for a
	// single-group cluster, which has none.
	PlacementVersion uint64 `json:"placement_version"`
}

// JoinRequest is the body of POST /v1/cluster/members.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Nonvoter bool   `json:"nonvoter,omitempty"`
	// ConfigIndex, when set, is the Cluster.ConfigIndex the caller saw; the join fails
	// with failed_precondition if the configuration has changed since.
	ConfigIndex uint64 `json:"config_index,omitempty"`
}

// MembershipRequest is the body of POST /v1/groups/{id}/membership, the internal admin
// route the placement controller carries its steps out through: Op is a placement step
// kind (add_nonvoter, promote, demote, remove, transfer_leader) done to Node (a node id of
// the placement) in the group, by the group's leader. ConfigIndex, when set, is the
// configuration the caller saw, as in JoinRequest.
type MembershipRequest struct {
	Op          string `json:"op"`
	Node        string `json:"node"`
	ConfigIndex uint64 `json:"config_index,omitempty"`
}

// TransferRequest is the body of POST /v1/cluster/leader (leadership transfer); an empty
// ID lets the leader pick the most up-to-date follower. Group names the raft group whose
// leadership moves: optional in a single-group cluster (group 1, the only one), required
// in a multi-group one, where group 0 (the meta group) counts as a group; a pointer, so
// that naming group 0 differs from naming none.
type TransferRequest struct {
	ID    string  `json:"id,omitempty"`
	Group *uint64 `json:"group,omitempty"`
}

// Health answers /healthz and /readyz.
type Health struct {
	Status string `json:"status"` // "ok" or why not
	ID     string `json:"id"`
	Leader string `json:"leader,omitempty"`
}

// DebugState answers GET /v1/debug/state: what a checker needs to compare replicas.
type DebugState struct {
	ID           string `json:"id"`
	Group        uint64 `json:"group"` // the data group described (?group=N; 1 by default)
	AppliedIndex uint64 `json:"applied_index"`
	StateHash    string `json:"state_hash"` // hex sha256 of the whole state at AppliedIndex
	Invariants   string `json:"invariants"` // "ok", or every violation found
}
