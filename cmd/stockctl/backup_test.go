package main

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// testBackup is a real backup stream: three SKUs created at log indexes 1-3.
func testBackup(t *testing.T) (stream []byte, hash string) {
	t.Helper()
	m, err := fsm.Open(filepath.Join(t.TempDir(), "state.db"), fsm.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i, sku := range []string{"cap", "tee", "tee-blue-xl"} {
		b, err := fsm.Encode(fsm.Command{Kind: fsm.KindCreateSKU, SKU: sku, Qty: 100, Time: 1731299000000})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.ApplyBatch([]fsm.Entry{{Index: uint64(i + 1), Data: b}}); err != nil {
			t.Fatal(err)
		}
	}
	_, sum, err := m.HashAt()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), hex.EncodeToString(sum[:])
}

// TestBackup_PrintsTheStateHashRestoreChecks: "stockctl backup" reads the file it wrote
// back and prints the state hash of the source at the backup's index, the one "stockd
// restore" prints; "backup inspect" describes the file offline (golden) and refuses a
// damaged one.
func TestBackup_PrintsTheStateHashRestoreChecks(t *testing.T) {
	stream, hash := testBackup(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/cluster" {
			// A single-group cluster's view: group 1, no placement.
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"leader":"n1","nodes":[],"groups":[{"id":1,"kind":"data"}],"placement_version":0}`))
			return
		}
		if r.URL.Path != "/v1/backup" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set(api.HeaderAppliedIndex, "3")
		w.Write(stream)
	}))
	defer srv.Close()
	t.Setenv(envEndpoints, strings.TrimPrefix(srv.URL, "http://"))
	t.Setenv(envToken, "")

	dir := t.TempDir()
	file := filepath.Join(dir, "flashstock.snap")
	out, errs, code := stockctl("backup", "--out", file)
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "state hash "+hash) || !strings.Contains(out, "state at log index 3") {
		t.Errorf("backup output lacks the state hash %s at index 3:\n%s", hash, out)
	}

	// Inspect from the backup's own dir, so the golden output names the file the same way
	// wherever the test runs.
	t.Chdir(dir)
	out, errs, code = stockctl("backup", "inspect", "flashstock.snap")
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, errs)
	}
	// The hash and the size are checked against the source here; the golden files hold
	// the layout, so that a change of the state's encoding does not touch them.
	size := strconv.Itoa(len(stream))
	if !strings.Contains(out, hash) || !strings.Contains(out, " "+size+" bytes") {
		t.Errorf("inspect lacks the hash or the size %s:\n%s", size, out)
	}
	layout := strings.NewReplacer(hash, "<state hash>", size, "<size>")
	checkGolden(t, "backup_inspect", layout.Replace(out))
	out, _, _ = stockctl("backup", "inspect", "flashstock.snap", "--json")
	if !strings.Contains(out, `"state_hash": "`+hash+`"`) || !strings.Contains(out, `"bytes": `+size) {
		t.Errorf("inspect --json lacks the hash or the size:\n%s", out)
	}
	checkGolden(t, "backup_inspect_json", layout.Replace(out))

	bad := bytes.Clone(stream)
	bad[len(bad)-1] ^= 0xff
	if err := os.WriteFile("bad.snap", bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := stockctl("backup", "inspect", "bad.snap"); code == 0 || !strings.Contains(errs, "checksum") {
		t.Errorf("a damaged backup: exit %d: %s", code, errs)
	}
}
