package node

import (
	"net/http"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// TestHeaderValues_SharedSlices: the header values set by map assignment (no Header().Set
// to canonicalize the key) use canonical keys, and the leader hint follows the leader.
func TestHeaderValues_SharedSlices(t *testing.T) {
	for _, k := range []string{api.HeaderLeader, "Content-Type"} {
		if http.CanonicalHeaderKey(k) != k {
			t.Errorf("%q is not canonical: a map assignment would add a second header", k)
		}
	}
	var n Node
	a := n.leaderHintValue("127.0.0.1:1")
	if b := n.leaderHintValue("127.0.0.1:1"); &a[0] != &b[0] {
		t.Error("the same leader got a new value")
	}
	if c := n.leaderHintValue("127.0.0.1:2"); len(c) != 1 || c[0] != "127.0.0.1:2" {
		t.Errorf("new leader: %q", c)
	}
	if a[0] != "127.0.0.1:1" {
		t.Errorf("the old value changed to %q", a)
	}
}
