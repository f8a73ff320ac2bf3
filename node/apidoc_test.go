package node

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// TestAPIReference_ListsEveryRouteAndCode holds docs/API.md to what a node serves: each
// route registered (with every option on) has a "### `pattern`" section, each section
// names a served route, and the table of codes says what api/code.go says.
func TestAPIReference_ListsEveryRouteAndCode(t *testing.T) {
	doc, err := os.ReadFile("../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	served := allRoutes()
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^### `([^`]+)`$").FindAllSubmatch(doc, -1) {
		listed = append(listed, string(m[1]))
	}
	for _, p := range served {
		if !slices.Contains(listed, p) {
			t.Errorf("route %q is served but docs/API.md has no \"### `%s`\" section", p, p)
		}
	}
	for _, p := range listed {
		if !slices.Contains(served, p) {
			t.Errorf("docs/API.md documents %q, which no node serves", p)
		}
	}

	rows := map[api.Code][2]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (\\d+) \\| (yes|no) \\|").FindAllSubmatch(doc, -1) {
		rows[api.Code(m[1])] = [2]string{string(m[2]), string(m[3])}
	}
	for _, c := range api.Codes() {
		if c == api.OK {
			continue
		}
		row, ok := rows[c]
		retry := map[bool]string{true: "yes", false: "no"}[c.Retryable()]
		switch {
		case !ok:
			t.Errorf("code %s is missing from docs/API.md's table", c)
		case row[0] != strconv.Itoa(c.HTTPStatus()) || row[1] != retry:
			t.Errorf("docs/API.md: %s is %s, retryable %s; api/code.go says %d, %s", c, row[0], row[1], c.HTTPStatus(), retry)
		}
		delete(rows, c)
	}
	for c := range rows {
		t.Errorf("docs/API.md lists code %s, which api/code.go does not have", c)
	}
}
