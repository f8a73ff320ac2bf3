package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/internal/version"
)

// TestVersion_ClientAndEachMember: the first line is this binary's build, then a table of
// each member's version as the cluster reports it (golden; a member that does not answer
// shows "-"); --json carries the same.
func TestVersion_ClientAndEachMember(t *testing.T) {
	fakeCluster(t)
	out, errs, code := stockctl("version")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	first, members, _ := strings.Cut(out, "\n")
	if want := "stockctl " + version.Get().String(); first != want {
		t.Errorf("first line %q, want %q", first, want)
	}
	checkGolden(t, "version_members", members)

	out, errs, code = stockctl("version", "--json")
	var rep versionReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("--json: exit %d, %q %s", code, out, errs)
	}
	if rep.Client != version.Get() || len(rep.Members) != 3 || rep.Members[0].Version != "v1.4.0" || rep.Members[2].Version != "" {
		t.Errorf("--json: %+v", rep)
	}
}

// TestVersion_WithoutACluster: no node answering is not a failure of "version": the
// client's version is printed, and why the members' are not.
func TestVersion_WithoutACluster(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	out, errs, code := stockctl("version", "--endpoints", addr, "--timeout", "1s")
	if code != 0 {
		t.Errorf("exit %d, want 0: %s", code, errs)
	}
	if !strings.HasPrefix(out, "stockctl "+version.Get().String()) || !strings.Contains(errs, "did not answer") {
		t.Errorf("stdout %q, stderr %q", out, errs)
	}
}
