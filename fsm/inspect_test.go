package fsm

import (
	"bytes"
	"errors"
	"testing"
)

// TestInspectSnapshot_DescribesWhatRestoreWouldAdopt: the hash and index a backup is
// inspected with are those of a replica restored from it, and a damaged stream is refused
// as Restore refuses it.
func TestInspectSnapshot_DescribesWhatRestoreWouldAdopt(t *testing.T) {
	src := busyReplica(t)
	snap := snapshotBytes(t, src.m)
	info, err := InspectSnapshot(bytes.NewReader(snap), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	skus, err := src.m.ListSKUs("", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := SnapshotInfo{AppliedIndex: src.m.AppliedIndex(), StateHash: src.hash(), Format: formatVersion, SKUs: len(skus), Bytes: int64(len(snap))}
	if info != want {
		t.Errorf("inspect = %+v\nwant      %+v", info, want)
	}

	bad := bytes.Clone(snap)
	bad[len(bad)/2] ^= 0xff
	if _, err := InspectSnapshot(bytes.NewReader(bad), t.TempDir()); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("a damaged stream: %v, want ErrBadSnapshot", err)
	}
}
