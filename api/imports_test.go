package api

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The import rules of docs/DESIGN.md, checked on the real dependency graph: a package that
// must not know raft, HTTP or the node does not link them, even through another package.
func TestImports_FollowTheDesign(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	const mod = "github.com/flashstock/flashstock/"
	rules := map[string][]string{
		"api":    {mod + "fsm", mod + "node", mod + "client", "net/http", "github.com/hashicorp/raft"},
		"fsm":    {mod + "node", mod + "client", mod + "paxos", "net/http", "github.com/hashicorp/raft"},
		"paxos":  {mod + "node", mod + "client", "net/http", "github.com/hashicorp/raft"},
		"client": {mod + "node", mod + "fsm", "github.com/hashicorp/raft"},
	}
	for pkg, banned := range rules {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		for _, b := range banned {
			if slices.Contains(deps, b) {
				t.Errorf("%s depends on %s", pkg, b)
			}
		}
	}
}

// Packages that must stay pure link nothing outside the standard library but the module
// packages listed: package placement is shared by node/ and, through api, the client.
func TestImports_PurePackages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	const mod = "github.com/flashstock/flashstock/"
	allowed := map[string][]string{
		"api":            {mod + "api"},
		"placement":      {mod + "placement", mod + "api"},
		"placement/meta": {mod + "placement/meta", mod + "placement", mod + "api"},
	}
	for pkg, ok := range allowed {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", mod+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if !slices.Contains(ok, dep) {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
