package fsm

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

// A reference model of the state machine: plain maps, no storage, written from DESIGN.md's
// table rather than from the implementation. The property test drives both with the same
// random commands and demands the same answers and the same SKUs and orders.

type model struct {
	skus    map[string]*SKU
	orders  map[string]*Order
	users   map[string]int64 // sku ‖ 0 ‖ user
	dedup   []modelDedup     // oldest first
	logTime int64
	window  int64
	max     int
	index   uint64
	time    int64
	level   uint64
}

type modelDedup struct {
	id, fp string
	time   int64
	res    Result
}

func newModel(window time.Duration, max int) *model {
	return &model{skus: map[string]*SKU{}, orders: map[string]*Order{}, users: map[string]int64{},
		window: window.Milliseconds(), max: max}
}

func (m *model) apply(index uint64, c Command) Result {
	m.index = index
	for _, k := range append([]Command{c}, c.Batch...) {
		if (k.Kind == KindAdjust || k.Kind == KindRetire) && m.level < 1 {
			return Result{Code: api.InvalidArgument} // an older build cannot decode it
		}
	}
	t := c.Time
	for _, s := range c.Batch {
		t = max(t, s.Time)
	}
	m.logTime = max(m.logTime, t)
	m.time = c.Time
	for len(m.dedup) > 0 && m.dedup[0].time < m.logTime-m.window {
		m.dedup = m.dedup[1:]
	}
	if err := Validate(c); err != nil {
		return Result{Code: api.InvalidArgument}
	}
	if c.Kind == KindBatch {
		res := Result{Code: api.OK}
		for _, s := range c.Batch {
			res.Batch = append(res.Batch, m.once(s))
		}
		return res
	}
	return m.once(c)
}

func (m *model) once(c Command) Result {
	if c.Time != 0 {
		m.time = c.Time
	}
	key := c
	key.Time = 0
	fp := fmt.Sprintf("%+v", key)
	if c.RequestID != "" {
		for _, d := range m.dedup {
			if d.id == c.RequestID {
				if d.fp != fp {
					return Result{Code: api.InvalidArgument}
				}
				r := d.res
				r.Duplicate = true
				return r
			}
		}
	}
	res := m.exec(c)
	if c.RequestID != "" {
		m.dedup = append(m.dedup, modelDedup{id: c.RequestID, fp: fp, time: m.logTime, res: res})
		if len(m.dedup) > m.max {
			m.dedup = m.dedup[1:]
		}
	}
	return res
}

func (m *model) take(s *SKU, user string, qty int64) api.Code {
	switch {
	case s.Retired:
		return api.FailedPrecondition
	case s.Available == 0:
		return api.SoldOut
	case s.PerUserLimit > 0 && m.users[s.SKU+"\x00"+user]+qty > s.PerUserLimit:
		return api.LimitExceeded
	case s.Available < qty:
		return api.InsufficientStock
	}
	return api.OK
}

func (m *model) countUser(s *SKU, user string, d int64) {
	if s.PerUserLimit > 0 {
		m.users[s.SKU+"\x00"+user] += d
	}
}

func (m *model) exec(c Command) Result {
	switch c.Kind {
	case KindCreateSKU:
		if m.skus[c.SKU] != nil {
			return Result{Code: api.AlreadyExists}
		}
		s := &SKU{SKU: c.SKU, Available: c.Qty, PerUserLimit: c.PerUserLimit, Version: m.index}
		m.skus[c.SKU] = s
		return Result{Code: api.OK, SKU: *s}
	case KindRestock:
		s := m.skus[c.SKU]
		if s == nil {
			return Result{Code: api.NotFound}
		}
		if s.Retired {
			return Result{Code: api.FailedPrecondition}
		}
		s.Available += c.Qty
		s.Version = m.index
		return Result{Code: api.OK, SKU: *s}
	case KindAdjust:
		s := m.skus[c.SKU]
		switch {
		case s == nil:
			return Result{Code: api.NotFound}
		case s.Retired:
			return Result{Code: api.FailedPrecondition}
		case s.Available+c.Qty < 0:
			return Result{Code: api.InsufficientStock}
		}
		s.Available += c.Qty
		s.Version = m.index
		return Result{Code: api.OK, SKU: *s}
	case KindRetire:
		s := m.skus[c.SKU]
		switch {
		case s == nil:
			return Result{Code: api.NotFound}
		case s.Retired || s.Reserved > 0:
			return Result{Code: api.FailedPrecondition}
		}
		s.Available, s.Retired, s.Version = 0, true, m.index
		return Result{Code: api.OK, SKU: *s}
	case KindDeduct:
		s := m.skus[c.SKU]
		if s == nil {
			return Result{Code: api.NotFound}
		}
		if code := m.take(s, c.UserID, c.Qty); code != api.OK {
			return Result{Code: code, SKU: *s}
		}
		s.Available -= c.Qty
		s.Sold += c.Qty
		s.Version = m.index
		m.countUser(s, c.UserID, c.Qty)
		return Result{Code: api.OK, SKU: *s}
	case KindReserve:
		if m.orders[c.OrderID] != nil {
			return Result{Code: api.AlreadyExists}
		}
		for _, l := range c.Lines {
			s := m.skus[l.SKU]
			if s == nil {
				return Result{Code: api.NotFound}
			}
			if code := m.take(s, c.UserID, l.Qty); code != api.OK {
				return Result{Code: code}
			}
		}
		for _, l := range c.Lines {
			s := m.skus[l.SKU]
			s.Available -= l.Qty
			s.Reserved += l.Qty
			s.Version = m.index
			m.countUser(s, c.UserID, l.Qty)
		}
		o := &Order{OrderID: c.OrderID, UserID: c.UserID, Lines: c.Lines, Status: OrderHeld,
			CreatedAt: m.time, ExpiresAt: m.time + c.TTLMillis, Version: m.index}
		m.orders[c.OrderID] = o
		return Result{Code: api.OK, Order: *o}
	case KindConfirm, KindCancel, KindShip:
		o := m.orders[c.OrderID]
		if o == nil {
			return Result{Code: api.NotFound}
		}
		// From level 1, past its hold an order is expired for every action: released now
		// if no sweep has. At level 0 only confirm refuses it, and ship names its status.
		if m.level >= 1 && o.Status == OrderHeld && m.time >= o.ExpiresAt {
			m.release(o, OrderExpired)
		}
		switch {
		case o.Status == OrderExpired && c.Kind == KindShip && m.level < 1:
			return Result{Code: api.FailedPrecondition}
		case o.Status == OrderExpired:
			return Result{Code: api.Expired}
		case c.Kind == KindShip && o.Status != OrderConfirmed, c.Kind != KindShip && o.Status != OrderHeld:
			return Result{Code: api.FailedPrecondition}
		case c.Kind == KindConfirm && m.time >= o.ExpiresAt:
			return Result{Code: api.Expired}
		}
		if c.Kind != KindShip {
			st := OrderConfirmed
			if c.Kind == KindCancel {
				st = OrderCancelled
			}
			m.release(o, st)
			return Result{Code: api.OK, Order: *o}
		}
		o.Status = OrderShipped
		o.Version = m.index
		return Result{Code: api.OK, Order: *o}
	case KindSetLevel:
		m.level = max(m.level, c.Level)
		return Result{Code: api.OK}
	case KindExpireHolds:
		// Oldest expiry first, ties by order id, at most MaxExpirePerCommand.
		var due []*Order
		for _, o := range m.orders {
			if o.Status == OrderHeld && o.ExpiresAt <= m.time {
				due = append(due, o)
			}
		}
		sortOrders(due)
		if len(due) > MaxExpirePerCommand {
			due = due[:MaxExpirePerCommand]
		}
		for _, o := range due {
			m.release(o, OrderExpired)
		}
		return Result{Code: api.OK, Expired: int64(len(due))}
	}
	panic("model: unknown kind")
}

func (m *model) release(o *Order, st OrderStatus) {
	for _, l := range o.Lines {
		s := m.skus[l.SKU]
		s.Reserved -= l.Qty
		if st == OrderConfirmed {
			s.Sold += l.Qty
		} else {
			s.Available += l.Qty
			m.countUser(s, o.UserID, -l.Qty)
		}
		s.Version = m.index
	}
	o.Status = st
	o.Version = m.index
}

func sortOrders(os []*Order) {
	for i := 1; i < len(os); i++ {
		for j := i; j > 0 && (os[j].ExpiresAt < os[j-1].ExpiresAt ||
			os[j].ExpiresAt == os[j-1].ExpiresAt && os[j].OrderID < os[j-1].OrderID); j-- {
			os[j], os[j-1] = os[j-1], os[j]
		}
	}
}

// gen makes random but meaningful commands: few SKUs, users and orders, so commands collide,
// and request ids that repeat, so exactly-once is exercised.
type gen struct {
	rng   *rand.Rand
	clock int64
	reqs  []Command // commands sent, for retries
	n     int
}

func (g *gen) command() Command {
	g.clock += int64(g.rng.IntN(50))
	if len(g.reqs) > 0 && g.rng.IntN(10) == 0 { // a retry, perhaps much later
		c := g.reqs[g.rng.IntN(len(g.reqs))]
		c.Time = g.clock
		return c
	}
	g.n++
	req := fmt.Sprintf("req-%d", g.n)
	sku := fmt.Sprintf("s%d", g.rng.IntN(4))
	user := fmt.Sprintf("u%d", g.rng.IntN(3))
	order := fmt.Sprintf("o%d", g.rng.IntN(12))
	qty := int64(g.rng.IntN(4)) // 0 is invalid on purpose, now and then
	var c Command
	switch k := g.rng.IntN(100); {
	case k < 8:
		c = Command{Kind: KindCreateSKU, SKU: sku, Qty: int64(g.rng.IntN(12)), PerUserLimit: int64(g.rng.IntN(3)) * 2}
		if g.rng.IntN(2) == 0 {
			c.RequestID = req
		}
	case k < 15:
		c = Command{Kind: KindRestock, RequestID: req, SKU: sku, Qty: qty}
	case k < 45:
		c = Command{Kind: KindDeduct, RequestID: req, SKU: sku, UserID: user, Qty: qty}
	case k < 60:
		lines := []Line{{SKU: sku, Qty: max(qty, 1)}}
		if g.rng.IntN(2) == 0 {
			lines = append(lines, Line{SKU: fmt.Sprintf("s%d", g.rng.IntN(4)), Qty: 1})
		}
		c = Command{Kind: KindReserve, RequestID: req, OrderID: order, UserID: user, Lines: lines, TTLMillis: int64(1 + g.rng.IntN(300))}
	case k < 70:
		c = Command{Kind: KindConfirm, RequestID: req, OrderID: order}
	case k < 78:
		c = Command{Kind: KindCancel, RequestID: req, OrderID: order}
	case k < 83:
		c = Command{Kind: KindShip, RequestID: req, OrderID: order}
	case k < 86:
		c = Command{Kind: KindExpireHolds}
	case k < 88:
		c = Command{Kind: KindAdjust, RequestID: req, SKU: sku, Qty: qty - 2, Reason: "miscount"} // 0 is invalid
	case k < 89:
		c = Command{Kind: KindRetire, RequestID: req, SKU: sku}
	case k < 90: // the apply level goes up once in a while, as in a rolling upgrade
		c = Command{Kind: KindSetLevel, Level: uint64(g.rng.IntN(ApplyLevel + 1))}
	default:
		c = Command{Kind: KindBatch}
		for i := 0; i < 1+g.rng.IntN(5); i++ {
			sub := g.command()
			for sub.Kind == KindBatch {
				sub = g.command()
			}
			c.Batch = append(c.Batch, sub)
		}
	}
	c.Time = g.clock
	g.reqs = append(g.reqs, c)
	return c
}

var (
	modelSeed = flag.Uint64("fsm.seed", 0, "seed for the model-based test (0: time-based)")
	modelRuns = flag.Int("fsm.runs", 200, "random command sequences in the model-based test")
)

// modelSeedAndRuns is the base seed (-fsm.seed, else the clock, logged for a rerun) and
// the number of runs (-fsm.runs, at most 50 with -short) of a model-based test.
func modelSeedAndRuns(t *testing.T, name string) (uint64, int) {
	seed := *modelSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	runs := *modelRuns
	if testing.Short() {
		runs = min(runs, 50)
	}
	t.Logf("seed %d (rerun: go test ./fsm -run %s -fsm.seed=%d)", seed, name, seed)
	return seed, runs
}

func TestModel_RandomSequencesAgree(t *testing.T) {
	seed, runs := modelSeedAndRuns(t, "TestModel")
	const steps = 60
	for run := 0; run < runs; run++ {
		runSeed := seed + uint64(run)
		rng := rand.New(rand.NewPCG(runSeed, 0))
		window, dmax := 24*time.Hour, 1_000_000
		if run%3 == 1 { // small dedup table and window: pruning happens
			window, dmax = time.Duration(100+rng.IntN(500))*time.Millisecond, 5+rng.IntN(10)
		}
		if err := modelRun(t, rng, steps, Options{DedupWindow: window, DedupMax: uint64(dmax)}); err != nil {
			t.Fatalf("seed %d (run %d of base seed %d): %v", runSeed, run, seed, err)
		}
	}
}

// The same sequences with commits deferred over several batches (Options.DeferCommit):
// every answer must match the model although the transaction spans batches, and the state
// must match it whenever the staged batches are flushed.
func TestModel_DeferredCommitsAgree(t *testing.T) {
	seed, runs := modelSeedAndRuns(t, "TestModel_Deferred")
	for run := 0; run < runs; run++ {
		runSeed := seed + uint64(run)
		rng := rand.New(rand.NewPCG(runSeed, 2))
		opts := Options{DedupWindow: 24 * time.Hour, DedupMax: 1_000_000, LedgerMax: 1_000_000, DeferCommit: true}
		if run%2 == 1 { // pruning within and across staged batches
			opts.DedupWindow, opts.DedupMax = time.Duration(100+rng.IntN(500))*time.Millisecond, uint64(5+rng.IntN(10))
			opts.LedgerMax = uint64(5 + rng.IntN(20))
		}
		if err := modelRun(t, rng, 80, opts); err != nil {
			t.Fatalf("seed %d (run %d of base seed %d): %v", runSeed, run, seed, err)
		}
	}
}

// The same sequences with a dedup index whose hash always collides: answers and states
// must not change.
func TestModel_CollidingDedupHashAgrees(t *testing.T) {
	collideDedup = true
	defer func() { collideDedup = false }()
	seed := uint64(time.Now().UnixNano())
	if *modelSeed != 0 {
		seed = *modelSeed
	}
	t.Logf("seed %d", seed)
	for run := 0; run < 40; run++ {
		rng := rand.New(rand.NewPCG(seed+uint64(run), 1))
		window, dmax := time.Duration(100+rng.IntN(500))*time.Millisecond, 5+rng.IntN(10)
		if err := modelRun(t, rng, 80, Options{DedupWindow: window, DedupMax: uint64(dmax)}); err != nil {
			t.Fatalf("seed %d (run %d of base seed %d): %v", seed+uint64(run), run, seed, err)
		}
	}
}

func modelRun(t *testing.T, rng *rand.Rand, steps int, opts Options) error {
	r := newReplica(t, opts)
	ref := newModel(opts.DedupWindow, int(opts.DedupMax))
	g := &gen{rng: rng, clock: 1000}
	for step := 0; step < steps; {
		// Several entries per transaction, as raft's batches deliver them.
		n := 1 + rng.IntN(4)
		var cmds []Command
		for i := 0; i < n; i++ {
			cmds = append(cmds, g.command())
		}
		got := r.apply(cmds...)
		for i, c := range cmds {
			want := ref.apply(r.index-uint64(n-1-i), c)
			if err := sameResult(got[i], want); err != nil {
				return fmt.Errorf("step %d, %s %+v: %v", step+i, c.Kind, c, err)
			}
		}
		step += n
		if opts.DeferCommit {
			if rng.IntN(3) > 0 && step < steps {
				if r.m.AppliedIndex() > r.index || r.m.StagedIndex() != r.index {
					return fmt.Errorf("after step %d: applied %d, staged %d, last entry %d", step, r.m.AppliedIndex(), r.m.StagedIndex(), r.index)
				}
				// Staged: GetSKU answers from the staged view, everything else is checked at
				// the next flush (other reads would commit).
				for name, want := range ref.skus {
					if got, err := r.m.GetSKU(name); err != nil || got != *want {
						return fmt.Errorf("after step %d: staged GetSKU %+v (%v), model %+v", step, got, err, *want)
					}
				}
				continue
			}
			if err := r.m.Flush(); err != nil {
				return err
			}
			if r.m.AppliedIndex() != r.index {
				return fmt.Errorf("after step %d and a flush: applied %d, last entry %d", step, r.m.AppliedIndex(), r.index)
			}
			r.check(cmds)
		}
		if err := sameState(r.m, ref); err != nil {
			return fmt.Errorf("after step %d: %v", step, err)
		}
	}
	return nil
}

func sameResult(got, want Result) error {
	if got.Code != want.Code || got.Duplicate != want.Duplicate || got.Expired != want.Expired {
		return fmt.Errorf("got %s dup=%v expired=%d (%s), model %s dup=%v expired=%d",
			got.Code, got.Duplicate, got.Expired, got.Message, want.Code, want.Duplicate, want.Expired)
	}
	if got.SKU != want.SKU {
		return fmt.Errorf("sku %+v, model %+v", got.SKU, want.SKU)
	}
	if fmt.Sprint(got.Order) != fmt.Sprint(want.Order) {
		return fmt.Errorf("order %+v, model %+v", got.Order, want.Order)
	}
	if len(got.Batch) != len(want.Batch) {
		return fmt.Errorf("%d batch results, model %d", len(got.Batch), len(want.Batch))
	}
	for i := range got.Batch {
		if err := sameResult(got.Batch[i], want.Batch[i]); err != nil {
			return fmt.Errorf("batch[%d]: %v", i, err)
		}
	}
	return nil
}

func sameState(m *Machine, ref *model) error {
	skus, err := m.ListSKUs("", "", 1000)
	if err != nil {
		return err
	}
	if len(skus) != len(ref.skus) {
		return fmt.Errorf("%d skus, model %d", len(skus), len(ref.skus))
	}
	for _, s := range skus {
		if *ref.skus[s.SKU] != s {
			return fmt.Errorf("sku %+v, model %+v", s, *ref.skus[s.SKU])
		}
	}
	for id, o := range ref.orders {
		want := *o
		if ref.level >= 1 && want.Status == OrderHeld && ref.time >= want.ExpiresAt {
			want.Status = OrderExpired // what a read at the last command's time shows
		}
		got, err := m.GetOrder(id, ref.time)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("order %+v (%v), model %+v", got, err, want)
		}
	}
	if n := m.DedupLen(); n != len(ref.dedup) {
		return fmt.Errorf("dedup remembers %d, model %d", n, len(ref.dedup))
	}
	return nil
}
