package ui_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestRequireChromium_SkipsWithoutBrowserButFailsUnderCI: the browser tests run where
// Chromium is, skip with a message where it is not (a fresh machine with Go alone), and fail
// under CI, which installs Chromium, so a broken install cannot pass as a skip.
func TestRequireChromium_SkipsWithoutBrowserButFailsUnderCI(t *testing.T) {
	for _, tc := range []struct {
		name    string
		exe     string
		ci      bool
		want    string // "run", "skip" or "fail"
		message string
	}{
		{"found", "/usr/bin/chromium", false, "run", ""},
		{"found under CI", "/usr/bin/chromium", true, "run", ""},
		{"missing", "", false, "skip", "apt-get install -y chromium"},
		{"missing under CI", "", true, "fail", "must run in CI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			var got string
			done := make(chan struct{})
			go func() { // Skip and Fatal end the goroutine, as they end a test's
				defer close(done)
				got = requireChromium(rec, tc.exe, tc.ci)
			}()
			<-done
			outcome := "run"
			switch {
			case rec.failed:
				outcome = "fail"
			case rec.skipped:
				outcome = "skip"
			}
			if outcome != tc.want {
				t.Fatalf("outcome %s, want %s (message %q)", outcome, tc.want, rec.msg)
			}
			if outcome == "run" && got != tc.exe {
				t.Errorf("exe %q, want %q", got, tc.exe)
			}
			if !strings.Contains(rec.msg, tc.message) {
				t.Errorf("message %q lacks %q", rec.msg, tc.message)
			}
		})
	}
}

// recordingTB records a Skip or a Fatal instead of ending the real test.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
