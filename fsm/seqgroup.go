package fsm

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Numbered records appended in log order — the exactly-once table and the ledger — are
// stored one value per log entry: the records the entry appended, keyed by the seq of its
// first (record i has seq key+i). A bbolt Put is a seek from the root of the bucket: one
// per deduction in each of the two was 17 % of the leader's CPU at 512 buyers.
//
// A value is one record (its first byte is the record's own version: format 2 stored every
// record alone) or a group: the group version, a count, then each record length-prefixed.
// A bound of max records keeps those from seqFloor on; a group goes when the floor has
// passed all of it.
type seqLayout struct {
	single byte // version byte of a record stored alone
	group  byte // version byte of a group; never a single record's
	name   string
}

// seqFloor is the lowest seq a bound of max records keeps once seq records were written.
func seqFloor(seq, max uint64) uint64 {
	if seq < max {
		return 0
	}
	return seq - max + 1
}

// split returns the records of a stored value. The slices alias v.
func (l seqLayout) split(v []byte) ([][]byte, error) {
	if len(v) > 0 && v[0] == l.single {
		return [][]byte{v}, nil
	}
	r, n, err := l.header(v)
	if err != nil {
		return nil, err
	}
	recs := make([][]byte, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		recs = append(recs, r.bytes(maxSeqRecord))
	}
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("%s group: %w", l.name, err)
	}
	return recs, nil
}

// maxSeqGroup bounds a group's count when reading (an entry that expires many holds moves
// more than MaxBatch units); count also refuses more records than bytes left.
const maxSeqGroup = 1 << 20

// maxSeqRecord bounds one record's encoding when reading a group: its strings are bounded
// by maxDecodeString, a result's message by 64 KiB.
const maxSeqRecord = 1 << 20

// first returns the first record of a stored value without splitting the rest. Garbage
// comes back as garbage (or nil), for the record's decoder to refuse.
func (l seqLayout) first(v []byte) []byte {
	if len(v) > 0 && v[0] == l.single {
		return v
	}
	r := reader{b: v}
	r.byte()
	r.uvarint()
	if rec := r.bytes(maxSeqRecord); r.err == nil {
		return rec
	}
	return nil
}

// count returns how many records a stored value holds, without splitting them.
func (l seqLayout) count(v []byte) (int, error) {
	if len(v) > 0 && v[0] == l.single {
		return 1, nil
	}
	_, n, err := l.header(v)
	return n, err
}

// header reads a group's version and count; the reader is left at its first record.
func (l seqLayout) header(v []byte) (*reader, int, error) {
	r := &reader{b: v}
	if ver := r.byte(); ver != l.group && r.err == nil {
		return nil, 0, fmt.Errorf("%s value version %d", l.name, ver)
	}
	n := r.count(maxSeqGroup)
	if n == 0 && r.err == nil {
		r.fail(fmt.Errorf("%s group of no records", l.name))
	}
	if r.err != nil {
		return nil, 0, fmt.Errorf("%s group: %w", l.name, r.err)
	}
	return r, n, nil
}

// each calls fn for every stored record from floor on, oldest first.
func (l seqLayout) each(b *bolt.Bucket, floor uint64, fn func(seq uint64, rec []byte) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		recs, err := l.split(v)
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

// seqReader finds records by seq, keeping the last group it split: walks through one
// SKU's history or one group's records mostly stay in it.
type seqReader struct {
	l    seqLayout
	b    *bolt.Bucket
	key  uint64
	recs [][]byte
}

// get returns the stored record seq, or nil if it is not stored. Records below a bound's
// floor may still be stored: the caller decides.
func (s *seqReader) get(seq uint64) ([]byte, error) {
	key, recs, err := s.locate(seq)
	if recs == nil {
		return nil, err
	}
	return recs[seq-key], nil
}

// locate returns the stored group that holds record seq, or nil recs if none does.
func (s *seqReader) locate(seq uint64) (uint64, [][]byte, error) {
	if s.recs == nil || seq < s.key || seq-s.key >= uint64(len(s.recs)) {
		c := s.b.Cursor()
		k, v := c.Seek(u64(seq))
		if k == nil || beUint64(k) != seq {
			if k, v = c.Prev(); k == nil {
				return 0, nil, nil
			}
		}
		if beUint64(k) > seq {
			return 0, nil, nil
		}
		recs, err := s.l.split(v)
		if err != nil {
			return 0, nil, err
		}
		s.key, s.recs = beUint64(k), recs
		if seq-s.key >= uint64(len(recs)) {
			return 0, nil, nil
		}
	}
	return s.key, s.recs, nil
}

// forget drops the reader's split group: its key was deleted.
func (s *seqReader) forget() { s.recs = nil }

// seqGroup collects the records one log entry appends, stored as one value at its end.
type seqGroup struct {
	l     seqLayout
	first uint64
	recs  [][]byte
}

func (g *seqGroup) add(seq uint64, rec []byte) {
	if len(g.recs) == 0 {
		g.first = seq
	}
	g.recs = append(g.recs, rec)
}

// get returns record seq if this entry appended it.
func (g *seqGroup) get(seq uint64) ([]byte, bool) {
	if n := uint64(len(g.recs)); n > 0 && seq >= g.first && seq-g.first < n {
		return g.recs[seq-g.first], true
	}
	return nil, false
}

// store writes the group under key (the arena's encoding of first) unless the floor has
// passed all of it, and empties it.
func (g *seqGroup) store(b *bolt.Bucket, floor uint64, key func(uint64) []byte) error {
	defer func() { g.recs = g.recs[:0] }()
	n := uint64(len(g.recs))
	if n == 0 || g.first+n <= floor {
		return nil
	}
	size := 1 + binary.MaxVarintLen64
	for _, rec := range g.recs {
		size += binary.MaxVarintLen64 + len(rec)
	}
	// Sized once: a group of a few hundred records outgrows the arena's chunks.
	w := writer{b: make([]byte, 0, size)}
	w.byte(g.l.group)
	w.uvarint(n)
	for _, rec := range g.recs {
		w.bytes(rec)
	}
	if err := b.Put(key(g.first), w.b); err != nil {
		return fmt.Errorf("put %s: %w", g.l.name, err)
	}
	return nil
}
