package fsm

import "fmt"

// The exactly-once table. Records are numbered by a sequence, so they are appended in log
// order and, since the log clock never runs backwards, the oldest is always first. Pruning
// is a function of the log alone (log time and count), so every replica prunes the same
// entries at the same index.
//
// An entry's records are one stored value (seqgroup.go) and share its log time, so pruning
// by time takes whole groups; the count bound forgets records one by one below its floor,
// also records of the entry being applied, and drops a group once it has passed all of it.

var dedupLayout = seqLayout{single: 1, group: 2, name: "dedup"}

// dedupFloor is the lowest seq the count bound keeps.
func dedupFloor(md *meta) uint64 { return seqFloor(md.DedupSeq, md.DedupMax) }

// lookupDedup finds the live record of id (h: its hash in the index).
func (a *applier) lookupDedup(id string, h uint64) (dedupRecord, bool, error) {
	seq, ok := a.ids.candidate(id, h)
	if !ok {
		return dedupRecord{}, false, nil
	}
	rec, ok := a.dedupNew.get(seq)
	if !ok {
		var err error
		if rec, err = a.dedupOld.get(seq); err != nil {
			return dedupRecord{}, false, err
		}
	}
	if rec == nil || seq < dedupFloor(a.meta) {
		// The index forgets a record when the table does (forgetRecord), in the same step.
		return dedupRecord{}, false, fmt.Errorf("dedup index names seq %d for %q but the table does not hold it", seq, id)
	}
	d, err := decodeDedup(rec)
	if err != nil {
		return dedupRecord{}, false, err
	}
	// The index nominates by hash: another id's record means this one is not there.
	return d, d.RequestID == id, nil
}

func (a *applier) remember(id string, h, fp uint64, res Result) error {
	a.meta.DedupSeq++
	res.Batch, res.Duplicate, res.Skipped = nil, false, false
	d := dedupRecord{RequestID: id, Time: a.meta.LogTime, Fingerprint: fp, Result: res}
	d.encode(a.record())
	a.dedupNew.add(a.meta.DedupSeq, a.done())
	a.ids.add(id, h, a.meta.DedupSeq)
	return a.pruneDedupCount()
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
		_, t, err := dedupHead(dedupLayout.first(v))
		if err != nil {
			return err
		}
		if t >= horizon {
			return nil
		}
		recs, err := dedupLayout.split(v)
		if err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return fmt.Errorf("prune dedup: %w", err)
		}
		a.dedupOld.forget()
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
	if v := r.byte(); v != 1 && v != dedupRetiredVersion && r.err == nil {
		return "", 0, fmt.Errorf("dedup record version %d", v)
	}
	id, t := r.string(maxDecodeString), r.varint()
	if r.err != nil {
		return "", 0, fmt.Errorf("dedup record: %w", r.err)
	}
	return id, t, nil
}

// pruneDedupCount keeps the table within DedupMax: the record the floor just passed is
// forgotten, and its group goes once the floor has passed all of it. Once the table is
// full this runs for every record remembered, one record further into the same oldest
// group each time, which the reader keeps split.
func (a *applier) pruneDedupCount() error {
	floor := dedupFloor(a.meta)
	if floor == 0 {
		return nil // fewer records than the bound were ever written
	}
	passed := floor - 1
	if rec, ok := a.dedupNew.get(passed); ok {
		return a.forgetRecord(passed, rec)
	}
	key, recs, err := a.dedupOld.locate(passed)
	if recs == nil { // pruned by time already, or never stored
		return err
	}
	if err := a.forgetRecord(passed, recs[passed-key]); err != nil {
		return err
	}
	if key+uint64(len(recs)) <= floor {
		if err := a.dedupB.Delete(u64(key)); err != nil {
			return fmt.Errorf("prune dedup: %w", err)
		}
		a.dedupOld.forget()
	}
	return nil
}

func (a *applier) forgetRecord(seq uint64, rec []byte) error {
	id, _, err := dedupHead(rec)
	if err != nil {
		return err
	}
	a.ids.remove(id, a.ids.hash(id), seq)
	return nil
}
