package fsm

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/flashstock/flashstock/api"
)

// replica is a Machine under test with its own log index counter.
type replica struct {
	t     testing.TB
	m     *Machine
	index uint64
}

func newReplica(t testing.TB, opts Options) *replica {
	t.Helper()
	opts.NoSync = true
	m, err := Open(filepath.Join(t.TempDir(), "state.db"), opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if collideDedup {
		m.idHash = func(string) uint64 { return 7 }
		m.dedup = newDedupIndex(m.idHash)
	}
	t.Cleanup(func() { m.Close() })
	return &replica{t: t, m: m}
}

// reopen closes the replica's file and opens it again with opts; the caller closes it.
// newReplicaAtLevel is newReplica with the apply level raised, as the leader does once
// every member's build knows it.
func newReplicaAtLevel(t testing.TB, opts Options, level uint64) *replica {
	t.Helper()
	r := newReplica(t, opts)
	if level > 0 {
		wantCode(t, r.one(Command{Kind: KindSetLevel, Level: level}), api.OK)
	}
	return r
}

func (r *replica) reopen(opts Options) *Machine {
	r.t.Helper()
	path := r.m.Path()
	if err := r.m.Close(); err != nil {
		r.t.Fatal(err)
	}
	m, err := Open(path, opts)
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

// entry encodes c as the next log entry.
func (r *replica) entry(c Command) Entry {
	r.t.Helper()
	b, err := Encode(c)
	if err != nil {
		r.t.Fatalf("encode %+v: %v", c, err)
	}
	r.index++
	return Entry{Index: r.index, Data: b}
}

// apply appends each command as its own entry in one batch and returns the results.
func (r *replica) apply(cmds ...Command) []Result {
	r.t.Helper()
	entries := make([]Entry, len(cmds))
	for i, c := range cmds {
		entries[i] = r.entry(c)
	}
	res, err := r.m.ApplyBatch(entries)
	if err != nil {
		r.t.Fatalf("apply: %v", err)
	}
	if r.m.opts.DeferCommit {
		return res // the committed state may be batches behind: modelRun checks it at flushes
	}
	r.check(cmds)
	return res
}

// check verifies the invariants of the committed state.
func (r *replica) check(cmds []Command) {
	r.t.Helper()
	if err := r.m.CheckInvariants(); err != nil {
		r.t.Fatalf("invariants after %v: %v", cmds, err)
	}
	if err := r.m.checkDedupIndex(); err != nil {
		r.t.Fatalf("dedup index after %v: %v", cmds, err)
	}
}

// checkDedupIndex: the in-memory index nominates each live record's seq for its id, and
// holds nothing else.
func (m *Machine) checkDedupIndex() error {
	n := 0
	err := m.view(func(tx *bolt.Tx) error {
		md, err := decodeMeta(tx.Bucket(bucketMeta).Get(metaKey))
		if err != nil {
			return err
		}
		return dedupLayout.each(tx.Bucket(bucketDedup), dedupFloor(&md), func(seq uint64, rec []byte) error {
			id, _, err := dedupHead(rec)
			if err != nil {
				return err
			}
			n++
			if got, ok := m.dedup.candidate(id, m.dedup.hash(id)); !ok || got != seq {
				return fmt.Errorf("index nominates %d (%v) for %q, record is %d", got, ok, id, seq)
			}
			return nil
		})
	})
	if err == nil && m.dedup.len() != n {
		err = fmt.Errorf("index holds %d ids, table %d", m.dedup.len(), n)
	}
	return err
}

func (r *replica) one(c Command) Result {
	r.t.Helper()
	return r.apply(c)[0]
}

func (r *replica) sku(name string) SKU {
	r.t.Helper()
	s, err := r.m.GetSKU(name)
	if err != nil {
		r.t.Fatalf("get sku %q: %v", name, err)
	}
	return s
}

func (r *replica) hash() [32]byte {
	r.t.Helper()
	h, err := r.m.StateHash()
	if err != nil {
		r.t.Fatalf("hash: %v", err)
	}
	return h
}

func wantCode(t testing.TB, res Result, code api.Code) {
	t.Helper()
	if res.Code != code {
		t.Fatalf("code %q (%s), want %q", res.Code, res.Message, code)
	}
}

// Command builders keep the tables readable.
func create(sku string, stock, limit int64) Command {
	return Command{Kind: KindCreateSKU, SKU: sku, Qty: stock, PerUserLimit: limit, Time: 1000}
}
func restock(req, sku string, qty int64) Command {
	return Command{Kind: KindRestock, RequestID: req, SKU: sku, Qty: qty, Time: 1000}
}
func deduct(req, sku, user string, qty int64) Command {
	return Command{Kind: KindDeduct, RequestID: req, SKU: sku, UserID: user, Qty: qty, Time: 1000}
}
func reserve(req, order, user string, ttl, at int64, lines ...Line) Command {
	return Command{Kind: KindReserve, RequestID: req, OrderID: order, UserID: user, TTLMillis: ttl, Lines: lines, Time: at}
}
func orderCmd(kind Kind, req, order string, at int64) Command {
	return Command{Kind: kind, RequestID: req, OrderID: order, Time: at}
}
func expire(at int64) Command { return Command{Kind: KindExpireHolds, Time: at} }

func itoa(i int) string { return strconv.Itoa(i) }

// collideDedup makes every new replica's dedup index hash all ids alike, so every id but
// the first of each live set goes through the index's exact map.
var collideDedup bool
