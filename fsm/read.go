package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/flashstock/flashstock/api"
)

// Reads see every batch applied. They are local: making them linearizable (or saying how
// stale they are) is the caller's job. With Options.DeferCommit a read commits what is
// staged first, except GetSKU, which finds staged SKUs in the machine's staged view.

func (m *Machine) view(fn func(tx *bolt.Tx) error) error {
	if m.staged.Load() > m.applied.Load() {
		if err := m.Flush(); err != nil {
			return err
		}
	}
	return m.viewCommitted(fn)
}

// viewCommitted reads the last commit, however many batches are staged after it.
func (m *Machine) viewCommitted(fn func(tx *bolt.Tx) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.db == nil {
		return errors.New("fsm: read of a closed machine")
	}
	return m.db.View(fn)
}

// GetSKU returns a SKU, or an *api.Error with code not_found.
func (m *Machine) GetSKU(sku string) (SKU, error) {
	m.stagedMu.RLock()
	staged, ok := m.stagedSKUs[sku]
	m.stagedMu.RUnlock()
	if ok {
		return staged, nil
	}
	// Not changed since the last commit (a commit in between only makes the file newer).
	var s skuRecord
	err := m.viewCommitted(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSKUs).Get([]byte(sku))
		if v == nil {
			return api.Errorf(api.NotFound, "sku %q not found", sku)
		}
		var err error
		s, err = decodeSKU(sku, v)
		return err
	})
	return s.SKU, err
}

// ListSKUs returns up to limit SKUs whose id starts with prefix, in id order, starting
// after the id `after` (for paging; "" to start at the beginning).
func (m *Machine) ListSKUs(prefix, after string, limit int) ([]SKU, error) {
	out := []SKU{}
	err := m.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSKUs).Cursor()
		p := []byte(prefix)
		k, v := c.Seek(p)
		if after != "" && after >= prefix {
			k, v = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, p) && len(out) < limit; k, v = c.Next() {
			s, err := decodeSKU(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, s.SKU)
		}
		return nil
	})
	return out, err
}

// GetOrder returns an order as of now (Unix ms, the caller's notion of the time the log
// has reached), or an *api.Error with code not_found. An order past its hold at now reads
// as expired, as any action on it would find it, even before a command has released it
// (from apply level 1, as the actions).
func (m *Machine) GetOrder(id string, now int64) (Order, error) {
	var o Order
	err := m.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketOrders).Get([]byte(id))
		if v == nil {
			return api.Errorf(api.NotFound, "order %q not found", id)
		}
		var err error
		o, err = decodeOrder(v)
		return err
	})
	if err == nil && m.Level() >= 1 && o.pastHold(now) {
		o.Status = OrderExpired
	}
	return o, err
}

// History returns a SKU's most recent movements still in the ledger, at most limit, oldest
// first, or an *api.Error with code not_found for an unknown SKU.
func (m *Machine) History(sku string, limit int) ([]Movement, error) {
	out := []Movement{}
	err := m.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSKUs).Get([]byte(sku))
		if v == nil {
			return api.Errorf(api.NotFound, "sku %q not found", sku)
		}
		s, err := decodeSKU(sku, v)
		if err != nil {
			return err
		}
		md, err := decodeMeta(tx.Bucket(bucketMeta).Get(metaKey))
		if err != nil {
			return err
		}
		floor := ledgerFloor(&md) // older movements went with the ledger's retention
		moves := seqReader{l: ledgerLayout, b: tx.Bucket(bucketLedger)}
		for seq := s.LastMove; seq != 0 && seq >= floor && len(out) < limit; {
			v, err := moves.get(seq)
			if err != nil {
				return err
			}
			if v == nil {
				return nil
			}
			mv, err := decodeMovement(seq, v)
			if err != nil {
				return err
			}
			if mv.SKU != sku {
				return fmt.Errorf("history of %q: movement %d belongs to %q", sku, seq, mv.SKU)
			}
			out = append(out, mv.Movement)
			seq = mv.Prev
		}
		return nil
	})
	slices.Reverse(out)
	return out, err
}

// DedupLen is how many request ids the exactly-once table remembers.
func (m *Machine) DedupLen() int {
	n := 0
	_ = m.view(func(tx *bolt.Tx) error {
		// The live records are every seq from the first stored one (or the floor) to the
		// newest: pruning only ever takes the oldest.
		k, _ := tx.Bucket(bucketDedup).Cursor().First()
		if k == nil {
			return nil
		}
		md, err := decodeMeta(tx.Bucket(bucketMeta).Get(metaKey))
		if err != nil {
			return err
		}
		n = int(md.DedupSeq - max(beUint64(k), dedupFloor(&md)) + 1)
		return nil
	})
	return n
}

// Members lists the membership records, by id.
func (m *Machine) Members() ([]Member, error) {
	out := []Member{}
	err := m.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMembers).ForEach(func(k, v []byte) error {
			mb, err := decodeMember(string(k), v)
			out = append(out, mb)
			return err
		})
	})
	return out, err
}
