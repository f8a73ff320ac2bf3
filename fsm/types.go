package fsm

import "github.com/flashstock/flashstock/api"

// Kind names a command.
type Kind uint8

// The commands of the state machine. Their numbers are part of the log encoding: never
// renumber, only append.
const (
	KindCreateSKU   Kind = 1
	KindRestock     Kind = 2
	KindDeduct      Kind = 3
	KindReserve     Kind = 4
	KindConfirm     Kind = 5
	KindCancel      Kind = 6
	KindShip        Kind = 7
	KindExpireHolds Kind = 8
	KindBatch       Kind = 9
	// Membership records: the HTTP address of each raft member, so any node can forward
	// to the leader and show the cluster. Not inventory, but it must be replicated and
	// snapshotted exactly like it, so it lives here.
	KindSetMember    Kind = 10
	KindRemoveMember Kind = 11
	// Inventory corrections. A node that predates them refuses their entries (Decode:
	// unknown kind), so they are proposed only once every member knows them
	// (docs/OPERATIONS.md, rolling upgrades).
	KindAdjust Kind = 12
	KindRetire Kind = 13
	// KindSetLevel raises the apply level (level.go).
	KindSetLevel Kind = 14
)

var kindNames = map[Kind]string{
	KindCreateSKU: "create_sku", KindRestock: "restock", KindDeduct: "deduct",
	KindReserve: "reserve", KindConfirm: "confirm", KindCancel: "cancel", KindShip: "ship",
	KindExpireHolds: "expire_holds", KindBatch: "batch", KindSetMember: "set_member",
	KindRemoveMember: "remove_member", KindAdjust: "adjust", KindRetire: "retire", KindSetLevel: "set_level",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return "unknown"
}

// Limits of the input rules (DESIGN.md, HTTP contract). They are checked by Validate, which
// both the HTTP layer (to answer 400 before proposing) and apply (for whatever reaches the
// log) use, so the two can never disagree.
const (
	MaxQty              = 1_000_000_000
	MaxInitial          = 1_000_000_000
	MaxIDLen            = 128
	MaxSKULen           = 64
	MaxLines            = 100
	MaxTTLMillis        = 24 * 60 * 60 * 1000
	MaxBatch            = 4096
	MaxAddrLen          = 256
	MaxTotalStock       = 1_000_000_000_000 // available+reserved+sold of one SKU
	MaxExpirePerCommand = 10_000            // holds one ExpireHolds releases; the leader repeats while it gets this many
	MaxReasonLen        = 64
)

// Line is one SKU and quantity of an order.
type Line struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// Command is one state change as proposed to the log. Which fields matter depends on Kind:
//
//	CreateSKU   SKU, Qty (initial stock, may be 0), PerUserLimit (0 = none); RequestID optional
//	Restock     SKU, Qty, RequestID
//	Deduct      SKU, Qty, UserID, RequestID
//	Reserve     OrderID, UserID, Lines, TTLMillis, RequestID
//	Confirm     OrderID, RequestID      (also Cancel, Ship)
//	ExpireHolds Time only: releases holds with expires_at <= Time
//	Batch       Batch (no nesting); each sub-command carries its own RequestID
//	SetMember   Member (ID, RaftAddr, HTTPAddr); RemoveMember: Member.ID
//	Adjust      SKU, Qty (signed, not 0: a correction of available stock), Reason, RequestID
//	Retire      SKU, RequestID
//
// Time is the proposer's clock in Unix milliseconds. Apply uses it as "now" for hold expiry
// and as the log time that ages the exactly-once table; it never reads a clock itself.
type Command struct {
	Kind         Kind
	RequestID    string
	Time         int64
	SKU          string
	Qty          int64
	PerUserLimit int64
	UserID       string
	OrderID      string
	Lines        []Line
	TTLMillis    int64
	Batch        []Command
	Member       Member
	Reason       string
	Level        uint64 // SetLevel
}

// Member is the replicated record of one cluster member's addresses.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// Entry is one log entry handed to ApplyBatch: its log index and its encoded command.
// Empty Data is a no-op that only advances the applied index (raft's configuration and
// barrier entries, Paxos no-ops), so the applied index always reaches the commit index.
type Entry struct {
	Index uint64
	Data  []byte
}

// SKU is the state of one stock-keeping unit.
type SKU struct {
	SKU          string `json:"sku"`
	Available    int64  `json:"available"`
	Reserved     int64  `json:"reserved"`
	Sold         int64  `json:"sold"`
	PerUserLimit int64  `json:"per_user_limit"`
	// Version is the log index of the last change.
	Version uint64 `json:"version"`
	// Retired SKUs keep their counts and history for reading but take no new stock and
	// sell nothing; their id is never reused.
	Retired bool `json:"retired,omitempty"`
}

// Total is every unit ever stocked: the invariant available+reserved+sold == total holds
// after every command.
func (s SKU) Total() int64 { return s.Available + s.Reserved + s.Sold }

// OrderStatus is where an order is in reserve → confirm → ship, or how it ended.
type OrderStatus uint8

// Order statuses; numbers are part of the stored encoding.
const (
	OrderHeld      OrderStatus = 1
	OrderConfirmed OrderStatus = 2
	OrderCancelled OrderStatus = 3
	OrderExpired   OrderStatus = 4
	OrderShipped   OrderStatus = 5
)

var statusNames = map[OrderStatus]string{
	OrderHeld: "held", OrderConfirmed: "confirmed", OrderCancelled: "cancelled",
	OrderExpired: "expired", OrderShipped: "shipped",
}

// MarshalText makes the status read as its name in JSON.
func (s OrderStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s OrderStatus) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "unknown"
}

// Order is a multi-line purchase. While Held its units count as reserved.
type Order struct {
	OrderID   string      `json:"order_id"`
	UserID    string      `json:"user_id"`
	Lines     []Line      `json:"lines"`
	Status    OrderStatus `json:"status"`
	ExpiresAt int64       `json:"expires_at_ms"` // Unix ms, proposer's clock
	CreatedAt int64       `json:"created_at_ms"`
	Version   uint64      `json:"version"`
}

// MovementKind says which columns of a SKU a movement changed.
type MovementKind uint8

// Movement kinds; numbers are part of the stored encoding.
const (
	MoveCreate  MovementKind = 1 // available += qty (initial stock)
	MoveRestock MovementKind = 2 // available += qty
	MoveDeduct  MovementKind = 3 // available -= qty, sold += qty
	MoveReserve MovementKind = 4 // available -= qty, reserved += qty
	MoveConfirm MovementKind = 5 // reserved -= qty, sold += qty
	MoveCancel  MovementKind = 6 // reserved -= qty, available += qty
	MoveExpire  MovementKind = 7 // reserved -= qty, available += qty
	MoveAdjust  MovementKind = 8 // available += qty (signed): a correction, with a reason
	MoveRetire  MovementKind = 9 // available += qty (-available: written off), the SKU retires
)

var moveNames = map[MovementKind]string{
	MoveCreate: "create", MoveRestock: "restock", MoveDeduct: "deduct", MoveReserve: "reserve",
	MoveConfirm: "confirm", MoveCancel: "cancel", MoveExpire: "expire", MoveAdjust: "adjust",
	MoveRetire: "retire",
}

// MarshalText makes the kind read as its name in JSON.
func (k MovementKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

func (k MovementKind) String() string {
	if n, ok := moveNames[k]; ok {
		return n
	}
	return "unknown"
}

// Movement is one line of a SKU's audit ledger: where units went and why.
type Movement struct {
	Index     uint64       `json:"index"`
	Seq       uint64       `json:"seq"` // global order of movements, unique
	SKU       string       `json:"sku"`
	Kind      MovementKind `json:"kind"`
	Qty       int64        `json:"qty"`
	OrderID   string       `json:"order_id,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	UserID    string       `json:"user_id,omitempty"`
	Reason    string       `json:"reason,omitempty"` // adjust only
	Time      int64        `json:"time_ms"`
}

// Result is the outcome of one command. Code is api.OK on success; otherwise the command
// was rejected and changed nothing, except that its request_id now remembers this answer
// and that an order it found past its hold was released as expired (code expired).
type Result struct {
	Code    api.Code
	Message string
	// Duplicate marks an answer replayed from the exactly-once table: the command was not
	// applied again.
	Duplicate bool
	// SKU is the SKU after the command (create, restock, deduct, adjust, retire).
	SKU SKU
	// Order is the order after the command (reserve, confirm, cancel, ship).
	Order Order
	// Expired counts the holds released (ExpireHolds).
	Expired int64
	// Batch holds one result per sub-command of a Batch.
	Batch []Result
	// Skipped marks an entry at or below the applied index: it was applied before (a log
	// replayed after restart) and was not looked at again.
	Skipped bool
	// Changed lists every SKU the entry changed, in the order first changed, whatever the
	// command (hold expiry included), so watchers need not know which command moves which
	// SKU. Set on an entry's result only, not on a batch's sub-results; not remembered by
	// the exactly-once table (a duplicate changes nothing).
	Changed []string
}

// OK reports whether the command was applied (or was applied the first time, for a
// duplicate).
func (r Result) OK() bool { return r.Code == api.OK }
