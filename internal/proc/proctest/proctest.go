// Package proctest is internal/proc for tests: a stockd binary built once per test, and
// the skip that keeps every test starting stockd processes out of the unit tier.
package proctest

import (
	"context"
	"testing"
	"time"

	"github.com/flashstock/flashstock/internal/proc"
)

// SkipShort skips t under -short: tests that build stockd and run its processes are tier
// 3, not unit tests. Every such test reaches it through Build, so there is one place to
// change which tier runs them.
func SkipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("tier 3: builds stockd and runs its processes; runs without -short")
	}
}

// Build compiles the stockd package pkg with go build's flags into a temp dir of t and
// returns the binary's path; under -short it skips t (see SkipShort).
func Build(t testing.TB, pkg string, flags ...string) string {
	t.Helper()
	SkipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	bin, err := proc.Build(ctx, t.TempDir(), pkg, flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built stockd in %v", time.Since(start).Round(time.Millisecond))
	return bin
}
