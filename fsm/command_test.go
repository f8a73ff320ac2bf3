package fsm

import (
	"errors"
	"reflect"
	"testing"

	"github.com/flashstock/flashstock/api"
)

func sampleCommands() []Command {
	return []Command{
		create("tee", 100, 2),
		{Kind: KindCreateSKU, RequestID: "c-1", SKU: "a", Time: -5},
		restock("r", "tee", 7),
		deduct("d", "tee", "alice", 1),
		reserve("rv", "order-9", "bob", 60_000, 1234, Line{"tee", 1}, Line{"cap", 3}),
		orderCmd(KindConfirm, "c", "order-9", 2000),
		orderCmd(KindCancel, "x", "order-9", 2000),
		orderCmd(KindShip, "s", "order-9", 2000),
		expire(1 << 42),
		{Kind: KindBatch, Time: 9, Batch: []Command{deduct("b1", "tee", "u", 1), expire(3)}},
		{Kind: KindSetMember, Time: 3, Member: Member{ID: "n1", RaftAddr: "127.0.0.1:5001", HTTPAddr: "127.0.0.1:4001"}},
		{Kind: KindRemoveMember, Time: 4, Member: Member{ID: "n1"}},
		adjust("a", "tee", -3, "damage"),
		adjust("a2", "tee", 2, "miscount"),
		retire("rt", "tee"),
	}
}

func TestEncode_RoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		b, err := Encode(c)
		if err != nil {
			t.Fatalf("encode %+v: %v", c, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, c)
		}
	}
}

func TestDecode_RejectsGarbage(t *testing.T) {
	good, _ := Encode(deduct("d", "tee", "alice", 1))
	cases := map[string][]byte{
		"empty":         {},
		"version 0":     append([]byte{0}, good[1:]...),
		"version 2":     append([]byte{2}, good[1:]...),
		"unknown kind":  {1, 99, 0, 0},
		"truncated":     good[:len(good)-2],
		"trailing data": append(append([]byte{}, good...), 0),
		"huge length":   {1, byte(KindDeduct), 0xff, 0xff, 0xff, 0xff, 0x0f},
		"nested batch":  {1, byte(KindBatch), 0, 0, 1, byte(KindBatch), 0, 0, 0},
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: err %v, want ErrDecode", name, err)
		}
	}
	if _, err := Encode(Command{Kind: 77}); err == nil {
		t.Error("unknown kind encoded")
	}
}

func TestValidate_InputRules(t *testing.T) {
	long := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'x'
		}
		return string(b)
	}
	ok := []Command{
		create(long(64), 0, 0),
		create("A-z_0.9:x", MaxInitial, MaxQty),
		deduct(long(128), "s", long(128), MaxQty),
		deduct("id with spaces ~!", "s", "u", 1),
		adjust("a", "s", -MaxQty, long(MaxReasonLen)), adjust("a", "s", MaxQty, "A-z_0.9:x"),
		retire("r", long(64)),
	}
	for _, c := range ok {
		if err := Validate(c); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := []Command{
		create("", 1, 0), create(long(65), 1, 0), create("a b", 1, 0), create("a/b", 1, 0),
		create("ü", 1, 0), create("a", -1, 0), create("a", MaxInitial+1, 0), create("a", 1, -1),
		deduct(long(129), "s", "u", 1), deduct("d", "s", long(129), 1), deduct("d\n", "s", "u", 1),
		deduct("d", "s", "u\x7f", 1), deduct("d", "s", "u", 0), deduct("d", "s", "u", MaxQty+1),
		restock("", "s", 1), orderCmd(KindConfirm, "", "o", 1), orderCmd(KindShip, "s", "", 1),
		orderCmd(KindCancel, "c", ".", 1), orderCmd(KindCancel, "c", "..", 1),
		{Kind: 0}, {Kind: KindBatch},
		adjust("", "s", 1, "found"), adjust("a", "s", 0, "found"), adjust("a", "s", -MaxQty-1, "lost"),
		adjust("a", "s", 1, ""), adjust("a", "s", 1, long(MaxReasonLen+1)), adjust("a", "s", 1, "a b"),
		adjust("a", "a/b", 1, "found"), retire("", "s"), retire("r", ""),
	}
	for _, c := range bad {
		err := Validate(c)
		if !errors.Is(err, &api.Error{Code: api.InvalidArgument}) {
			t.Errorf("%+v: err %v, want invalid_argument", c, err)
		}
	}
}

// FuzzDecode: any bytes decode to a command or an error, and what decodes re-encodes to the
// same bytes (the encoding is canonical).
func FuzzDecode(f *testing.F) {
	for _, c := range sampleCommands() {
		b, _ := Encode(c)
		f.Add(b)
	}
	f.Add([]byte{1, byte(KindBatch), 0, 0, 0xff, 0x1f})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(c)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", c, err)
		}
		c2, err := Decode(again)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("re-encoding changed the command: %+v → %+v (%v)", c, c2, err)
		}
	})
}

// FuzzApply: arbitrary entries never break the invariants and never fail the replica, and
// two replicas fed the same entries end with the same state hash.
func FuzzApply(f *testing.F) {
	var seed []byte
	for _, c := range sampleCommands() {
		b, _ := Encode(c)
		seed = append(seed, byte(len(b)))
		seed = append(seed, b...)
	}
	f.Add(seed)
	f.Add([]byte{3, 1, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		entries := splitEntries(data)
		a, b := newReplica(t, Options{}), newReplica(t, Options{})
		// Create a SKU first so random deducts have something to hit.
		setup, _ := Encode(create("tee", 10, 2))
		for _, r := range []*replica{a, b} {
			if _, err := r.m.ApplyBatch(append([]Entry{{Index: 1, Data: setup}}, entries...)); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if err := r.m.CheckInvariants(); err != nil {
				t.Fatalf("invariants: %v", err)
			}
		}
		if a.hash() != b.hash() {
			t.Fatal("same entries, different state")
		}
	})
}

// splitEntries cuts fuzz input into length-prefixed entries with indexes from 2.
func splitEntries(data []byte) []Entry {
	var out []Entry
	for len(data) > 0 && len(out) < 64 {
		n := min(int(data[0]), len(data)-1)
		out = append(out, Entry{Index: uint64(len(out) + 2), Data: data[1 : 1+n]})
		data = data[1+n:]
	}
	return out
}
