package api

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// TestDeductResponse_AppendJSONIsMarshal: the hand encoding is encoding/json's byte for
// byte, and covers every field the type has.
func TestDeductResponse_AppendJSONIsMarshal(t *testing.T) {
	if n := reflect.TypeFor[DeductResponse]().NumField(); n != 2 {
		t.Fatalf("DeductResponse has %d fields and AppendJSON writes 2: add the new ones to it", n)
	}
	for _, r := range []DeductResponse{
		{}, {Remaining: 1, Duplicate: true}, {Remaining: -1},
		{Remaining: math.MaxInt64, Duplicate: true}, {Remaining: math.MinInt64},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON([]byte("x")); string(got) != "x"+string(want) {
			t.Errorf("%+v: %s, want x%s", r, got, want)
		}
	}
}
