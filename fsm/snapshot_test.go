package fsm

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/flashstock/flashstock/api"
)

func busyReplica(t *testing.T) *replica {
	r := newReplica(t, Options{})
	r.apply(create("a", 50, 3), create("b", 5, 0))
	r.apply(deduct("d1", "a", "u1", 2), deduct("d2", "b", "u2", 5), deduct("d3", "b", "u2", 1))
	r.apply(reserve("r1", "o1", "u1", 100, 1000, Line{"a", 1}, Line{"b", 1}))
	r.apply(reserve("r2", "o2", "u3", 100, 1000, Line{"a", 3}), orderCmd(KindConfirm, "c2", "o2", 1001))
	return r
}

func snapshotBytes(t *testing.T, m *Machine) []byte {
	t.Helper()
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSnapshot_RestoreGivesSameState(t *testing.T) {
	src := busyReplica(t)
	snap := snapshotBytes(t, src.m)
	dst := newReplica(t, Options{DedupWindow: 1}) // retention comes from the snapshot, not these options
	dst.apply(create("other", 1, 0))
	if err := dst.m.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if dst.hash() != src.hash() {
		t.Fatal("restored state hash differs")
	}
	if dst.m.AppliedIndex() != src.m.AppliedIndex() {
		t.Fatalf("applied %d, want %d", dst.m.AppliedIndex(), src.m.AppliedIndex())
	}
	if err := dst.m.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	// The exactly-once table came along: an old request id answers with its first result.
	dst.index = dst.m.AppliedIndex()
	if res := dst.one(deduct("d3", "b", "u2", 1)); res.Code != api.SoldOut || !res.Duplicate {
		t.Fatalf("old request after restore: %+v", res)
	}
	// And both replicas go on identically.
	src.one(deduct("d3", "b", "u2", 1))
	if dst.hash() != src.hash() {
		t.Fatal("replicas diverged after restore")
	}
}

func TestSnapshot_TakenBeforeLaterApplies(t *testing.T) {
	r := busyReplica(t)
	before := r.hash()
	s, err := r.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r.apply(deduct("later", "a", "u9", 1)) // applies go on while the snapshot is open
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	s.Release()
	dst := newReplica(t, Options{})
	if err := dst.m.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if dst.hash() != before {
		t.Fatal("snapshot does not show the state at the time it was taken")
	}
}

func TestRestore_RefusesBadStreamsAndKeepsOldState(t *testing.T) {
	snap := snapshotBytes(t, busyReplica(t).m)
	flip := func(i int) []byte {
		b := bytes.Clone(snap)
		b[i] ^= 0x40
		return b
	}
	cases := map[string][]byte{
		"empty":              nil,
		"header only":        snap[:24],
		"truncated body":     snap[:len(snap)/2],
		"missing checksum":   snap[:len(snap)-32],
		"corrupt body":       flip(24 + 4096 + 100),
		"corrupt checksum":   flip(len(snap) - 1),
		"wrong magic":        flip(0),
		"wrong index header": flip(15),
		"trailing data":      append(bytes.Clone(snap), 1),
	}
	for name, stream := range cases {
		t.Run(name, func(t *testing.T) {
			dst := newReplica(t, Options{})
			dst.apply(create("mine", 7, 0))
			before := dst.hash()
			err := dst.m.Restore(bytes.NewReader(stream))
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("err %v, want ErrBadSnapshot", err)
			}
			if dst.hash() != before || dst.sku("mine").Available != 7 {
				t.Fatal("failed restore changed the state")
			}
			dst.apply(deduct("still", "mine", "u", 1)) // and the replica still works
			leftovers, _ := filepath.Glob(dst.m.Path() + ".restore-*")
			if len(leftovers) != 0 {
				t.Fatalf("temporary files left: %v", leftovers)
			}
		})
	}
}

func TestReopen_KeepsAppliedIndexAndSkipsOldEntries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	m, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var log []Entry
	for i, c := range []Command{create("a", 10, 0), deduct("d1", "a", "u", 1), deduct("d2", "a", "u", 2)} {
		b, _ := Encode(c)
		log = append(log, Entry{Index: uint64(i + 1), Data: b})
	}
	if _, err := m.ApplyBatch(log); err != nil {
		t.Fatal(err)
	}
	want, _ := m.StateHash()
	m.Close()

	m, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.AppliedIndex() != 3 {
		t.Fatalf("applied %d after reopen, want 3", m.AppliedIndex())
	}
	// raft replays the log after a restart: nothing may be applied twice.
	res, err := m.ApplyBatch(log)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !r.Skipped {
			t.Fatalf("entry %d re-applied: %+v", i+1, r)
		}
	}
	if got, _ := m.StateHash(); got != want {
		t.Fatal("replaying old entries changed the state")
	}
	s, _ := m.GetSKU("a")
	if s.Sold != 3 {
		t.Fatalf("sold %d, want 3", s.Sold)
	}
	// A batch straddling the applied index applies only the new part.
	b, _ := Encode(deduct("d3", "a", "u", 1))
	res, err = m.ApplyBatch(append(log[2:], Entry{Index: 4, Data: b}))
	if err != nil || !res[0].Skipped || res[1].Skipped || res[1].Code != api.OK {
		t.Fatalf("straddling batch: %+v %v", res, err)
	}
}

func TestDedup_PrunedByLogTimeAndCount(t *testing.T) {
	r := newReplica(t, Options{DedupWindow: 1000_000_000, DedupMax: 3}) // 1 s window
	r.one(create("a", 100, 0))
	at := func(c Command, ms int64) Command { c.Time = ms; return c }
	for i := 0; i < 5; i++ {
		r.one(at(deduct("d"+itoa(i), "a", "u", 1), 1000))
	}
	if n := r.m.DedupLen(); n != 3 {
		t.Fatalf("table holds %d, bound 3", n)
	}
	if res := r.one(at(deduct("d4", "a", "u", 1), 1000)); !res.Duplicate {
		t.Fatal("recent id forgotten")
	}
	if res := r.one(at(deduct("d0", "a", "u", 1), 1000)); res.Duplicate {
		t.Fatal("id beyond the count bound still remembered")
	}
	// Log time moves on past the window: everything older is forgotten at once.
	r.one(expire(1000 + 1001))
	if n := r.m.DedupLen(); n != 0 {
		t.Fatalf("table holds %d after the window passed", n)
	}
}

// A replica restoring an older snapshot of its own state forgets what it cached and
// staged after it: reads and the next commands see the snapshot's numbers.
func TestRestore_OlderSnapshotOverCachedState(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		r := newReplica(t, Options{DeferCommit: deferred})
		r.apply(create("a", 10, 0))
		r.apply(deduct("d1", "a", "u", 1))
		snap := snapshotBytes(t, r.m)
		at := r.index
		r.apply(deduct("d2", "a", "u", 4), create("later", 5, 0))
		if got := r.sku("a").Available; got != 5 {
			t.Fatalf("deferred=%v: available %d before the restore, want 5", deferred, got)
		}
		if err := r.m.Restore(bytes.NewReader(snap)); err != nil {
			t.Fatal(err)
		}
		r.index = at
		if got := r.sku("a").Available; got != 9 {
			t.Fatalf("deferred=%v: available %d after restoring the snapshot, want 9", deferred, got)
		}
		if res := r.one(deduct("d3", "a", "u", 1)); res.Code != api.OK || res.SKU.Available != 8 {
			t.Fatalf("deferred=%v: deduct after restore: %+v, want 8 remaining", deferred, res)
		}
		wantCode(t, r.one(create("later", 5, 0)), api.OK)
		if err := r.m.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := r.m.CheckInvariants(); err != nil {
			t.Fatalf("deferred=%v: %v", deferred, err)
		}
	}
}
