package fsm

import "fmt"

// The exactly-once table. Records live in bucketDedup keyed by a sequence number, so they
// are appended in log order and, since the log clock never runs backwards, the oldest is
// always first. Pruning is a function of the log alone (log time and count), so every
// replica prunes the same entries at the same index.

func (a *applier) lookupDedup(id string) (dedupRecord, bool, error) {
	seq, ok := a.pending[id]
	if !ok {
		if _, pruned := a.gone[id]; pruned {
			return dedupRecord{}, false, nil
		}
		if seq, ok = a.base.candidate(id); !ok {
			return dedupRecord{}, false, nil
		}
	}
	v := a.dedupB.Get(u64(seq))
	if v == nil {
		// The committed index may nominate (by hash) a record pruned earlier in this batch;
		// pruning goes oldest first, so such a seq lies below every record left.
		if first, _ := a.dedupB.Cursor().First(); first == nil || seq < beUint64(first) {
			return dedupRecord{}, false, nil
		}
		return dedupRecord{}, false, fmt.Errorf("dedup index names seq %d for %q but the record is missing", seq, id)
	}
	d, err := decodeDedup(v)
	if err != nil {
		return dedupRecord{}, false, err
	}
	// The base index nominates by hash: another id's record means this one is not there.
	return d, d.RequestID == id, nil
}

func (a *applier) remember(id string, fp uint64, res Result) error {
	a.meta.DedupSeq++
	res.Batch, res.Duplicate, res.Skipped = nil, false, false
	d := dedupRecord{RequestID: id, Time: a.meta.LogTime, Fingerprint: fp, Result: res}
	key := a.seqKey(a.meta.DedupSeq)
	d.encode(a.record())
	if err := a.dedupB.Put(key, a.done()); err != nil {
		return fmt.Errorf("put dedup: %w", err)
	}
	a.pending[id] = a.meta.DedupSeq
	return a.pruneDedupCount()
}

// prune forgets request ids older than the window, measured in log time.
func (a *applier) prune() error {
	horizon := a.meta.LogTime - a.meta.DedupWindow
	for {
		c := a.dedupB.Cursor()
		k, v := c.First()
		if k == nil {
			return nil
		}
		id, t, err := dedupHead(v)
		if err != nil {
			return err
		}
		if t >= horizon {
			return nil
		}
		if err := a.forget(c.Delete(), beUint64(k), id); err != nil {
			return err
		}
	}
}

// dedupHead reads a dedup record's request id and time without decoding its result: prune
// looks at the oldest record once per entry.
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

// pruneDedupCount keeps the table within DedupMax by forgetting the oldest.
func (a *applier) pruneDedupCount() error {
	if a.meta.DedupSeq <= a.meta.DedupMax {
		return nil // fewer records than the bound were ever written
	}
	c := a.dedupB.Cursor()
	k, v := c.First()
	if k == nil || a.meta.DedupSeq-beUint64(k)+1 <= a.meta.DedupMax {
		return nil
	}
	id, _, err := dedupHead(v)
	if err != nil {
		return err
	}
	return a.forget(c.Delete(), beUint64(k), id)
}

func (a *applier) forget(delErr error, seq uint64, id string) error {
	if delErr != nil {
		return fmt.Errorf("prune dedup: %w", delErr)
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
