package meta_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

// Any bytes in the log: Apply never panics; Decode accepts only what Encode writes back
// byte for byte; a refused entry changes nothing, and only an entry Decode refuses (or a
// set_level past this build's level) stops the machine; an applied one leaves a valid placement one version on, which survives a
// snapshot round trip.
func FuzzApply(f *testing.F) {
	for _, c := range wellFormed() {
		if c.From != 0 {
			c.From = 2 // the version fuzzMachine is at, so that some seeds apply
		}
		f.Add(encode(f, c))
	}
	f.Add([]byte(`{"v":1,"kind":"step","from":2,"step":{"group":1,"kind":"add_nonvoter","node":"n4"}}`))
	f.Add([]byte(`{"v":1,"kind":"remove_node","from":2,"node_id":"n4"}`))
	f.Add([]byte(`{"v":2,"kind":"remove_node","from":2,"node_id":"n4"}`))
	f.Add([]byte(`{"v":1,"kind":"split","from":2}`))
	f.Add([]byte(`{"v":1,"kind":"set_level","from":0,"level":2}`))
	f.Add([]byte{})
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := bootstrappedPlusN4(t)
		before, applied := m.Placement(), m.Applied()
		res := m.Apply(applied+1, data)
		c, decodeErr := meta.Decode(data)
		if decodeErr == nil {
			if again, err := meta.Encode(c); err != nil || !bytes.Equal(again, data) {
				t.Fatalf("decoded %q to %+v, which encodes as %q, %v", data, c, again, err)
			}
		}
		after := m.Placement()
		switch {
		case res.Err != nil:
			if !reflect.DeepEqual(before, after) || res.Version != before.Version {
				t.Fatalf("refused (%v) but the placement changed", res.Err)
			}
			stopped := errors.Is(res.Err, placement.ErrUnknownCommand)
			unreadable := decodeErr != nil || c.Kind == meta.SetLevel && c.Level > meta.ApplyLevel
			if stopped != unreadable || stopped != (m.Err() != nil) {
				t.Fatalf("refused with %v, decode %v, machine error %v: only an entry Decode refuses, or a level this build lacks, stops the machine", res.Err, decodeErr, m.Err())
			}
			wantIdx := applied + 1 // a refusal is applied, the same on every replica
			if stopped {
				wantIdx = applied // a stopped machine has not applied the entry
			}
			if m.Applied() != wantIdx {
				t.Fatalf("applied index %d after a refusal (stopped %v), want %d", m.Applied(), stopped, wantIdx)
			}
			return
		case decodeErr != nil:
			t.Fatalf("applied %q, which Decode refuses: %v", data, decodeErr)
		}
		if after.Version != before.Version && after.Version != before.Version+1 || res.Version != after.Version {
			t.Fatalf("version %d -> %d (result %d)", before.Version, after.Version, res.Version)
		}
		if err := placement.Validate(&after); err != nil {
			t.Fatalf("applied %s: invalid placement: %v", data, err)
		}
		r := meta.New()
		if err := r.Restore(snapshot(t, m)); err != nil || !reflect.DeepEqual(r.Placement(), after) {
			t.Fatalf("snapshot round trip: %v", err)
		}
	})
}
