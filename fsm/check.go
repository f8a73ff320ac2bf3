package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// StateHash digests every bucket, key and value in key order. Two replicas that applied the
// same log prefix have the same hash; cluster tests compare it across nodes.
func (m *Machine) StateHash() ([32]byte, error) {
	_, sum, err := m.HashAt()
	return sum, err
}

// HashAt is StateHash together with the applied index it was taken at, both read in one
// transaction, so a checker comparing live replicas compares like with like.
func (m *Machine) HashAt() (uint64, [32]byte, error) {
	var sum [32]byte
	var applied uint64
	err := m.view(func(tx *bolt.Tx) error {
		md, err := decodeMeta(tx.Bucket(bucketMeta).Get(metaKey))
		if err != nil {
			return err
		}
		applied = md.Applied
		h := sha256.New()
		var n [binary.MaxVarintLen64]byte
		put := func(b []byte) {
			h.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
			h.Write(b)
		}
		for _, name := range allBuckets {
			put(name)
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				put(k)
				put(v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		copy(sum[:], h.Sum(nil))
		return nil
	})
	return applied, sum, err
}

// CheckInvariants verifies the state's internal consistency and returns every violation
// found (joined), or nil:
//   - per SKU: available, reserved, sold >= 0 and available+reserved+sold == restocked;
//   - reserved == the units of the SKU in held orders;
//   - every held order has exactly one hold entry and every hold entry a held order;
//   - per-user counts never exceed the SKU's limit;
//   - the ledger keeps at most its retention; every movement it keeps is on its SKU's
//     chain of links (newest first, each to an older movement of the same SKU);
//   - the dedup table has one record per request id, oldest first, within its bound.
func (m *Machine) CheckInvariants() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	err := m.view(func(tx *bolt.Tx) error {
		md, err := decodeMeta(tx.Bucket(bucketMeta).Get(metaKey))
		if err != nil {
			return err
		}
		skus := map[string]skuRecord{}
		err = tx.Bucket(bucketSKUs).ForEach(func(k, v []byte) error {
			s, err := decodeSKU(string(k), v)
			if err != nil {
				return err
			}
			skus[s.SKU.SKU] = s
			if s.Available < 0 || s.Reserved < 0 || s.Sold < 0 {
				fail("sku %q: negative column: %+v", s.SKU.SKU, s.SKU)
			}
			if s.Total() != s.Restocked {
				fail("sku %q: available+reserved+sold = %d, restocked %d", s.SKU.SKU, s.Total(), s.Restocked)
			}
			if s.Retired && (s.Available != 0 || s.Reserved != 0) {
				fail("sku %q: retired with stock: %+v", s.SKU.SKU, s.SKU)
			}
			if s.LastMove > md.MoveSeq {
				fail("sku %q: newest movement %d is past the ledger's last seq %d", s.SKU.SKU, s.LastMove, md.MoveSeq)
			}
			return nil
		})
		if err != nil {
			return err
		}
		held := map[string]int64{}
		holds := tx.Bucket(bucketHolds)
		err = tx.Bucket(bucketOrders).ForEach(func(k, v []byte) error {
			o, err := decodeOrder(v)
			if err != nil {
				return err
			}
			hasHold := holds.Get(holdKey(o.ExpiresAt, o.OrderID)) != nil
			if (o.Status == OrderHeld) != hasHold {
				fail("order %q: status %s, hold entry present %v", o.OrderID, o.Status, hasHold)
			}
			if o.Status == OrderHeld {
				for _, l := range o.Lines {
					held[l.SKU] += l.Qty
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n := holds.Stats().KeyN; n != countHeld(tx) {
			fail("%d hold entries for %d held orders", n, countHeld(tx))
		}
		for name, s := range skus {
			if s.Reserved != held[name] {
				fail("sku %q: reserved %d, held orders hold %d", name, s.Reserved, held[name])
			}
		}
		for name, q := range held {
			if _, ok := skus[name]; !ok {
				fail("held orders hold %d of unknown sku %q", q, name)
			}
		}
		err = tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			name, _, _ := bytes.Cut(k, []byte{0})
			s, ok := skus[string(name)]
			n := int64(beUint64(v))
			if !ok || s.PerUserLimit == 0 || n <= 0 || n > s.PerUserLimit {
				fail("user count %q = %d breaks the limit of its sku", k, n)
			}
			return nil
		})
		if err != nil {
			return err
		}
		kept := map[string]int{}
		ledger := tx.Bucket(bucketLedger)
		floor, live := ledgerFloor(&md), uint64(0)
		err = ledgerLayout.each(ledger, floor, func(seq uint64, rec []byte) error {
			mv, err := decodeMovement(seq, rec)
			if err != nil {
				return err
			}
			if _, ok := skus[mv.SKU]; !ok {
				fail("movement %d of unknown sku %q", mv.Seq, mv.SKU)
			}
			kept[mv.SKU]++
			live++
			return nil
		})
		if err != nil {
			return err
		}
		if live > md.LedgerMax {
			fail("ledger holds %d movements, retention %d", live, md.LedgerMax)
		}
		moves := seqReader{l: ledgerLayout, b: ledger}
		for name, s := range skus {
			chain := 0
			for seq := s.LastMove; seq != 0 && seq >= floor; chain++ {
				v, err := moves.get(seq)
				if err != nil {
					return err
				}
				if v == nil {
					break
				}
				mv, err := decodeMovement(seq, v)
				if err != nil {
					return err
				}
				if mv.SKU != name {
					fail("sku %q: its chain reaches movement %d of %q", name, seq, mv.SKU)
					break
				}
				seq = mv.Prev
			}
			if chain != kept[name] {
				fail("sku %q: %d movements on its chain, the ledger keeps %d", name, chain, kept[name])
			}
		}
		seen := map[string]bool{}
		prevTime := int64(-1 << 63)
		next := uint64(0) // the seq after the last record seen
		err = dedupLayout.each(tx.Bucket(bucketDedup), dedupFloor(&md), func(seq uint64, rec []byte) error {
			d, err := decodeDedup(rec)
			if err != nil {
				return err
			}
			if seen[d.RequestID] {
				fail("request id %q remembered twice", d.RequestID)
			}
			seen[d.RequestID] = true
			if d.Time < prevTime {
				fail("dedup record %d is older than the one before it", seq)
			}
			if next != 0 && seq != next {
				fail("dedup record %d follows %d: the live records are not contiguous", seq, next-1)
			}
			prevTime, next = d.Time, seq+1
			return nil
		})
		if err == nil && next != 0 && next-1 != md.DedupSeq {
			fail("the newest dedup record is %d, the sequence is at %d", next-1, md.DedupSeq)
		}
		if err != nil {
			return err
		}
		if uint64(len(seen)) > md.DedupMax {
			fail("dedup table holds %d, bound %d", len(seen), md.DedupMax)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check invariants: %w", err)
	}
	return errors.Join(errs...)
}

func countHeld(tx *bolt.Tx) int {
	n := 0
	_ = tx.Bucket(bucketOrders).ForEach(func(_, v []byte) error {
		if o, err := decodeOrder(v); err == nil && o.Status == OrderHeld {
			n++
		}
		return nil
	})
	return n
}
