package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestMigrateLog_UsageAndEmptyDir(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"migrate-log"}, 2, "--data-dir and --to bolt|wal are required"},
		{[]string{"migrate-log", "--data-dir", "d", "--to", "rocks"}, 2, "--to bolt|wal"},
		{[]string{"migrate-log", "--help"}, 0, "Converts a STOPPED node"},
		{[]string{"migrate-log", "--data-dir", t.TempDir(), "--to", "wal"}, 1, "holds no bolt raft log"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
			t.Errorf("stockd %s: exit %d, output %q; want exit %d and %q", strings.Join(tc.args, " "), code, out.String()+errOut.String(), tc.code, tc.want)
		}
	}
}
