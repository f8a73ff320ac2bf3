package fsm

import (
	"fmt"

	"github.com/flashstock/flashstock/api"
	bolt "go.etcd.io/bbolt"
)

// stagedTx is a write transaction and its applier. Committing a bbolt transaction costs
// far more than a batch of deductions in it: the touched pages of every bucket are read
// into nodes, rebalanced, spilled and written back, the SKUs changed are put again, the
// meta page written. With Options.DeferCommit, ApplyBatch leaves the transaction open and
// later batches go on in it (with the same applier: a SKU changed by ten batches is put
// once), so a sale spreads those costs over many batches, as etcd's backend does.
//
// Reads still see every batch applied: GetSKU through the staged view (stageSKUs), every
// other read by committing first (read.go), WaitApplied by committing what it waits for.
// AppliedIndex is the last entry committed. Nothing is lost by waiting to commit: the
// state file is not fsynced per commit anyway, and a replica replays what a crash of the
// process took from its log, from AppliedIndex on, as after any restart.
type stagedTx struct {
	tx      *bolt.Tx
	a       *applier
	next    meta
	batches int // ApplyBatch calls in this transaction
	ops     int // commands applied in it, a batch's commands each
}

// A staged transaction commits after this many ApplyBatch calls or commands, bounding the
// memory it holds (bbolt keeps every value put until the end) and how much a commit
// writes at once.
const (
	maxStagedBatches = 64
	maxStagedOps     = 2048
)

func (p *stagedTx) apply(entries []Entry, results []Result) error {
	last := p.next.Applied
	for i, e := range entries {
		if e.Index <= p.next.Applied {
			results[i] = Result{Code: api.OK, Skipped: true}
			continue
		}
		if e.Index <= last {
			return fmt.Errorf("entry index %d after %d: indexes must increase", e.Index, last)
		}
		last = e.Index
		res, err := p.a.applyEntry(e)
		if err != nil {
			return fmt.Errorf("apply entry %d: %w", e.Index, err)
		}
		results[i] = res
		p.ops += max(1, len(res.Batch))
	}
	p.next.Applied = max(p.next.Applied, last)
	return nil
}

// commitLocked commits the staged transaction, if any, and publishes it: meta, members
// version, applied index (apply changed the dedup index already). The caller holds m.mu
// (read) and m.wmu.
func (m *Machine) commitLocked() error {
	p := m.open
	if p == nil {
		return nil
	}
	m.open = nil
	err := p.a.flush()
	if err == nil {
		err = p.tx.Bucket(bucketMeta).Put(metaKey, p.next.encode())
	}
	if err == nil {
		err = p.tx.Commit()
	} else {
		p.tx.Rollback()
	}
	if err != nil {
		m.poisoned.Store(true)
		return fmt.Errorf("fsm: commit (fatal): %w", err)
	}
	m.meta = p.next
	if p.a.membersChanged {
		m.membersVersion.Add(1)
	}
	if p.next.Applied != m.applied.Load() {
		m.setApplied(p.next.Applied)
	}
	// Only after the commit: until then, a reader missing the staged view would read the
	// file from before the batches it missed.
	if len(m.skus) > m.opts.MaxCachedSKUs {
		m.dropSKUs()
	}
	return nil
}

// stageSKUs shows the SKUs the batch changed to GetSKU before they are committed.
func (m *Machine) stageSKUs(a *applier) {
	m.stagedMu.Lock()
	for _, s := range a.changed {
		m.stagedSKUs[s.SKU.SKU] = s.SKU
	}
	m.stagedMu.Unlock()
	a.changed = a.changed[:0]
}

// Flush commits what ApplyBatch left staged (Options.DeferCommit), so reads see it. A
// caller deferring commits calls it when its log goes quiet, or on a timer: nothing else
// commits the last batches of a burst until a reader waits for them.
func (m *Machine) Flush() error {
	if m.poisoned.Load() {
		return ErrPoisoned
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.db == nil {
		return errClosed
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	return m.commitLocked()
}

// discardLocked rolls back the staged transaction, if any: bbolt cannot close a file while
// a write transaction is open. The caller holds m.wmu.
func (m *Machine) discardLocked() {
	if m.open != nil {
		m.open.tx.Rollback()
		m.open = nil
	}
	m.dropSKUs()
}

// dropSKUs empties the SKU cache and the staged view. The caller holds m.wmu.
func (m *Machine) dropSKUs() {
	clear(m.skus)
	m.stagedMu.Lock()
	clear(m.stagedSKUs)
	m.stagedMu.Unlock()
}
