package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/flashstock/flashstock/api"
)

// applier is the working state of one ApplyBatch transaction. SKU records are cached (by
// the machine, across transactions) and written once per transaction, so a hot SKU costs
// one put per commit, not one per buyer, and a read of the B+tree only when it is new to
// the cache.
type applier struct {
	tx   *bolt.Tx
	meta *meta

	skus, orders, holds, users, ledger, dedupB *bolt.Bucket

	cache map[string]*skuRecord // the machine's: see Machine.skus
	dirty map[string]bool
	// changed lists the SKUs changed by the current batch (numbered by the machine, from
	// 1, never reused), for the machine's staged view of them; only if stage
	// (Options.DeferCommit).
	stage   bool
	changed []*skuRecord
	batch   uint64

	// ids is the machine's dedup index, changed as records are added and forgotten: a
	// failed transaction poisons the machine, so it never needs undoing.
	ids *dedupIndex
	// What the entry being applied appends to the table and the ledger, stored as one
	// value each at its end; readers of what is stored.
	dedupNew, ledgerNew seqGroup
	dedupOld            seqReader
	ledgerOldEnd        uint64 // the seq after the oldest stored ledger group, 0: unknown

	// The entry being applied, and the SKUs it changed so far (its Result.Changed).
	index   uint64
	time    int64
	changes []string

	validate func(Command) error // Validate; see Machine.validate

	membersChanged bool
	scratch        []byte // reused by fingerprint

	// bbolt keeps the key and value slices given to Put until the transaction ends, so
	// records are encoded into shared chunks (the arena) instead of one allocation each.
	arena []byte
	w     writer
}

// record starts encoding a key or value into the arena; done returns the bytes.
func (a *applier) record() *writer {
	if cap(a.arena)-len(a.arena) < 512 {
		a.arena = make([]byte, 0, 16<<10)
	}
	a.w.b = a.arena[len(a.arena):len(a.arena)]
	return &a.w
}

func (a *applier) done() []byte {
	b := a.w.b
	// Still in the chunk (else append moved it to a slice of its own): claim the bytes.
	if cap(b) == cap(a.arena)-len(a.arena) {
		a.arena = a.arena[:len(a.arena)+len(b)]
	}
	return b
}

// seqKey encodes a sequence number as an 8-byte big-endian key in the arena.
func (a *applier) seqKey(seq uint64) []byte {
	w := a.record()
	w.b = binary.BigEndian.AppendUint64(w.b, seq)
	return a.done()
}

func newApplier(tx *bolt.Tx, md *meta, ids *dedupIndex, skus map[string]*skuRecord) *applier {
	a := &applier{
		tx: tx, meta: md,
		skus: tx.Bucket(bucketSKUs), orders: tx.Bucket(bucketOrders), holds: tx.Bucket(bucketHolds),
		users: tx.Bucket(bucketUsers), ledger: tx.Bucket(bucketLedger), dedupB: tx.Bucket(bucketDedup),
		cache: skus, dirty: make(map[string]bool),
		ids: ids,
	}
	// Both buckets only grow at their end, so full pages waste nothing; bbolt's default of
	// half-full pages would double the bytes written and fsynced per batch.
	a.dedupB.FillPercent = 1.0
	a.ledger.FillPercent = 1.0
	a.dedupNew.l, a.ledgerNew.l = dedupLayout, ledgerLayout
	a.dedupOld = seqReader{l: dedupLayout, b: a.dedupB}
	return a
}

// applyEntry applies one log entry. Only storage failures are errors; a malformed or
// rejected command is a Result, identical on every replica.
func (a *applier) applyEntry(e Entry) (Result, error) {
	a.changes = a.changes[:0]
	res, err := a.applyCommands(e)
	if len(a.changes) > 0 {
		res.Changed = slices.Clone(a.changes)
	}
	if err == nil {
		err = a.dedupNew.store(a.dedupB, dedupFloor(a.meta), a.seqKey)
	}
	if err == nil {
		err = a.ledgerNew.store(a.ledger, ledgerFloor(a.meta), a.seqKey)
	}
	if err != nil {
		a.dedupNew.recs, a.ledgerNew.recs = a.dedupNew.recs[:0], a.ledgerNew.recs[:0]
		return Result{}, err
	}
	return res, nil
}

func (a *applier) applyCommands(e Entry) (Result, error) {
	a.index = e.Index
	if len(e.Data) == 0 {
		return Result{Code: api.OK}, nil
	}
	cmd, err := Decode(e.Data)
	if k, unknown := unknownAtLevel(cmd, a.meta.Level); err == nil && unknown {
		// Exactly what a build that predates the kind makes of the entry (level.go).
		err = fmt.Errorf("%w: unknown kind %d", ErrDecode, k)
	}
	if err != nil {
		return reject(api.InvalidArgument, "%v", err), nil
	}
	a.advanceTime(cmd)
	if err := a.prune(); err != nil {
		return Result{}, err
	}
	if err := a.validate(cmd); err != nil {
		return invalid(err), nil
	}
	if cmd.Kind == KindBatch {
		res := Result{Code: api.OK, Batch: make([]Result, len(cmd.Batch))}
		hs := a.ids.warm(cmd.Batch)
		for i, sub := range cmd.Batch {
			if res.Batch[i], err = a.applyOnce(sub, hs[i]); err != nil {
				return Result{}, err
			}
		}
		return res, nil
	}
	var h uint64
	if cmd.RequestID != "" {
		h = a.ids.hash(cmd.RequestID)
	}
	return a.applyOnce(cmd, h)
}

// advanceTime moves the log clock to the command's time. The clock never runs backwards,
// whatever a new leader's wall clock says.
func (a *applier) advanceTime(cmd Command) {
	t := cmd.Time
	for _, sub := range cmd.Batch {
		t = max(t, sub.Time)
	}
	a.meta.LogTime = max(a.meta.LogTime, t)
	a.time = cmd.Time
}

// applyOnce applies one validated command with exactly-once semantics: a request_id seen
// before gets its first answer back and changes nothing.
func (a *applier) applyOnce(cmd Command, h uint64) (Result, error) {
	if cmd.Time != 0 {
		a.time = cmd.Time
	}
	var fp uint64
	if cmd.RequestID != "" {
		fp = a.fingerprint(cmd)
		d, found, err := a.lookupDedup(cmd.RequestID, h)
		if err != nil {
			return Result{}, err
		}
		if found {
			if d.Fingerprint != fp {
				return reject(api.InvalidArgument, "request_id %q was already used for a different command", cmd.RequestID), nil
			}
			res := d.Result
			res.Duplicate = true
			return res, nil
		}
	}
	res, err := a.dispatch(cmd)
	if err != nil {
		return Result{}, err
	}
	if cmd.RequestID != "" {
		if err := a.remember(cmd.RequestID, h, fp, res); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

func (a *applier) dispatch(c Command) (Result, error) {
	switch c.Kind {
	case KindCreateSKU:
		return a.createSKU(c)
	case KindRestock:
		return a.restock(c)
	case KindDeduct:
		return a.deduct(c)
	case KindReserve:
		return a.reserve(c)
	case KindConfirm:
		return a.confirm(c)
	case KindCancel:
		return a.cancel(c)
	case KindShip:
		return a.ship(c)
	case KindExpireHolds:
		return a.expireHolds()
	case KindAdjust:
		return a.adjust(c)
	case KindRetire:
		return a.retire(c)
	case KindSetMember:
		a.membersChanged = true
		m := c.Member
		return Result{Code: api.OK}, a.tx.Bucket(bucketMembers).Put([]byte(m.ID), m.encode())
	case KindSetLevel:
		return a.setLevel(c)
	case KindRemoveMember:
		a.membersChanged = true
		return Result{Code: api.OK}, a.tx.Bucket(bucketMembers).Delete([]byte(c.Member.ID))
	}
	// Validate refuses unknown kinds and nested batches before we get here.
	return Result{}, fmt.Errorf("dispatch: unexpected kind %d", c.Kind)
}

func reject(code api.Code, format string, args ...any) Result {
	return Result{Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalid is the Result of a command that fails validation inside apply: always
// invalid_argument, whatever the error's type. Every replica applies the same entry, so a
// panic here would stop them all on it, and again on every replay of the log.
func invalid(err error) Result {
	var ae *api.Error
	if errors.As(err, &ae) {
		return Result{Code: api.InvalidArgument, Message: ae.Message} // the rule, without its code
	}
	return Result{Code: api.InvalidArgument, Message: err.Error()}
}

// fingerprint identifies a command apart from its time, which differs between retries. It
// is stored in the replicated dedup records, so its bytes are part of the state's meaning:
// exactly Encode's output with Time zeroed, forever (a replica hashing other bytes would
// diverge from one that does not).
func (a *applier) fingerprint(c Command) uint64 {
	c.Time = 0
	w := writer{b: append(a.scratch[:0], commandVersion)}
	_ = encodeInto(&w, c, true) // c passed Validate, so it encodes
	a.scratch = w.b
	h := fnv.New64a()
	h.Write(w.b)
	return h.Sum64()
}
