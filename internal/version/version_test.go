package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestResolve_LinkerFlagsWinOverBuildInfo(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name         string
		ldVer, ldRev string
		bi           *debug.BuildInfo
		want         Info
		wantString   string
	}{
		{"release build", "v1.4.0", "0123456789abcdef0123",
			&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: vcs("fedcba", "false")},
			Info{Version: "v1.4.0", Revision: "0123456789abcdef0123", GoVersion: "go1.26.0"}, "v1.4.0 (0123456789ab, go1.26.0)"},
		{"go build in a dirty checkout", "", "",
			&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: vcs("0123456789abcdef0123", "true")},
			Info{Version: Devel, Revision: "0123456789abcdef0123", Modified: true, GoVersion: "go1.26.0"}, "devel (0123456789ab+dirty, go1.26.0)"},
		{"go install module@version", "", "",
			&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.3.2"}},
			Info{Version: "v1.3.2", GoVersion: "go1.26.0"}, "v1.3.2 (go1.26.0)"},
		{"no build info", "", "", nil,
			Info{Version: Devel, GoVersion: runtime.Version()}, "devel (" + runtime.Version() + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolve(tc.ldVer, tc.ldRev, tc.bi)
			if got != tc.want {
				t.Errorf("resolve = %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.wantString {
				t.Errorf("String = %q, want %q", s, tc.wantString)
			}
		})
	}
}

func TestLabel_NamesTheCommitOfADevelBuild(t *testing.T) {
	for _, tc := range []struct{ version, revision, want string }{
		{"v1.4.0", "0123456789abcdef", "v1.4.0"},
		{Devel, "0123456789abcdef", "devel@0123456789ab"},
		{Devel, "", "devel"},
		{"", "", "-"}, // a member that did not answer
	} {
		if got := Label(tc.version, tc.revision); got != tc.want {
			t.Errorf("Label(%q, %q) = %q, want %q", tc.version, tc.revision, got, tc.want)
		}
	}
}
