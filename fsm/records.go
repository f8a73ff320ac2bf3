package fsm

import (
	"encoding/binary"
	"fmt"

	"github.com/flashstock/flashstock/api"
)

// The bbolt layout. Every bucket is logical state: all of it is hashed by StateHash and
// copied by Snapshot.
var (
	bucketMeta    = []byte("meta")    // applied index, log time, sequences, retention settings
	bucketSKUs    = []byte("skus")    // sku → skuRecord
	bucketOrders  = []byte("orders")  // order id → Order
	bucketHolds   = []byte("holds")   // expires_at(8) ‖ order id → empty: held orders by expiry
	bucketUsers   = []byte("users")   // sku ‖ 0 ‖ user → units bought or held (SKUs with a limit)
	bucketLedger  = []byte("ledger")  // first seq(8) → one entry's Movements (with SKU and the SKU's previous seq)
	bucketDedup   = []byte("dedup")   // first seq(8) → one entry's dedupRecords, oldest first (dedup.go)
	bucketMembers = []byte("members") // member id → Member

	allBuckets = [][]byte{bucketMeta, bucketSKUs, bucketOrders, bucketHolds, bucketUsers, bucketLedger, bucketDedup, bucketMembers}
)

// skuRecord is a SKU as stored: the public fields plus what the invariants and the ledger
// need.
type skuRecord struct {
	SKU
	Restocked int64  // initial stock plus every restock: the invariant's "total"
	LastMove  uint64 // seq of the SKU's newest movement: the head of its history chain

	listed uint64 // not stored: the batch that last listed the record as changed
}

// A SKU record is version 2, or version 3 when it carries flags (retired). Records that
// need none keep version 2's bytes, so a state without retired SKUs hashes as before and an
// older node can read it.
func (s *skuRecord) encode() []byte {
	w := writer{b: make([]byte, 0, 48)}
	version := byte(2)
	if s.Retired {
		version = 3
	}
	w.byte(version)
	w.varint(s.Available)
	w.varint(s.Reserved)
	w.varint(s.Sold)
	w.varint(s.PerUserLimit)
	w.uvarint(s.Version)
	w.varint(s.Restocked)
	w.uvarint(s.LastMove)
	if version == 3 {
		w.byte(skuFlagRetired)
	}
	return w.b
}

const skuFlagRetired = 1

func decodeSKU(name string, b []byte) (skuRecord, error) {
	r := reader{b: b}
	v := r.byte()
	if v != 2 && v != 3 && r.err == nil {
		return skuRecord{}, fmt.Errorf("sku %q: record version %d", name, v)
	}
	s := skuRecord{SKU: SKU{SKU: name}}
	s.Available = r.varint()
	s.Reserved = r.varint()
	s.Sold = r.varint()
	s.PerUserLimit = r.varint()
	s.Version = r.uvarint()
	s.Restocked = r.varint()
	s.LastMove = r.uvarint()
	if v == 3 {
		flags := r.byte()
		if flags&^skuFlagRetired != 0 && r.err == nil {
			return skuRecord{}, fmt.Errorf("sku %q: unknown flags %#x", name, flags)
		}
		s.Retired = flags&skuFlagRetired != 0
	}
	if err := r.done(); err != nil {
		return skuRecord{}, fmt.Errorf("sku %q: %w", name, err)
	}
	return s, nil
}

func encodeOrder(w *writer, o *Order) {
	w.string(o.OrderID)
	w.string(o.UserID)
	w.byte(byte(o.Status))
	w.varint(o.ExpiresAt)
	w.varint(o.CreatedAt)
	w.uvarint(o.Version)
	w.uvarint(uint64(len(o.Lines)))
	for _, l := range o.Lines {
		w.string(l.SKU)
		w.varint(l.Qty)
	}
}

func decodeOrderFrom(r *reader) Order {
	o := Order{OrderID: r.string(maxDecodeString), UserID: r.string(maxDecodeString)}
	o.Status = OrderStatus(r.byte())
	o.ExpiresAt = r.varint()
	o.CreatedAt = r.varint()
	o.Version = r.uvarint()
	n := r.count(MaxLines)
	if n > 0 {
		o.Lines = make([]Line, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		o.Lines[i] = Line{SKU: r.string(maxDecodeString), Qty: r.varint()}
	}
	return o
}

func orderBytes(o *Order) []byte {
	w := writer{b: make([]byte, 0, 64)}
	w.byte(1)
	encodeOrder(&w, o)
	return w.b
}

func decodeOrder(b []byte) (Order, error) {
	r := reader{b: b}
	if v := r.byte(); v != 1 && r.err == nil {
		return Order{}, fmt.Errorf("order record version %d", v)
	}
	o := decodeOrderFrom(&r)
	if err := r.done(); err != nil {
		return Order{}, fmt.Errorf("order record: %w", err)
	}
	return o, nil
}

var ledgerLayout = seqLayout{single: 2, group: 3, name: "ledger"}

// ledgerFloor is the lowest seq the ledger's retention keeps.
func ledgerFloor(md *meta) uint64 { return seqFloor(md.MoveSeq, md.LedgerMax) }

// movementRecord is a ledger line as stored: the movement and a link to the previous
// movement of the same SKU. The ledger is one append-only sequence for all SKUs, so a batch
// spread over a thousand SKUs dirties the few pages at its end instead of one page per SKU;
// a SKU's history is read by following the links back from its newest movement.
type movementRecord struct {
	Movement
	Prev uint64 // seq of the SKU's previous movement, 0 for none
}

// A movement record is version 2, or version 4 with a reason after the time (adjust): the
// ledger of a state without adjustments keeps version 2's bytes. (3 is the ledger's group
// byte: no record version takes it.)
func (m *movementRecord) encode(w *writer) {
	version := byte(2)
	if m.Reason != "" {
		version = 4
	}
	w.byte(version)
	w.string(m.SKU)
	w.uvarint(m.Prev)
	w.uvarint(m.Index)
	w.byte(byte(m.Kind))
	w.varint(m.Qty)
	w.string(m.OrderID)
	w.string(m.RequestID)
	w.string(m.UserID)
	w.varint(m.Time)
	if version == 4 {
		w.string(m.Reason)
	}
}

func decodeMovement(seq uint64, b []byte) (movementRecord, error) {
	r := reader{b: b}
	v := r.byte()
	if v != 2 && v != 4 && r.err == nil {
		return movementRecord{}, fmt.Errorf("movement record version %d", v)
	}
	m := movementRecord{Movement: Movement{Seq: seq, SKU: r.string(maxDecodeString)}}
	m.Prev = r.uvarint()
	m.Index = r.uvarint()
	m.Kind = MovementKind(r.byte())
	m.Qty = r.varint()
	m.OrderID = r.string(maxDecodeString)
	m.RequestID = r.string(maxDecodeString)
	m.UserID = r.string(maxDecodeString)
	m.Time = r.varint()
	if v == 4 {
		m.Reason = r.string(maxDecodeString)
	}
	if err := r.done(); err != nil {
		return movementRecord{}, fmt.Errorf("movement %d: %w", seq, err)
	}
	if m.Prev >= seq {
		return movementRecord{}, fmt.Errorf("movement %d: links forward to %d", seq, m.Prev)
	}
	return m, nil
}

// dedupRecord is what the exactly-once table remembers of one request.
type dedupRecord struct {
	RequestID   string
	Time        int64  // log time when first applied
	Fingerprint uint64 // of the command, to refuse a request_id reused for another command
	Result      Result
}

// A dedup record is version 1, or version 3 when its answer's SKU is retired (a flag after
// the result); answers about SKUs in service keep version 1's bytes. (2 is the table's
// group byte: no record version takes it.)
func (d *dedupRecord) encode(w *writer) {
	version := byte(1)
	if d.Result.SKU.Retired {
		version = dedupRetiredVersion
	}
	w.byte(version)
	w.string(d.RequestID)
	w.varint(d.Time)
	w.uvarint(d.Fingerprint)
	encodeResult(w, &d.Result)
	if version == dedupRetiredVersion {
		w.bool(true)
	}
}

const dedupRetiredVersion = 3

func decodeDedup(b []byte) (dedupRecord, error) {
	r := reader{b: b}
	v := r.byte()
	if v != 1 && v != dedupRetiredVersion && r.err == nil {
		return dedupRecord{}, fmt.Errorf("dedup record version %d", v)
	}
	d := dedupRecord{RequestID: r.string(maxDecodeString), Time: r.varint(), Fingerprint: r.uvarint()}
	d.Result = decodeResultFrom(&r)
	if v == dedupRetiredVersion {
		d.Result.SKU.Retired = r.bool()
	}
	if err := r.done(); err != nil {
		return dedupRecord{}, fmt.Errorf("dedup record: %w", err)
	}
	return d, nil
}

// Results are stored without Batch (sub-commands are remembered one by one) and without
// the Duplicate and Skipped flags, which describe a later delivery, not the answer.
func encodeResult(w *writer, res *Result) {
	w.string(string(res.Code))
	w.string(res.Message)
	w.string(res.SKU.SKU)
	w.varint(res.SKU.Available)
	w.varint(res.SKU.Reserved)
	w.varint(res.SKU.Sold)
	w.varint(res.SKU.PerUserLimit)
	w.uvarint(res.SKU.Version)
	w.bool(res.Order.OrderID != "")
	if res.Order.OrderID != "" {
		encodeOrder(w, &res.Order)
	}
	w.varint(res.Expired)
}

func decodeResultFrom(r *reader) Result {
	res := Result{Code: api.Code(r.string(maxDecodeString)), Message: r.string(64 << 10)}
	res.SKU = SKU{SKU: r.string(maxDecodeString), Available: r.varint(), Reserved: r.varint(),
		Sold: r.varint(), PerUserLimit: r.varint(), Version: r.uvarint()}
	if r.bool() {
		res.Order = decodeOrderFrom(r)
	}
	res.Expired = r.varint()
	return res
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// skuKey builds sku ‖ 0 ‖ suffix. SKU ids never contain a zero byte, so every key of one SKU
// shares the prefix sku ‖ 0 and no other SKU's keys do.
func skuKey(sku string, suffix []byte) []byte {
	k := make([]byte, 0, len(sku)+1+len(suffix))
	k = append(k, sku...)
	k = append(k, 0)
	return append(k, suffix...)
}

func holdKey(expiresAt int64, orderID string) []byte {
	k := make([]byte, 0, 8+len(orderID))
	// Flipping the sign bit keeps signed times in order as unsigned big-endian keys.
	k = append(k, u64(uint64(expiresAt)^(1<<63))...)
	return append(k, orderID...)
}

func (m *Member) encode() []byte {
	w := writer{b: make([]byte, 0, 48)}
	w.byte(1)
	w.string(m.RaftAddr)
	w.string(m.HTTPAddr)
	return w.b
}

func decodeMember(id string, b []byte) (Member, error) {
	r := reader{b: b}
	if v := r.byte(); v != 1 && r.err == nil {
		return Member{}, fmt.Errorf("member record version %d", v)
	}
	m := Member{ID: id, RaftAddr: r.string(maxDecodeString), HTTPAddr: r.string(maxDecodeString)}
	if err := r.done(); err != nil {
		return Member{}, fmt.Errorf("member %q: %w", id, err)
	}
	return m, nil
}
