package fsm

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The exactly-once table. Records are numbered by a sequence, so they are appended in log
// order and, since the log clock never runs backwards, the oldest is always first. Pruning
// is a function of the log alone (log time and count), so every replica prunes the same
// entries at the same index.
//
// A log entry's records are stored together, as one bbolt value keyed by the seq of its
// first record (record i has seq key+i): a Put is a seek from the root of the bucket and
// cost the leader ~10 % of its CPU when each deduction made one. A value is one record
// (dedup record version 1, as format 2 wrote them) or a group (dedupGroupVersion). All
// records of an entry share its log time, so pruning by time takes whole groups; the count
// bound forgets records one by one below the floor (dedupFloor), and a group goes when
// the floor has passed all of it.

const dedupGroupVersion = 2

// dedupFloor is the lowest seq the count bound keeps.
func dedupFloor(md *meta) uint64 {
	if md.DedupSeq < md.DedupMax {
		return 0
	}
	return md.DedupSeq - md.DedupMax + 1
}

// dedupRecords splits a stored value into its records' encodings.
func dedupRecords(v []byte) ([][]byte, error) {
	if len(v) > 0 && v[0] == 1 {
		return [][]byte{v}, nil
	}
	r := reader{b: v}
	if ver := r.byte(); ver != dedupGroupVersion && r.err == nil {
		return nil, fmt.Errorf("dedup value version %d", ver)
	}
	n := r.count(MaxBatch)
	recs := make([][]byte, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		recs = append(recs, r.bytes(maxDedupRecord))
	}
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("dedup group: %w", err)
	}
	return recs, nil
}

// firstDedupRecord returns the first record of a stored value without splitting the rest:
// prune looks at the oldest once per entry. Garbage comes back as garbage, for dedupHead
// to refuse.
func firstDedupRecord(v []byte) []byte {
	if len(v) > 0 && v[0] == 1 {
		return v
	}
	r := reader{b: v}
	r.byte()
	r.uvarint()
	if rec := r.bytes(maxDedupRecord); r.err == nil {
		return rec
	}
	return nil
}

// maxDedupRecord bounds one record's encoding when reading a group: its strings are bounded
// by maxDecodeString, the message by 64 KiB.
const maxDedupRecord = 1 << 20

// eachDedup calls fn for every stored record at or above the floor, oldest first.
func eachDedup(c *bolt.Cursor, floor uint64, fn func(seq uint64, rec []byte) error) error {
	for k, v := c.First(); k != nil; k, v = c.Next() {
		recs, err := dedupRecords(v)
		if err != nil {
			return err
		}
		for i, rec := range recs {
			if seq := beUint64(k) + uint64(i); seq >= floor {
				if err := fn(seq, rec); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// findDedup returns the stored record seq, if it is stored.
func findDedup(c *bolt.Cursor, seq uint64) ([]byte, error) {
	k, v := c.Seek(u64(seq))
	if k == nil || beUint64(k) != seq {
		if k, v = c.Prev(); k == nil {
			return nil, nil
		}
	}
	first := beUint64(k)
	if first > seq {
		return nil, nil
	}
	recs, err := dedupRecords(v)
	if err != nil || seq-first >= uint64(len(recs)) {
		return nil, err
	}
	return recs[seq-first], nil
}

func (a *applier) lookupDedup(id string) (dedupRecord, bool, error) {
	seq, ok := a.pending[id]
	if !ok {
		if _, pruned := a.gone[id]; pruned {
			return dedupRecord{}, false, nil
		}
		if seq, ok = a.base.candidate(id); !ok || seq < dedupFloor(a.meta) {
			return dedupRecord{}, false, nil
		}
	}
	rec, err := a.dedupRecord(seq)
	if err != nil {
		return dedupRecord{}, false, err
	}
	if rec == nil {
		// The committed index may nominate (by hash) a record pruned earlier in this batch;
		// pruning goes oldest first, so such a seq lies below every record left.
		if first, _ := a.dedupB.Cursor().First(); first == nil || seq < beUint64(first) {
			return dedupRecord{}, false, nil
		}
		return dedupRecord{}, false, fmt.Errorf("dedup index names seq %d for %q but the record is missing", seq, id)
	}
	d, err := decodeDedup(rec)
	if err != nil {
		return dedupRecord{}, false, err
	}
	// The base index nominates by hash: another id's record means this one is not there.
	return d, d.RequestID == id, nil
}

// dedupRecord returns record seq from the entry being applied or from the bucket.
func (a *applier) dedupRecord(seq uint64) ([]byte, error) {
	if n := uint64(len(a.group)); n > 0 && seq >= a.groupFirst {
		if seq-a.groupFirst < n {
			return a.group[seq-a.groupFirst], nil
		}
		return nil, nil
	}
	return findDedup(a.dedupB.Cursor(), seq)
}

func (a *applier) remember(id string, fp uint64, res Result) error {
	a.meta.DedupSeq++
	res.Batch, res.Duplicate, res.Skipped = nil, false, false
	d := dedupRecord{RequestID: id, Time: a.meta.LogTime, Fingerprint: fp, Result: res}
	if len(a.group) == 0 {
		a.groupFirst = a.meta.DedupSeq
	}
	d.encode(a.record())
	a.group = append(a.group, a.done())
	a.pending[id] = a.meta.DedupSeq
	return a.pruneDedupCount()
}

// storeDedupGroup writes the records the entry remembered, as one value, unless the count
// bound has already passed all of them.
func (a *applier) storeDedupGroup() error {
	defer func() { a.group = a.group[:0] }()
	n := uint64(len(a.group))
	if n == 0 || a.groupFirst+n <= dedupFloor(a.meta) {
		return nil
	}
	size := 1 + binary.MaxVarintLen64
	for _, rec := range a.group {
		size += binary.MaxVarintLen64 + len(rec)
	}
	// Sized once: a group of a few hundred records outgrows the arena's chunks.
	w := writer{b: make([]byte, 0, size)}
	w.byte(dedupGroupVersion)
	w.uvarint(n)
	for _, rec := range a.group {
		w.bytes(rec)
	}
	if err := a.dedupB.Put(a.seqKey(a.groupFirst), w.b); err != nil {
		return fmt.Errorf("put dedup: %w", err)
	}
	return nil
}

// prune forgets request ids older than the window, measured in log time: whole groups,
// whose records share one time.
func (a *applier) prune() error {
	horizon := a.meta.LogTime - a.meta.DedupWindow
	for {
		c := a.dedupB.Cursor()
		k, v := c.First()
		if k == nil {
			return nil
		}
		_, t, err := dedupHead(firstDedupRecord(v))
		if err != nil {
			return err
		}
		if t >= horizon {
			return nil
		}
		recs, err := dedupRecords(v)
		if err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return fmt.Errorf("prune dedup: %w", err)
		}
		a.oldest = nil
		floor := dedupFloor(a.meta)
		for i, rec := range recs {
			if seq := beUint64(k) + uint64(i); seq >= floor { // below it, forgotten already
				if err := a.forgetRecord(seq, rec); err != nil {
					return err
				}
			}
		}
	}
}

// dedupHead reads a dedup record's request id and time without decoding its result.
func dedupHead(b []byte) (string, int64, error) {
	r := reader{b: b}
	if v := r.byte(); v != 1 && r.err == nil {
		return "", 0, fmt.Errorf("dedup record version %d", v)
	}
	id, t := r.string(maxDecodeString), r.varint()
	if r.err != nil {
		return "", 0, fmt.Errorf("dedup record: %w", r.err)
	}
	return id, t, nil
}

// pruneDedupCount keeps the table within DedupMax: the record the floor just passed is
// forgotten, and the oldest group goes once the floor has passed all of it.
func (a *applier) pruneDedupCount() error {
	floor := dedupFloor(a.meta)
	if floor == 0 {
		return nil // fewer records than the bound were ever written
	}
	passed := floor - 1
	c := a.dedupB.Cursor()
	k, v := c.First()
	if k != nil && beUint64(k) <= passed { // else pruned by time already, or never stored
		// Once the table is full this runs for every record remembered, each time one
		// record further into the same oldest group: split it once, not once per record.
		// Its bytes stay valid for the transaction, deleted or not.
		if a.oldestKey != beUint64(k) || a.oldest == nil {
			recs, err := dedupRecords(v)
			if err != nil {
				return err
			}
			a.oldestKey, a.oldest = beUint64(k), recs
		}
		recs := a.oldest
		if i := passed - beUint64(k); i < uint64(len(recs)) {
			if err := a.forgetRecord(passed, recs[i]); err != nil {
				return err
			}
		}
		if beUint64(k)+uint64(len(recs)) <= floor {
			if err := c.Delete(); err != nil {
				return fmt.Errorf("prune dedup: %w", err)
			}
			a.oldest = nil
		}
		return nil
	}
	if n := uint64(len(a.group)); n > 0 && a.groupFirst <= passed && passed < a.groupFirst+n {
		return a.forgetRecord(passed, a.group[passed-a.groupFirst])
	}
	return nil
}

func (a *applier) forgetRecord(seq uint64, rec []byte) error {
	id, _, err := dedupHead(rec)
	if err != nil {
		return err
	}
	if a.pending[id] == seq {
		delete(a.pending, id)
	}
	// Keep the first seq pruned: records go oldest first, so it is the one the committed
	// index may hold; later ones (the id used and pruned again within this batch) never
	// reached it.
	if _, seen := a.gone[id]; !seen {
		a.gone[id] = seq
	}
	return nil
}
