package meta_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"testing"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

// A restored machine holds what the snapshot's did, answers the same to the next
// entries, and snapshots to the same bytes.
func TestSnapshot_RoundTrips(t *testing.T) {
	for _, m := range []*meta.Machine{meta.New(), bootstrappedPlusN4(t)} {
		snap := snapshot(t, m)
		r := meta.New()
		if err := r.Restore(snap); err != nil {
			t.Fatalf("restore: %v", err)
		}
		if r.Applied() != m.Applied() || r.Version() != m.Version() {
			t.Errorf("restored at index %d version %d, want %d and %d", r.Applied(), r.Version(), m.Applied(), m.Version())
		}
		if got := snapshot(t, r); !bytes.Equal(got, snap) {
			t.Errorf("the restored machine snapshots to other bytes")
		}
		next := encode(t, meta.Command{Kind: meta.SetNodeState, From: 2, NodeID: "n4", State: api.NodeDraining})
		a, b := m.Apply(m.Applied()+1, next), r.Apply(r.Applied()+1, next)
		if a.Version != b.Version || rule(t, a.Err) != rule(t, b.Err) {
			t.Errorf("the next entry: original %+v, restored %+v", a, b)
		}
		if !bytes.Equal(snapshot(t, m), snapshot(t, r)) {
			t.Errorf("original and restored machines parted on the next entry")
		}
	}
}

// A corrupt snapshot, one of another format and one that holds what this build would not
// write are refused, and the machine keeps its state.
func TestRestore_RefusesBadSnapshots(t *testing.T) {
	good := snapshot(t, bootstrappedPlusN4(t))
	// resum gives body a well-formed frame: only the checks past the checksum can refuse it.
	resum := func(format byte, body string) []byte {
		b := append([]byte("FSMP"), format)
		b = append(b, body...)
		return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	}
	body := string(good[5 : len(good)-4])
	bad := map[string][]byte{
		"empty":                {},
		"truncated":            good[:len(good)-1],
		"no magic":             append([]byte("XXXX"), good[4:]...),
		"a newer format":       resum(2, body),
		"not json":             resum(1, "{"),
		"an unknown field":     resum(1, body[:len(body)-1]+`,"extra":1}`),
		"an invalid placement": resum(1, `{"applied":3,"placement":{"version":0,"slot_count":1024,"nodes":null,"groups":null}}`),
		"a live leader":        resum(1, string(bytes.Replace([]byte(body), []byte(`"kind":"data",`), []byte(`"kind":"data","leader":"n1",`), 1))),
	}
	for i := range good {
		flipped := bytes.Clone(good)
		flipped[i] ^= 0x10
		bad[fmt.Sprintf("byte %d flipped", i)] = flipped
	}
	for name, snap := range bad {
		m := bootstrapped(t)
		before := snapshot(t, m)
		if err := m.Restore(snap); !errors.Is(err, placement.ErrSnapshot) {
			t.Errorf("%s: restore = %v, want snapshot", name, err)
		}
		if !bytes.Equal(snapshot(t, m), before) {
			t.Errorf("%s: a refused snapshot changed the machine", name)
		}
	}
}

// A snapshot a build before pins wrote (testdata, kept byte for byte) is restored, and
// this build snapshots the same state to the same bytes: the pins are new fields that
// are absent when unset, so old snapshots need no new format.
func TestRestore_ReadsSnapshotsFromBeforePins(t *testing.T) {
	old, err := os.ReadFile("testdata/snapshot-format1-before-pins.bin")
	if err != nil {
		t.Fatal(err)
	}
	m := meta.New()
	if err := m.Restore(old); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if m.Applied() != 3 || m.Version() != 3 {
		t.Errorf("restored at index %d version %d, want 3 and 3", m.Applied(), m.Version())
	}
	if got := snapshot(t, m); !bytes.Equal(got, old) {
		t.Errorf("re-snapshot differs:\n got %s\nwant %s", got, old)
	}
}
