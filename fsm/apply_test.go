package fsm

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

func TestCreateSKU(t *testing.T) {
	r := newReplica(t, Options{})
	res := r.one(create("tee-1", 10, 2))
	wantCode(t, res, api.OK)
	if res.SKU != (SKU{SKU: "tee-1", Available: 10, PerUserLimit: 2, Version: 1}) {
		t.Fatalf("created %+v", res.SKU)
	}
	wantCode(t, r.one(create("tee-1", 5, 0)), api.AlreadyExists)
	if got := r.sku("tee-1"); got.Available != 10 || got.Version != 1 {
		t.Fatalf("rejected create changed the sku: %+v", got)
	}
	wantCode(t, r.one(create("empty", 0, 0)), api.OK)
	if h, _ := r.m.History("empty", 10); len(h) != 0 {
		t.Fatalf("empty sku has movements %+v", h)
	}
}

func TestRestock(t *testing.T) {
	r := newReplica(t, Options{})
	r.one(create("a", 1, 0))
	cases := []struct {
		name string
		cmd  Command
		code api.Code
		want int64
	}{
		{"adds", restock("r1", "a", 9), api.OK, 10},
		{"unknown sku", restock("r2", "nope", 1), api.NotFound, 10},
		{"zero qty", restock("r3", "a", 0), api.InvalidArgument, 10},
		{"qty over limit", restock("r4", "a", MaxQty+1), api.InvalidArgument, 10},
		{"missing request id", restock("", "a", 1), api.InvalidArgument, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, r.one(tc.cmd), tc.code)
			if got := r.sku("a").Available; got != tc.want {
				t.Fatalf("available %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRestock_Overflow(t *testing.T) {
	r := newReplica(t, Options{})
	r.one(create("a", MaxInitial, 0))
	var cmds []Command
	for i := 0; i < MaxTotalStock/MaxQty-1; i++ {
		cmds = append(cmds, restock("fill-"+itoa(i), "a", MaxQty))
	}
	for _, res := range r.apply(cmds...) {
		wantCode(t, res, api.OK)
	}
	if got := r.sku("a").Total(); got != MaxTotalStock {
		t.Fatalf("total %d, want %d", got, int64(MaxTotalStock))
	}
	before := r.sku("a")
	wantCode(t, r.one(restock("over", "a", 1)), api.Overflow)
	if after := r.sku("a"); after != before {
		t.Fatalf("overflowing restock changed %+v → %+v", before, after)
	}
}

func TestDeduct(t *testing.T) {
	cases := []struct {
		name      string
		stock     int64
		limit     int64
		prior     []Command
		cmd       Command
		code      api.Code
		available int64
	}{
		{name: "sells", stock: 5, cmd: deduct("d", "s", "u", 2), code: api.OK, available: 3},
		{name: "sells the last unit", stock: 1, cmd: deduct("d", "s", "u", 1), code: api.OK, available: 0},
		{name: "sold out", stock: 0, cmd: deduct("d", "s", "u", 1), code: api.SoldOut, available: 0},
		{name: "insufficient", stock: 2, cmd: deduct("d", "s", "u", 3), code: api.InsufficientStock, available: 2},
		{name: "unknown sku", stock: 2, cmd: deduct("d", "x", "u", 1), code: api.NotFound, available: 2},
		{name: "within limit", stock: 9, limit: 3, prior: []Command{deduct("p", "s", "u", 2)}, cmd: deduct("d", "s", "u", 1), code: api.OK, available: 6},
		{name: "past limit", stock: 9, limit: 3, prior: []Command{deduct("p", "s", "u", 2)}, cmd: deduct("d", "s", "u", 2), code: api.LimitExceeded, available: 7},
		{name: "limit is per user", stock: 9, limit: 3, prior: []Command{deduct("p", "s", "u", 3)}, cmd: deduct("d", "s", "v", 3), code: api.OK, available: 3},
		{name: "held units count to the limit", stock: 9, limit: 3, prior: []Command{reserve("p", "o", "u", 1000, 1000, Line{"s", 2})}, cmd: deduct("d", "s", "u", 2), code: api.LimitExceeded, available: 7},
		{name: "sold out wins over the limit", stock: 1, limit: 1, prior: []Command{deduct("p", "s", "u", 1)}, cmd: deduct("d", "s", "u", 1), code: api.SoldOut, available: 0},
		{name: "no user", stock: 1, cmd: deduct("d", "s", "", 1), code: api.InvalidArgument, available: 1},
		{name: "negative qty", stock: 1, cmd: deduct("d", "s", "u", -1), code: api.InvalidArgument, available: 1},
		{name: "bad sku", stock: 1, cmd: deduct("d", "s/1", "u", 1), code: api.InvalidArgument, available: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReplica(t, Options{})
			r.one(create("s", tc.stock, tc.limit))
			for _, p := range tc.prior {
				wantCode(t, r.one(p), api.OK)
			}
			before := r.sku("s")
			res := r.one(tc.cmd)
			wantCode(t, res, tc.code)
			after := r.sku("s")
			if after.Available != tc.available {
				t.Fatalf("available %d, want %d", after.Available, tc.available)
			}
			if tc.code != api.OK && after != before {
				t.Fatalf("rejected deduct changed the sku: %+v → %+v", before, after)
			}
			if tc.code == api.OK && (res.SKU != after || after.Version != r.index) {
				t.Fatalf("result %+v, stored %+v, index %d", res.SKU, after, r.index)
			}
		})
	}
}

func TestDeduct_ExactlyOnce(t *testing.T) {
	r := newReplica(t, Options{})
	r.one(create("s", 1, 0))
	first := r.one(deduct("req-1", "s", "u", 1))
	wantCode(t, first, api.OK)
	h1 := r.sku("s")
	again := r.one(deduct("req-1", "s", "u", 1))
	if !again.Duplicate || again.Code != api.OK || again.SKU != first.SKU {
		t.Fatalf("retry got %+v, want the first answer %+v marked duplicate", again, first)
	}
	if h2 := r.sku("s"); h2 != h1 {
		t.Fatalf("duplicate changed state: %+v → %+v", h1, h2)
	}
	// The sold-out answer of another request is remembered too.
	wantCode(t, r.one(deduct("req-2", "s", "u", 1)), api.SoldOut)
	r.one(restock("re", "s", 5))
	if res := r.one(deduct("req-2", "s", "u", 1)); res.Code != api.SoldOut || !res.Duplicate {
		t.Fatalf("retry after restock got %+v, want the first answer (sold_out)", res)
	}
	if !r.m.Remembers("req-1") || !r.m.Remembers("req-2") || r.m.Remembers("req-3") {
		t.Fatal("Remembers disagrees with the table")
	}
	// Reusing an id for another command is refused and changes nothing.
	if res := r.one(deduct("req-1", "s", "u", 2)); res.Code != api.InvalidArgument || !strings.Contains(res.Message, "different command") {
		t.Fatalf("reused id got %+v", res)
	}
	// A retry at a later time is still the same command.
	retry := deduct("req-1", "s", "u", 1)
	retry.Time = 99_000
	if res := r.one(retry); !res.Duplicate {
		t.Fatalf("retry with a later time got %+v", res)
	}
}

func TestReserve(t *testing.T) {
	setup := func(t *testing.T) *replica {
		r := newReplica(t, Options{})
		r.apply(create("a", 5, 0), create("b", 1, 0), create("lim", 10, 2))
		return r
	}
	t.Run("holds every line", func(t *testing.T) {
		r := setup(t)
		res := r.one(reserve("r", "o1", "u", 500, 1000, Line{"a", 2}, Line{"b", 1}))
		wantCode(t, res, api.OK)
		if res.Order.Status != OrderHeld || res.Order.ExpiresAt != 1500 || res.Order.CreatedAt != 1000 {
			t.Fatalf("order %+v", res.Order)
		}
		if a := r.sku("a"); a.Available != 3 || a.Reserved != 2 {
			t.Fatalf("a %+v", a)
		}
		if b := r.sku("b"); b.Available != 0 || b.Reserved != 1 {
			t.Fatalf("b %+v", b)
		}
	})
	rejections := []struct {
		name string
		cmd  Command
		code api.Code
	}{
		{"one line short holds nothing", reserve("r", "o1", "u", 500, 1000, Line{"a", 2}, Line{"b", 2}), api.InsufficientStock},
		{"a line of an unknown sku holds nothing", reserve("r", "o1", "u", 500, 1000, Line{"a", 1}, Line{"b", 1}, Line{"b2", 1}), api.NotFound},
		{"unknown sku", reserve("r", "o1", "u", 500, 1000, Line{"zz", 1}), api.NotFound},
		{"over the limit", reserve("r", "o1", "u", 500, 1000, Line{"a", 1}, Line{"lim", 3}), api.LimitExceeded},
		{"duplicate line", reserve("r", "o1", "u", 500, 1000, Line{"a", 1}, Line{"a", 1}), api.InvalidArgument},
		{"no lines", reserve("r", "o1", "u", 500, 1000), api.InvalidArgument},
		{"zero ttl", reserve("r", "o1", "u", 0, 1000, Line{"a", 1}), api.InvalidArgument},
		{"ttl too long", reserve("r", "o1", "u", MaxTTLMillis+1, 1000, Line{"a", 1}), api.InvalidArgument},
		{"no order id", reserve("r", "", "u", 10, 1000, Line{"a", 1}), api.InvalidArgument},
		{"no user", reserve("r", "o1", "", 10, 1000, Line{"a", 1}), api.InvalidArgument},
	}
	for _, tc := range rejections {
		t.Run(tc.name, func(t *testing.T) {
			r := setup(t)
			before, _ := r.m.ListSKUs("", "", 10)
			wantCode(t, r.one(tc.cmd), tc.code)
			after, _ := r.m.ListSKUs("", "", 10)
			if !slices.Equal(before, after) {
				t.Fatalf("rejected reserve changed SKUs: %+v → %+v", before, after)
			}
			if _, err := r.m.GetOrder("o1", 1000); err == nil {
				t.Fatal("rejected reserve created the order")
			}
		})
	}
	t.Run("sold out line", func(t *testing.T) {
		r := setup(t)
		r.one(deduct("d", "b", "x", 1))
		wantCode(t, r.one(reserve("r", "o1", "u", 500, 1000, Line{"a", 1}, Line{"b", 1})), api.SoldOut)
	})
	t.Run("existing order id", func(t *testing.T) {
		r := setup(t)
		r.one(reserve("r1", "o1", "u", 500, 1000, Line{"a", 1}))
		wantCode(t, r.one(reserve("r2", "o1", "u", 500, 1000, Line{"a", 1})), api.AlreadyExists)
		if a := r.sku("a"); a.Reserved != 1 {
			t.Fatalf("a %+v", a)
		}
	})
}

func TestOrderLifecycle(t *testing.T) {
	type step struct {
		cmd    Command
		code   api.Code
		status OrderStatus
	}
	hold := reserve("r", "o", "u", 100, 1000, Line{"a", 2})
	cases := []struct {
		name             string
		steps            []step
		avail, res, sold int64
	}{
		{"confirm then ship", []step{
			{hold, api.OK, OrderHeld},
			{orderCmd(KindConfirm, "c", "o", 1050), api.OK, OrderConfirmed},
			{orderCmd(KindShip, "s", "o", 1060), api.OK, OrderShipped},
		}, 3, 0, 2},
		{"cancel releases", []step{
			{hold, api.OK, OrderHeld},
			{orderCmd(KindCancel, "x", "o", 1050), api.OK, OrderCancelled},
		}, 5, 0, 0},
		{"confirm after ttl is expired even before the sweep, and releases", []step{
			{hold, api.OK, OrderHeld},
			{orderCmd(KindConfirm, "c", "o", 1100), api.Expired, OrderExpired},
			{orderCmd(KindCancel, "x", "o", 1101), api.Expired, OrderExpired},
			{expire(1200), api.OK, OrderExpired},
		}, 5, 0, 0},
		{"cancel after ttl is expired, not cancelled", []step{
			{hold, api.OK, OrderHeld},
			{orderCmd(KindCancel, "x", "o", 1100), api.Expired, OrderExpired},
		}, 5, 0, 0},
		{"ship of a hold after ttl is expired", []step{
			{hold, api.OK, OrderHeld},
			{orderCmd(KindShip, "s", "o", 1100), api.Expired, OrderExpired},
		}, 5, 0, 0},
		{"ship of an expired order is expired", []step{
			{hold, api.OK, OrderHeld},
			{expire(1100), api.OK, OrderExpired},
			{orderCmd(KindShip, "s", "o", 1200), api.Expired, OrderExpired},
		}, 5, 0, 0},
		{"sweep expires, then confirm and cancel say expired", []step{
			{hold, api.OK, OrderHeld},
			{expire(1099), api.OK, OrderHeld},
			{expire(1100), api.OK, OrderExpired},
			{orderCmd(KindConfirm, "c", "o", 1200), api.Expired, OrderExpired},
			{orderCmd(KindCancel, "x", "o", 1200), api.Expired, OrderExpired},
		}, 5, 0, 0},
		{"ship needs confirm", []step{
			{hold, api.OK, OrderHeld},
			{orderCmd(KindShip, "s", "o", 1050), api.FailedPrecondition, OrderHeld},
		}, 3, 2, 0},
		{"confirm twice", []step{
			{hold, api.OK, OrderHeld},
			{orderCmd(KindConfirm, "c1", "o", 1050), api.OK, OrderConfirmed},
			{orderCmd(KindConfirm, "c2", "o", 1051), api.FailedPrecondition, OrderConfirmed},
			{orderCmd(KindCancel, "x", "o", 1052), api.FailedPrecondition, OrderConfirmed},
		}, 3, 0, 2},
		{"confirmed orders do not expire", []step{
			{hold, api.OK, OrderHeld},
			{orderCmd(KindConfirm, "c", "o", 1050), api.OK, OrderConfirmed},
			{expire(5000), api.OK, OrderConfirmed},
		}, 3, 0, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReplica(t, Options{})
			r.one(Command{Kind: KindSetLevel, Level: 1})
			r.one(create("a", 5, 3))
			for i, st := range tc.steps {
				res := r.one(st.cmd)
				wantCode(t, res, st.code)
				o, err := r.m.GetOrder("o", st.cmd.Time)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if o.Status != st.status {
					t.Fatalf("step %d: status %s, want %s", i, o.Status, st.status)
				}
			}
			a := r.sku("a")
			if a.Available != tc.avail || a.Reserved != tc.res || a.Sold != tc.sold {
				t.Fatalf("sku %+v, want available %d reserved %d sold %d", a, tc.avail, tc.res, tc.sold)
			}
		})
	}
	t.Run("unknown order", func(t *testing.T) {
		r := newReplica(t, Options{})
		for _, k := range []Kind{KindConfirm, KindCancel, KindShip} {
			wantCode(t, r.one(orderCmd(k, "q"+k.String(), "nope", 1)), api.NotFound)
		}
	})
}

// An action that finds its order past the hold releases it as the expiry round would: the
// ledger says expire, the user's limit is given back, and no later command can cancel it.
func TestOrderPastHold_ReleasedAsExpiredByTheAction(t *testing.T) {
	for _, k := range []Kind{KindConfirm, KindCancel, KindShip} {
		t.Run(k.String(), func(t *testing.T) {
			r := newReplica(t, Options{})
			r.one(Command{Kind: KindSetLevel, Level: 1})
			r.one(create("a", 5, 2))
			r.one(reserve("r", "o", "u", 100, 1000, Line{"a", 2}))
			act := orderCmd(k, "act", "o", 1100)
			res := r.one(act)
			wantCode(t, res, api.Expired)
			if !slices.Equal(res.Changed, []string{"a"}) {
				t.Fatalf("changed %q: watchers must hear of the release", res.Changed)
			}
			if a := r.sku("a"); a.Available != 5 || a.Reserved != 0 {
				t.Fatalf("sku %+v, want the hold back in available", a)
			}
			if got := r.one(act); got.Code != api.Expired || !got.Duplicate {
				t.Fatalf("retry %+v, want the first answer", got)
			}
			wantCode(t, r.one(orderCmd(KindCancel, "later", "o", 1101)), api.Expired)
			if got := r.one(expire(1200)).Expired; got != 0 {
				t.Fatalf("the sweep released %d holds again", got)
			}
			moves, err := r.m.History("a", 10)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []MovementKind
			for _, m := range moves {
				kinds = append(kinds, m.Kind)
			}
			if want := []MovementKind{MoveCreate, MoveReserve, MoveExpire}; !slices.Equal(kinds, want) {
				t.Fatalf("ledger %v, want %v", kinds, want)
			}
			// The limit counted the hold; the release gave it back.
			wantCode(t, r.one(reserve("r2", "o2", "u", 100, 1200, Line{"a", 2})), api.OK)
		})
	}
}

// A read judges the hold by the reader's now; it changes nothing stored.
func TestGetOrder_PastHoldReadsExpired(t *testing.T) {
	r := newReplica(t, Options{})
	r.one(Command{Kind: KindSetLevel, Level: 1})
	r.one(create("a", 5, 0))
	r.one(reserve("r1", "held", "u", 100, 1000, Line{"a", 1}))
	r.one(reserve("r2", "paid", "u", 100, 1000, Line{"a", 1}))
	r.one(orderCmd(KindConfirm, "c", "paid", 1050))
	for _, tc := range []struct {
		id   string
		now  int64
		want OrderStatus
	}{
		{"held", 1099, OrderHeld},
		{"held", 1100, OrderExpired},
		{"held", 1099, OrderHeld}, // the read at 1100 stored nothing
		{"paid", 9999, OrderConfirmed},
	} {
		o, err := r.m.GetOrder(tc.id, tc.now)
		if err != nil || o.Status != tc.want {
			t.Fatalf("%s at %d: %s (%v), want %s", tc.id, tc.now, o.Status, err, tc.want)
		}
	}
	if a := r.sku("a"); a.Reserved != 1 {
		t.Fatalf("sku %+v: a read released a hold", a)
	}
}

// Until the log raises the apply level, an action on an order past its hold does what builds
// before level 1 did (level.go), so replicas of both builds agree during a rolling upgrade;
// from the SetLevel entry on, every replica uses the new rule.
func TestApplyLevel_OrderPastHoldRulesSwitchAtTheSetLevelEntry(t *testing.T) {
	r := newReplica(t, Options{})
	r.one(create("a", 9, 0))
	for _, id := range []string{"c", "x", "s", "late"} {
		r.one(reserve("r-"+id, id, "u", 100, 1000, Line{"a", 1}))
	}
	wantCode(t, r.one(orderCmd(KindConfirm, "c1", "c", 1100)), api.Expired)
	wantCode(t, r.one(orderCmd(KindCancel, "x1", "x", 1100)), api.OK) // level 0 cancels
	wantCode(t, r.one(orderCmd(KindShip, "s1", "s", 1100)), api.FailedPrecondition)
	if o, _ := r.m.GetOrder("c", 1100); o.Status != OrderHeld {
		t.Fatalf("level 0: a refused confirm left the order %s, want held until the sweep", o.Status)
	}
	if a := r.sku("a"); a.Reserved != 3 || a.Available != 6 {
		t.Fatalf("level 0: sku %+v, want 3 reserved (c, s, late) and 6 available", a)
	}
	if r.m.Level() != 0 {
		t.Fatalf("level %d before any SetLevel", r.m.Level())
	}

	wantCode(t, r.one(Command{Kind: KindSetLevel, Level: 1}), api.OK)
	if r.m.Level() != 1 {
		t.Fatalf("level %d after SetLevel 1", r.m.Level())
	}
	wantCode(t, r.one(orderCmd(KindCancel, "x2", "late", 1101)), api.Expired)
	if o, _ := r.m.GetOrder("c", 1101); o.Status != OrderExpired {
		t.Fatalf("level 1: order c reads %s, want expired", o.Status)
	}
	if a := r.sku("a"); a.Reserved != 2 {
		t.Fatalf("level 1: sku %+v, want late's hold released", a)
	}
	// A lower level changes nothing; the level survives a reopen.
	wantCode(t, r.one(Command{Kind: KindSetLevel, Level: 1}), api.OK)
	r.m = r.reopen(Options{NoSync: true})
	if r.m.Level() != 1 {
		t.Fatalf("level %d after reopening", r.m.Level())
	}
}

// A level this build does not know stops the replica instead of applying the log under
// older rules than the replicas that know it.
func TestApplyLevel_UnknownLevelPoisons(t *testing.T) {
	r := newReplica(t, Options{})
	e := r.entry(Command{Kind: KindSetLevel, Level: ApplyLevel + 1})
	if _, err := r.m.ApplyBatch([]Entry{e}); err == nil || !strings.Contains(err.Error(), "upgrade this node") {
		t.Fatalf("apply of level %d: %v, want a fatal error", ApplyLevel+1, err)
	}
	if _, err := r.m.ApplyBatch([]Entry{r.entry(create("a", 1, 0))}); !errors.Is(err, ErrPoisoned) {
		t.Fatalf("apply after the unknown level: %v, want ErrPoisoned", err)
	}
}

func TestExpireHolds_ReleasesLimitAndOrder(t *testing.T) {
	r := newReplica(t, Options{})
	r.one(create("a", 10, 2))
	r.one(reserve("r1", "o1", "u", 10, 1000, Line{"a", 2}))
	r.one(reserve("r2", "o2", "v", 30, 1000, Line{"a", 1}))
	wantCode(t, r.one(deduct("d1", "a", "u", 1)), api.LimitExceeded)
	res := r.one(expire(1010))
	if res.Expired != 1 {
		t.Fatalf("expired %d, want 1", res.Expired)
	}
	// The user's held units no longer count against the limit.
	wantCode(t, r.one(deduct("d2", "a", "u", 2)), api.OK)
	if a := r.sku("a"); a.Available != 7 || a.Reserved != 1 || a.Sold != 2 {
		t.Fatalf("sku %+v", a)
	}
	if got := r.one(expire(1030)).Expired; got != 1 {
		t.Fatalf("second sweep expired %d", got)
	}
	if got := r.one(expire(9999)).Expired; got != 0 {
		t.Fatalf("empty sweep expired %d", got)
	}
}

func TestExpireHolds_BoundedPerCommand(t *testing.T) {
	r := newReplica(t, Options{})
	r.one(create("a", MaxExpirePerCommand+5, 0))
	var cmds []Command
	for i := 0; i < MaxExpirePerCommand+5; i++ {
		cmds = append(cmds, reserve("r"+itoa(i), "o"+itoa(i), "u", 1, int64(1000+i), Line{"a", 1}))
	}
	r.apply(cmds...)
	if got := r.one(expire(1 << 40)).Expired; got != MaxExpirePerCommand {
		t.Fatalf("first sweep %d, want %d", got, MaxExpirePerCommand)
	}
	if got := r.one(expire(1 << 40)).Expired; got != 5 {
		t.Fatalf("second sweep %d, want 5", got)
	}
	if a := r.sku("a"); a.Available != MaxExpirePerCommand+5 || a.Reserved != 0 {
		t.Fatalf("sku %+v", a)
	}
}

func TestBatch_OneResultPerCommand(t *testing.T) {
	r := newReplica(t, Options{})
	r.one(create("a", 2, 0))
	res := r.one(Command{Kind: KindBatch, Time: 5, Batch: []Command{
		deduct("b1", "a", "u", 1),
		deduct("b2", "a", "u", 1),
		deduct("b3", "a", "u", 1),
		deduct("b1", "a", "u", 1),
	}})
	wantCode(t, res, api.OK)
	codes := []api.Code{api.OK, api.OK, api.SoldOut, api.OK}
	for i, sub := range res.Batch {
		wantCode(t, sub, codes[i])
	}
	if !res.Batch[3].Duplicate || res.Batch[3].SKU.Available != 1 {
		t.Fatalf("repeat inside the batch: %+v", res.Batch[3])
	}
	if a := r.sku("a"); a.Sold != 2 || a.Version != r.index {
		t.Fatalf("sku %+v", a)
	}
	wantCode(t, r.one(Command{Kind: KindBatch}), api.InvalidArgument)
	nested := Command{Kind: KindBatch, Batch: []Command{{Kind: KindBatch}}}
	if _, err := Encode(nested); err == nil {
		t.Fatal("nested batch encoded")
	}
}

func TestApply_GarbageIsRejectedNotFatal(t *testing.T) {
	r := newReplica(t, Options{})
	r.index++
	res, err := r.m.ApplyBatch([]Entry{{Index: r.index, Data: []byte{1, 200, 3}}, {Index: r.index + 1}})
	if err != nil {
		t.Fatal(err)
	}
	r.index++
	wantCode(t, res[0], api.InvalidArgument)
	wantCode(t, res[1], api.OK)
	if r.m.AppliedIndex() != 2 {
		t.Fatalf("applied %d, want 2: garbage and no-ops still advance the index", r.m.AppliedIndex())
	}
}

func TestApply_ResultNamesEverySKUTheEntryChanged(t *testing.T) {
	r := newReplica(t, Options{})
	batch := Command{Kind: KindBatch, Time: 1000, Batch: []Command{
		deduct("b1", "b", "u", 1), deduct("b2", "a", "u", 1), deduct("b3", "b", "u", 1), deduct("b4", "zz", "u", 1)}}
	for _, tc := range []struct {
		name string
		cmd  Command
		want []string
	}{
		{"create", create("a", 5, 0), []string{"a"}},
		{"create another", create("b", 5, 0), []string{"b"}},
		{"deduct", deduct("d", "a", "u", 1), []string{"a"}},
		{"a duplicate changes nothing", deduct("d", "a", "u", 1), nil},
		{"a rejection changes nothing", deduct("d2", "a", "u", 99), nil},
		{"reserve, lines in order", reserve("r", "o", "u", 100, 1000, Line{"b", 1}, Line{"a", 1}), []string{"b", "a"}},
		{"expiry", expire(1100), []string{"b", "a"}},
		{"an empty expiry", expire(1200), nil},
		{"a batch, each sku once", batch, []string{"b", "a"}},
	} {
		if got := r.one(tc.cmd).Changed; !slices.Equal(got, tc.want) {
			t.Fatalf("%s: changed %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Validate's errors are *api.Error today; apply must not depend on it. A panic there would
// stop every replica on the same entry, and again on each replay of the log.
func TestApply_ValidationErrorOfAnyTypeIsARejection(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		msg  string
	}{
		{"plain error", errors.New("rule broken"), "rule broken"},
		{"wrapped api error", fmt.Errorf("line 3: %w", api.Errorf(api.InvalidArgument, "qty must be 1..9")), "qty must be 1..9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReplica(t, Options{})
			r.one(create("a", 5, 0))
			r.m.validate = func(Command) error { return tc.err }
			res := r.one(deduct("d", "a", "u", 1))
			wantCode(t, res, api.InvalidArgument)
			if res.Message != tc.msg {
				t.Fatalf("message %q, want %q", res.Message, tc.msg)
			}
			if r.m.AppliedIndex() != r.index {
				t.Fatalf("applied %d, want %d: a rejected entry is still applied", r.m.AppliedIndex(), r.index)
			}
			if a := r.sku("a"); a.Available != 5 {
				t.Fatalf("rejected deduct changed %+v", a)
			}
		})
	}
}

func TestApply_IndexesMustIncrease(t *testing.T) {
	r := newReplica(t, Options{})
	_, err := r.m.ApplyBatch([]Entry{{Index: 5}, {Index: 5}})
	if err == nil {
		t.Fatal("repeated index accepted")
	}
	if _, err := r.m.ApplyBatch([]Entry{{Index: 6}}); err != ErrPoisoned {
		t.Fatalf("apply after a fatal error: %v, want ErrPoisoned", err)
	}
}

func TestHistory(t *testing.T) {
	r := newReplica(t, Options{LedgerMax: 4})
	r.one(create("a", 10, 0))
	r.one(deduct("d1", "a", "u1", 1))
	r.one(reserve("r1", "o1", "u2", 100, 1000, Line{"a", 2}))
	r.one(orderCmd(KindConfirm, "c1", "o1", 1001))
	kinds := func(sku string, limit int) []MovementKind {
		t.Helper()
		h, err := r.m.History(sku, limit)
		if err != nil {
			t.Fatal(err)
		}
		out := []MovementKind{}
		for _, mv := range h {
			if mv.SKU != sku {
				t.Fatalf("history of %s holds %+v", sku, mv)
			}
			out = append(out, mv.Kind)
		}
		return out
	}
	if got := kinds("a", 10); !slices.Equal(got, []MovementKind{MoveCreate, MoveDeduct, MoveReserve, MoveConfirm}) {
		t.Fatalf("history kinds %v", got)
	}
	h, _ := r.m.History("a", 10)
	if h[3].OrderID != "o1" || h[3].UserID != "u2" || h[3].Qty != 2 || h[3].Index != 4 || h[3].Seq != 4 {
		t.Fatalf("confirm movement %+v", h[3])
	}
	if got := kinds("a", 1); !slices.Equal(got, []MovementKind{MoveConfirm}) {
		t.Fatalf("limit 1 gave %v", got)
	}
	// A fifth movement, of another SKU, pushes the oldest of all out of the ledger; the
	// two SKUs' histories stay apart.
	r.one(create("a2", 1, 0))
	if got := kinds("a", 10); !slices.Equal(got, []MovementKind{MoveDeduct, MoveReserve, MoveConfirm}) {
		t.Fatalf("after retention: history kinds %v", got)
	}
	if got := kinds("a2", 10); !slices.Equal(got, []MovementKind{MoveCreate}) {
		t.Fatalf("history of a2: %v", got)
	}
	if err := r.m.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.m.History("zz", 10); err == nil {
		t.Fatal("history of unknown sku")
	}
}

func TestListSKUs(t *testing.T) {
	r := newReplica(t, Options{})
	r.apply(create("b:1", 1, 0), create("a:2", 1, 0), create("a:1", 1, 0), create("c", 1, 0))
	names := func(ss []SKU) string {
		var n []string
		for _, s := range ss {
			n = append(n, s.SKU)
		}
		return strings.Join(n, ",")
	}
	for _, tc := range []struct {
		prefix, after string
		limit         int
		want          string
	}{
		{"", "", 10, "a:1,a:2,b:1,c"},
		{"a:", "", 10, "a:1,a:2"},
		{"", "", 2, "a:1,a:2"},
		{"", "a:2", 10, "b:1,c"},
		{"a:", "a:1", 10, "a:2"},
		{"zz", "", 10, ""},
	} {
		got, err := r.m.ListSKUs(tc.prefix, tc.after, tc.limit)
		if err != nil || names(got) != tc.want {
			t.Errorf("list(%q, %q, %d) = %s, %v; want %s", tc.prefix, tc.after, tc.limit, names(got), err, tc.want)
		}
	}
}

func TestMembers(t *testing.T) {
	r := newReplica(t, Options{})
	set := func(id, raft, http string) Command {
		return Command{Kind: KindSetMember, Member: Member{ID: id, RaftAddr: raft, HTTPAddr: http}}
	}
	r.apply(set("n2", "r2", "h2"), set("n1", "r1", "h1"), set("n1", "r1", "h1b"))
	wantCode(t, r.one(set("n3", "r 3", "h3")), api.InvalidArgument)
	wantCode(t, r.one(set("n3", "", "h3")), api.InvalidArgument)
	v := r.m.MembersVersion()
	r.one(deduct("d", "nope", "u", 1))
	if r.m.MembersVersion() != v {
		t.Fatal("members version moved without a member change")
	}
	got, err := r.m.Members()
	if err != nil || len(got) != 2 || got[0] != (Member{"n1", "r1", "h1b"}) || got[1].ID != "n2" {
		t.Fatalf("members %+v %v", got, err)
	}
	r.one(Command{Kind: KindRemoveMember, Member: Member{ID: "n2"}})
	if r.m.MembersVersion() == v {
		t.Fatal("members version did not move on removal")
	}
	if got, _ := r.m.Members(); len(got) != 1 {
		t.Fatalf("after remove: %+v", got)
	}
}

// The fingerprint stored with each request id is part of the replicated state: it must stay
// the FNV-1a of the command's encoding with its time zeroed.
func TestFingerprint_IsTheEncodingWithoutTime(t *testing.T) {
	c := deduct("r", "s", "u", 3)
	a := &applier{}
	zero := c
	zero.Time = 0
	b, _ := Encode(zero)
	h := fnv.New64a()
	h.Write(b)
	if got := a.fingerprint(c); got != h.Sum64() {
		t.Fatalf("fingerprint %x, want %x", got, h.Sum64())
	}
}
