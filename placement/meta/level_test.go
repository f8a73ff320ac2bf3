package meta_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"testing"

	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

// The level gates proposals, not apply: a pin in the log applies at level 0 too, on every
// replica alike, as the build that introduced pins (which wrote them without a level)
// applied it; refusing it here would give a replica of this build a placement other than
// that build's on the same log. Once a set_level entry raises the level, pins apply as
// before, and the level travels in snapshots.
func TestApply_PinsApplyAtAnyLevelAndTheLevelTravels(t *testing.T) {
	a, b := bootstrapped(t), bootstrapped(t) // version 1, level 0
	p := a.Placement()
	g := p.Groups[1]
	pin := encode(t, meta.Command{Kind: meta.PinLeader, From: 1, Lead: &meta.Lead{Group: g.ID, Node: g.Replicas[0].Node}})
	for _, m := range []*meta.Machine{a, b} {
		if res := m.Apply(2, pin); res.Err != nil || res.Version != 2 || m.Level() != 0 {
			t.Fatalf("a pin at level 0: %v, version %d, level %d: want it applied at version 2, level 0", res.Err, res.Version, m.Level())
		}
		if m.Placement().Groups[1].PinnedLeader != g.Replicas[0].Node {
			t.Fatalf("after the pin at level 0: pinned leader %q, want %q", m.Placement().Groups[1].PinnedLeader, g.Replicas[0].Node)
		}
	}
	if !bytes.Equal(snapshot(t, a), snapshot(t, b)) {
		t.Fatal("two replicas applying the same entry differ")
	}
	if bytes.Contains(snapshot(t, a), []byte(`"level"`)) {
		t.Error("a snapshot at level 0 names a level: builds before levels could not read it")
	}

	unpin := encode(t, meta.Command{Kind: meta.Unpin, From: 2})
	raise := encode(t, meta.Command{Kind: meta.SetLevel, Level: meta.ApplyLevel})
	for _, m := range []*meta.Machine{a, b} {
		if res := m.Apply(3, raise); res.Err != nil || res.Version != 2 || m.Level() != meta.ApplyLevel {
			t.Fatalf("set_level: %v, version %d, level %d", res.Err, res.Version, m.Level())
		}
		if res := m.Apply(4, unpin); res.Err != nil || res.Version != 3 {
			t.Fatalf("an unpin at level %d: %v, version %d: want it applied at version 3", m.Level(), res.Err, res.Version)
		}
	}
	r := meta.New()
	if err := r.Restore(snapshot(t, a)); err != nil || r.Level() != meta.ApplyLevel {
		t.Fatalf("restored: level %d, %v; want %d", r.Level(), err, meta.ApplyLevel)
	}
	if !bytes.Equal(snapshot(t, r), snapshot(t, b)) {
		t.Error("a restored replica's snapshot differs from one that applied the log")
	}
}

// A log raised past this build's level stops the replica, as an entry it cannot decode
// does: applying on under older rules than the others would diverge. A snapshot at such a
// level is refused and restores nothing.
func TestApply_LevelAboveThisBuildStops(t *testing.T) {
	m := bootstrapped(t)
	res := m.Apply(2, encode(t, meta.Command{Kind: meta.SetLevel, Level: meta.ApplyLevel + 1}))
	if rule(t, res.Err) != placement.ErrUnknownCommand || m.Err() == nil || m.Applied() != 1 || m.Level() != 0 {
		t.Fatalf("set_level %d: %v, stopped %v, applied %d, level %d: want the replica stopped before it", meta.ApplyLevel+1, res.Err, m.Err(), m.Applied(), m.Level())
	}

	body := []byte(`{"applied":1,"placement":null,"level":` + strconv.Itoa(meta.ApplyLevel+1) + `}`)
	b := append([]byte("FSMP\x01"), body...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	r := meta.New()
	if err := r.Restore(b); rule(t, err) != placement.ErrSnapshot || r.Applied() != 0 {
		t.Fatalf("restore of a snapshot at level %d: %v, applied %d: want it refused", meta.ApplyLevel+1, err, r.Applied())
	}
}
