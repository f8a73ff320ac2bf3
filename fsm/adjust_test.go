package fsm

import (
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

func adjust(req, sku string, qty int64, reason string) Command {
	return Command{Kind: KindAdjust, RequestID: req, SKU: sku, Qty: qty, Reason: reason, Time: 1000}
}

func retire(req, sku string) Command {
	return Command{Kind: KindRetire, RequestID: req, SKU: sku, Time: 1000}
}

func TestAdjust(t *testing.T) {
	cases := []struct {
		name      string
		cmd       Command
		code      api.Code
		available int64
	}{
		{"down", adjust("a", "s", -3, "damage"), api.OK, 2},
		{"up", adjust("a", "s", 4, "miscount"), api.OK, 9},
		{"to zero", adjust("a", "s", -5, "lost"), api.OK, 0},
		{"below zero available", adjust("a", "s", -6, "damage"), api.InsufficientStock, 5},
		{"held units are not available", adjust("a", "s", -5, "damage"), api.OK, 0},
		{"unknown sku", adjust("a", "x", -1, "damage"), api.NotFound, 5},
		{"zero qty", adjust("a", "s", 0, "damage"), api.InvalidArgument, 5},
		{"no reason", adjust("a", "s", -1, ""), api.InvalidArgument, 5},
		{"reason with a space", adjust("a", "s", -1, "fell off"), api.InvalidArgument, 5},
		{"no request id", adjust("", "s", -1, "damage"), api.InvalidArgument, 5},
		{"qty past MaxQty", adjust("a", "s", MaxQty+1, "miscount"), api.InvalidArgument, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReplicaAtLevel(t, Options{}, 1)
			r.one(create("s", 5, 0))
			if tc.name == "held units are not available" {
				// 5 stocked, 2 held: -5 would take held units, -3 may not.
				r.one(restock("re", "s", 2))
				wantCode(t, r.one(reserve("rv", "o", "u", 1000, 1000, Line{"s", 2})), api.OK)
				wantCode(t, r.one(adjust("over", "s", -6, "damage")), api.InsufficientStock)
			}
			before := r.sku("s")
			res := r.one(tc.cmd)
			wantCode(t, res, tc.code)
			after := r.sku("s")
			if after.Available != tc.available {
				t.Fatalf("available %d, want %d", after.Available, tc.available)
			}
			if tc.code != api.OK && after != before {
				t.Fatalf("rejected adjust changed the sku: %+v → %+v", before, after)
			}
			if tc.code == api.OK {
				h, err := r.m.History("s", 10)
				if err != nil {
					t.Fatal(err)
				}
				last := h[len(h)-1]
				if last.Kind != MoveAdjust || last.Qty != tc.cmd.Qty || last.Reason != tc.cmd.Reason || last.RequestID != "a" {
					t.Fatalf("ledger's last movement %+v, want the adjustment", last)
				}
			}
		})
	}
}

func TestAdjust_ExactlyOnceAndReasonSurvivesReopen(t *testing.T) {
	r := newReplicaAtLevel(t, Options{}, 1)
	r.one(create("s", 5, 0))
	first := r.one(adjust("req-1", "s", -2, "damage"))
	wantCode(t, first, api.OK)
	again := r.one(adjust("req-1", "s", -2, "damage"))
	if !again.Duplicate || again.SKU != first.SKU || r.sku("s").Available != 3 {
		t.Fatalf("retry got %+v (available %d), want the first answer, applied once", again, r.sku("s").Available)
	}
	// The reason is part of the command: the same id with another reason is another command.
	wantCode(t, r.one(adjust("req-1", "s", -2, "lost")), api.InvalidArgument)
	m := r.reopen(Options{NoSync: true})
	defer m.Close()
	h, err := m.History("s", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[1].Reason != "damage" || h[0].Reason != "" {
		t.Fatalf("history after reopen %+v", h)
	}
}

func TestRetire(t *testing.T) {
	r := newReplicaAtLevel(t, Options{}, 1)
	r.apply(create("s", 10, 2), create("other", 1, 0))
	wantCode(t, r.one(deduct("d1", "s", "u", 1)), api.OK)
	wantCode(t, r.one(reserve("rv", "o1", "u", 1000, 1000, Line{"s", 1})), api.OK)

	// Held units must be settled first.
	res := r.one(retire("ret-1", "s"))
	wantCode(t, res, api.FailedPrecondition)
	if r.sku("s").Retired {
		t.Fatal("a refused retire retired the sku")
	}
	wantCode(t, r.one(orderCmd(KindConfirm, "c1", "o1", 1001)), api.OK)

	res = r.one(retire("ret-2", "s"))
	wantCode(t, res, api.OK)
	want := SKU{SKU: "s", Available: 0, Reserved: 0, Sold: 2, PerUserLimit: 2, Version: r.index, Retired: true}
	if res.SKU != want || r.sku("s") != want {
		t.Fatalf("retired sku: result %+v, stored %+v, want %+v", res.SKU, r.sku("s"), want)
	}
	h, _ := r.m.History("s", 10)
	if last := h[len(h)-1]; last.Kind != MoveRetire || last.Qty != -8 {
		t.Fatalf("last movement %+v, want retire writing off 8", last)
	}
	// A retry of the retire gets its first answer, retired flag included.
	if again := r.one(retire("ret-2", "s")); !again.Duplicate || again.SKU != want {
		t.Fatalf("retry of retire got %+v", again)
	}

	// Nothing stocks or sells a retired SKU, and its id is not reused.
	for _, c := range []Command{
		deduct("d2", "s", "v", 1),
		reserve("rv2", "o2", "v", 1000, 1000, Line{"other", 1}, Line{"s", 1}),
		restock("re", "s", 5),
		adjust("ad", "s", 1, "found"),
		retire("ret-3", "s"),
	} {
		res := r.one(c)
		wantCode(t, res, api.FailedPrecondition)
		if c.Kind == KindDeduct && !res.SKU.Retired {
			t.Fatalf("deduct's rejection carries %+v, want the retired sku", res.SKU)
		}
	}
	wantCode(t, r.one(create("s", 5, 0)), api.AlreadyExists)
	if got := r.sku("s"); got != want {
		t.Fatalf("refused commands changed the retired sku: %+v", got)
	}
	if got := r.sku("other"); got.Available != 1 {
		t.Fatalf("a refused order took other's stock: %+v", got)
	}
	// The rejection of the deduct is remembered with the retired flag, across a reopen.
	m := r.reopen(Options{NoSync: true})
	defer m.Close()
	s, err := m.GetSKU("s")
	if err != nil || s != want {
		t.Fatalf("after reopen %+v, %v", s, err)
	}
	if err := m.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// A state with no adjustment and no retired SKU stores exactly the bytes it stored before
// they existed: an older node can still read its snapshots, and the state hash is stable.
func TestAdjustRetire_OldRecordsKeepTheirBytes(t *testing.T) {
	s := skuRecord{SKU: SKU{SKU: "s", Available: 1, Sold: 2, Version: 3}, Restocked: 3, LastMove: 4}
	if b := s.encode(); b[0] != 2 {
		t.Fatalf("a sku in service is stored as version %d", b[0])
	}
	mv := movementRecord{Movement: Movement{SKU: "s", Kind: MoveDeduct, Qty: 1}}
	w := writer{}
	mv.encode(&w)
	if w.b[0] != 2 {
		t.Fatalf("a movement without reason is stored as version %d", w.b[0])
	}
	d := dedupRecord{RequestID: "r", Result: Result{Code: api.OK, SKU: s.SKU}}
	w = writer{}
	d.encode(&w)
	if w.b[0] != 1 {
		t.Fatalf("an answer about a sku in service is stored as version %d", w.b[0])
	}
	// And the new versions read back.
	s.Retired = true
	if got, err := decodeSKU("s", s.encode()); err != nil || got.SKU != s.SKU {
		t.Fatalf("retired record read back as %+v, %v", got, err)
	}
	d.Result.SKU.Retired = true
	w = writer{}
	d.encode(&w)
	if got, err := decodeDedup(w.b); err != nil || !got.Result.SKU.Retired {
		t.Fatalf("retired answer read back as %+v, %v", got, err)
	}
}

func TestAdjustRetire_EncodeRoundTrip(t *testing.T) {
	for _, c := range []Command{adjust("a", "s", -7, "damage"), adjust("b", "s", 3, "miscount"), retire("c", "s")} {
		b, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil || got.Kind != c.Kind || got.SKU != c.SKU || got.Qty != c.Qty || got.Reason != c.Reason || got.RequestID != c.RequestID {
			t.Fatalf("%+v came back as %+v, %v", c, got, err)
		}
	}
}

// Below level 1 an adjustment or a retirement is what a build before them makes of it: an
// entry it cannot decode, which changes nothing, the log time included.
func TestAdjustRetire_BelowLevel1AreUndecodable(t *testing.T) {
	r := newReplica(t, Options{})
	r.one(create("a", 5, 0))
	for _, c := range []Command{
		{Kind: KindAdjust, RequestID: "adj", SKU: "a", Qty: -1, Reason: "damage", Time: 5000},
		{Kind: KindRetire, RequestID: "ret", SKU: "a", Time: 5000},
		{Kind: KindBatch, Batch: []Command{{Kind: KindDeduct, RequestID: "d", SKU: "a", Qty: 1, UserID: "u"}, {Kind: KindRetire, RequestID: "ret2", SKU: "a"}}, Time: 5000},
	} {
		res := r.one(c)
		wantCode(t, res, api.InvalidArgument)
		if !strings.Contains(res.Message, "unknown kind") {
			t.Errorf("%s below level 1: %q, want an older build's decode failure", c.Kind, res.Message)
		}
	}
	if a := r.sku("a"); a.Available != 5 || a.Retired {
		t.Fatalf("sku %+v: a command of a level not in force changed it", a)
	}
	if lt := r.m.LogTime(); lt >= 5000 {
		t.Fatalf("log time %d: an undecodable entry moved it", lt)
	}
	if r.m.Remembers("adj") || r.m.Remembers("d") {
		t.Fatal("an undecodable entry was remembered")
	}
}
