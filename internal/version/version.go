// Package version says which build of flashstock is running: the release a build was
// stamped with (-ldflags -X), else what the Go toolchain recorded about the module and
// its git checkout (debug.ReadBuildInfo). Both binaries and every node report it from here.
//
// A release build sets both variables:
//
//	go build -ldflags "-X github.com/flashstock/flashstock/internal/version.version=v1.4.0 \
//	  -X github.com/flashstock/flashstock/internal/version.revision=$(git rev-parse HEAD)" ./cmd/...
//
// `make build` does this from `git describe`.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Set with -ldflags -X; empty in a plain `go build`.
var (
	version  string
	revision string
)

// Devel is the version of a build that carries none (go run, go test, a build outside git).
const Devel = "devel"

// Info describes one build.
type Info struct {
	Version   string `json:"version"`            // a release (v1.4.0), a module pseudo-version, or "devel"
	Revision  string `json:"revision,omitempty"` // the git commit, when known
	Modified  bool   `json:"modified,omitempty"` // built from a checkout with uncommitted changes
	GoVersion string `json:"go_version"`
}

// Get is the running binary's build.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, revision, bi)
}

// resolve prefers what the linker was told and falls back to the build info; bi may be
// nil (a binary built without module support).
func resolve(ldVersion, ldRevision string, bi *debug.BuildInfo) Info {
	info := Info{Version: ldVersion, Revision: ldRevision, GoVersion: runtime.Version()}
	if bi == nil {
		if info.Version == "" {
			info.Version = Devel
		}
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version // go install module@v1.4.0, or a VCS-stamped pseudo-version
	}
	if info.Version == "" {
		info.Version = Devel
	}
	vcsRevision := ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			vcsRevision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	if info.Revision == "" {
		info.Revision = vcsRevision
	}
	return info
}

// String is the one-line form both binaries print: "v1.4.0 (3f44f13c0a1e+dirty, go1.26.0)".
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	b.WriteString(" (")
	if i.Revision != "" {
		b.WriteString(Short(i.Revision))
		if i.Modified {
			b.WriteString("+dirty")
		}
		b.WriteString(", ")
	}
	b.WriteString(i.GoVersion)
	b.WriteString(")")
	return b.String()
}

// Short is the first 12 characters of a commit id, as git and Go's pseudo-versions show it.
func Short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// Label is a member's version for a table column: the version, and for a build that has
// none, the commit it was built from ("devel@3f44f1354230"); "-" when unknown.
func Label(version, revision string) string {
	switch {
	case version == "":
		return "-"
	case version == Devel && revision != "":
		return Devel + "@" + Short(revision)
	}
	return version
}
