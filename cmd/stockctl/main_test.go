package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun_PaxosDemoIsDeterministic(t *testing.T) {
	args := []string{"paxos", "demo", "--mode", "single", "--drop", "0.1", "--seed", "7"}
	var a, b, errs bytes.Buffer
	if code := run(args, &a, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	run(args, &b, &errs)
	if a.String() != b.String() || !strings.Contains(a.String(), "chosen:") {
		t.Fatalf("same flags and seed gave different output, or no decision:\n%s", a.String())
	}
}

func TestRun_Usage(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"nope"}, 2},
		{[]string{"paxos"}, 2},
		{[]string{"paxos", "demo", "--mode", "triple"}, 1},
		{[]string{"paxos", "demo", "--bogus"}, 2},
		{[]string{"--help"}, 0},
		{[]string{"paxos", "demo", "-h"}, 0},
	}
	for _, tt := range tests {
		var out, errs bytes.Buffer
		if code := run(tt.args, &out, &errs); code != tt.code {
			t.Errorf("stockctl %v: exit %d, want %d (%s)", tt.args, code, tt.code, errs.String())
		}
	}
}

func TestGlobalsAfterCommand(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"--endpoints a,b cluster status", "cluster status --endpoints a,b"},
		{"--endpoints=a --json sku get phone", "sku get phone --endpoints=a --json"},
		{"--json --timeout 3s deduct tee 1 --user u", "deduct tee 1 --user u --json --timeout 3s"},
		{"sku get phone --endpoints a", "sku get phone --endpoints a"},
		{"--bogus cluster status", "--bogus cluster status"},
		{"--help", "--help"},
	} {
		if got := strings.Join(globalsAfterCommand(strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}
