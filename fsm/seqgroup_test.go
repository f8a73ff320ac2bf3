package fsm

import (
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// An entry's records are one stored value; the count bound forgets records inside a group,
// even records of the entry being applied, and drops a group once it has passed all of it.
func TestDedup_AnEntrysRecordsAreOneValue(t *testing.T) {
	r := newReplica(t, Options{DedupMax: 3})
	r.one(create("a", 100, 0))
	batch := func(ids ...string) Command {
		c := Command{Kind: KindBatch, Time: 1000}
		for _, id := range ids {
			c.Batch = append(c.Batch, deduct(id, "a", "u", 1))
		}
		return c
	}
	// Five records against a bound of three: the first two are forgotten before the entry
	// ends, and the group is stored with all five.
	res := r.one(batch("b1", "b2", "b3", "b4", "b5"))
	for i, sub := range res.Batch {
		if !sub.OK() || sub.Duplicate {
			t.Fatalf("deduction %d: %+v", i, sub)
		}
	}
	if n, keys := r.m.DedupLen(), dedupKeys(t, r.m); n != 3 || keys != 1 {
		t.Fatalf("after one entry of five: %d live records in %d values, want 3 in 1", n, keys)
	}
	if r.m.Remembers("b2") || !r.m.Remembers("b3") || !r.m.Remembers("b5") {
		t.Fatal("remembers b2, or forgot b3 or b5")
	}
	// A forgotten id is new again; a remembered one is a duplicate, also within one entry.
	res = r.one(batch("b1", "b4", "b1"))
	if res.Batch[0].Duplicate || !res.Batch[1].Duplicate || !res.Batch[2].Duplicate {
		t.Fatalf("b1 (forgotten), b4 (remembered), b1 again: %+v", res.Batch)
	}
	// One record more (b1): the floor is at b4, so the first group still holds two live
	// records and stays.
	if keys := dedupKeys(t, r.m); keys != 2 {
		t.Fatalf("%d stored values, want 2", keys)
	}
	r.one(deduct("c1", "a", "u", 1))
	r.one(deduct("c2", "a", "u", 1))
	if keys := dedupKeys(t, r.m); keys != 3 {
		t.Fatalf("%d stored values after the floor passed the first group, want 3", keys)
	}
	if r.m.Remembers("b5") || !r.m.Remembers("c2") || r.m.DedupLen() != 3 {
		t.Fatalf("b5 remembered or c2 forgotten (live %d)", r.m.DedupLen())
	}
	r.check(nil)

	// What reopening rebuilds agrees.
	m := r.reopen(Options{})
	defer m.Close()
	if err := m.checkDedupIndex(); err != nil {
		t.Fatal(err)
	}
}

// An entry's movements are one stored value; the ledger's retention counts movements, not
// values, and History stops at it although the group still holds older ones.
func TestLedger_AnEntrysMovementsAreOneValue(t *testing.T) {
	r := newReplica(t, Options{LedgerMax: 3})
	r.one(create("a", 100, 0)) // movement 1
	c := Command{Kind: KindBatch, Time: 1000}
	for _, id := range []string{"b1", "b2", "b3", "b4", "b5"} { // movements 2..6
		c.Batch = append(c.Batch, deduct(id, "a", "u", 1))
	}
	r.one(c)
	history := func(want ...string) {
		t.Helper()
		h, err := r.m.History("a", 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, mv := range h {
			got = append(got, mv.RequestID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("history %v, want %v", got, want)
		}
	}
	history("b3", "b4", "b5")
	if n := bucketKeys(t, r.m, bucketLedger); n != 1 {
		t.Fatalf("%d ledger values after the batch, want 1 (the create's went with the retention)", n)
	}
	r.one(deduct("c1", "a", "u", 1))
	history("b4", "b5", "c1")
	r.one(deduct("c2", "a", "u", 1))
	r.one(deduct("c3", "a", "u", 1))
	history("c1", "c2", "c3")
	if n := bucketKeys(t, r.m, bucketLedger); n != 3 {
		t.Fatalf("%d ledger values once the retention passed the batch, want 3", n)
	}
	r.check(nil)
}

// A state file of format 2 stored each record as its own value; this build reads it, and
// marks it format 3 at its next commit.
func TestDedup_ReadsFormat2Records(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	m, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{t: t, m: m}
	r.one(create("a", 100, 0))
	// Rewrite the state as format 2 left it: the create's movement and two exactly-once
	// records stored alone, the meta marked 2.
	err = m.db.Update(func(tx *bolt.Tx) error {
		l := tx.Bucket(bucketLedger)
		recs, err := ledgerLayout.split(l.Get(u64(1)))
		if err != nil || len(recs) != 1 {
			return fmt.Errorf("the create's movement: %d records, %v", len(recs), err)
		}
		if err := l.Put(u64(1), append([]byte(nil), recs[0]...)); err != nil {
			return err
		}
		b := tx.Bucket(bucketDedup)
		for i, id := range []string{"old-1", "old-2"} {
			d := dedupRecord{RequestID: id, Time: 900, Fingerprint: 1,
				Result: Result{Code: "ok", SKU: SKU{SKU: "a", Available: 100 - int64(i) - 1}}}
			var w writer
			d.encode(&w)
			if err := b.Put(u64(uint64(i+1)), w.b); err != nil {
				return err
			}
		}
		md := m.meta
		md.DedupSeq = 2
		v := md.encode()
		v[0] = 2
		return tx.Bucket(bucketMeta).Put(metaKey, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m, err = Open(path, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r = &replica{t: t, m: m, index: 1}
	if !m.Remembers("old-2") || m.DedupLen() != 2 {
		t.Fatalf("format-2 records: remembers old-2 %v, live %d", m.Remembers("old-2"), m.DedupLen())
	}
	if err := m.checkDedupIndex(); err != nil {
		t.Fatal(err)
	}
	r.one(deduct("new-1", "a", "u", 1))
	err = m.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(metaKey); v[0] != formatVersion {
			t.Errorf("meta still marked format %d after a commit", v[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.DedupLen() != 3 || !m.Remembers("old-1") || !m.Remembers("new-1") {
		t.Fatalf("after a new record: live %d", m.DedupLen())
	}
	if h, err := m.History("a", 10); err != nil || len(h) != 2 || h[0].Kind != MoveCreate || h[1].RequestID != "new-1" {
		t.Fatalf("history over a format-2 movement and a new one: %+v, %v", h, err)
	}
	r.check(nil)
}

func dedupKeys(t *testing.T, m *Machine) int { return bucketKeys(t, m, bucketDedup) }

func bucketKeys(t *testing.T, m *Machine, bucket []byte) int {
	t.Helper()
	n := 0
	if err := m.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// A stored value that is not a record or a well-formed group is refused, never misread.
// count reads only the header, so only a bad header fails it.
func TestSeqLayout_RefusesMalformedValues(t *testing.T) {
	for _, c := range []struct {
		v         []byte
		badHeader bool
	}{
		{nil, true},
		{[]byte{9}, true},                // neither a record's version nor a group's
		{[]byte{2, 0}, true},             // a group of no records
		{[]byte{2, 2, 1, 'x'}, false},    // two records promised, one there
		{[]byte{2, 1, 5, 'x'}, false},    // a record longer than the bytes left
		{[]byte{2, 1, 1, 'x', 0}, false}, // a trailing byte
	} {
		if recs, err := dedupLayout.split(c.v); err == nil {
			t.Errorf("split(%v) = %q, want an error", c.v, recs)
		}
		if _, err := dedupLayout.count(c.v); (err != nil) != c.badHeader {
			t.Errorf("count(%v): error %v, want one: %v", c.v, err, c.badHeader)
		}
	}
	recs, err := dedupLayout.split([]byte{2, 2, 1, 'x', 2, 'y', 'z'})
	if err != nil || len(recs) != 2 || string(recs[0]) != "x" || string(recs[1]) != "yz" {
		t.Fatalf("a well-formed group: %q, %v", recs, err)
	}
	if n, err := ledgerLayout.count([]byte{2, 'a'}); n != 1 || err != nil {
		t.Fatalf("a movement stored alone counts %d, %v", n, err)
	}
}
