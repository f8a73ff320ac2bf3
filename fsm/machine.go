package fsm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Options are the settings of a state file. The retention settings shape the state itself,
// so they are fixed when the file is created and travel in snapshots: a later Open or a
// restored snapshot keeps the values it was created with, and every replica prunes alike.
type Options struct {
	// DedupWindow is how long, in log time, a request_id is remembered. Default 15 min.
	DedupWindow time.Duration
	// DedupMax bounds the exactly-once table; past it the oldest entries go first.
	// Default 2,000,000.
	DedupMax uint64
	// LedgerMax bounds the movements the audit ledger keeps, across all SKUs; the oldest
	// go first. Default 2,000,000.
	LedgerMax uint64
	// NoSync skips fsync on commit: a crash of the process loses nothing (the writes are in
	// the page cache), but after a crash of the machine the file may be stale or torn. Only
	// for a caller that can rebuild the state from elsewhere (a replica: from its raft
	// snapshot and log) and calls Sync before a clean Close.
	NoSync bool
	// DeferCommit lets ApplyBatch leave its transaction open for the next batches (see
	// stagedTx). Reads still see every batch applied (read.go); AppliedIndex is the last
	// one committed, and the caller calls Flush now and then so it keeps up. Only for a
	// caller that can replay from its log what a crash of the process took (a replica),
	// like NoSync.
	DeferCommit bool
	// Mode is the file mode for new state files. Default 0600.
	Mode os.FileMode
	// MaxCachedSKUs bounds the SKU cache and the staged view (Machine.skus): a sale's
	// working set fits, a catalogue of millions does not stay in memory. Default 65,536.
	MaxCachedSKUs int
}

func (o Options) withDefaults() Options {
	if o.DedupWindow <= 0 {
		o.DedupWindow = 15 * time.Minute
	}
	if o.DedupMax == 0 {
		o.DedupMax = 2_000_000
	}
	if o.LedgerMax == 0 {
		o.LedgerMax = 2_000_000
	}
	if o.Mode == 0 {
		o.Mode = 0o600
	}
	if o.MaxCachedSKUs <= 0 {
		o.MaxCachedSKUs = 1 << 16
	}
	return o
}

// ErrPoisoned is returned by every ApplyBatch after a storage failure.
var ErrPoisoned = errors.New("fsm: replica poisoned by an earlier storage failure")

// Machine is the bbolt-backed inventory state machine.
type Machine struct {
	path string
	opts Options

	// mu guards db and dedup against Restore, which swaps them; everything else takes it
	// for reading.
	mu sync.RWMutex
	db *bolt.DB
	// meta mirrors the meta bucket; only ApplyBatch and Restore touch it.
	meta meta
	// dedup indexes request_id → seq of its record in bucketDedup. It is rebuilt from the
	// bucket on Open and Restore, kept in memory so a lookup costs no B+tree walk and the
	// bucket stays append-only. Apply changes it as it adds and forgets records, staged or
	// not, holding dedupMu for the batch; other readers (Remembers) take dedupMu too.
	dedup   *dedupIndex
	dedupMu sync.RWMutex
	idHash  func(string) uint64 // the dedup index's hash; nil: FNV-1a (tests set a colliding one)
	// validate is apply's input check: Validate (tests set one that fails another way).
	validate func(Command) error

	// wmu guards open: ApplyBatch, Flush and whatever ends the file (Close, Restore) take it
	// after mu.
	wmu  sync.Mutex
	open *stagedTx // the write transaction ApplyBatch left open, or nil

	applied atomic.Uint64 // the last entry committed: what reads see
	staged  atomic.Uint64 // the last entry applied, committed or not
	logTime atomic.Int64  // meta.LogTime as of the last entry applied, committed or not
	level   atomic.Uint64 // meta.Level likewise
	waiters atomic.Int64  // readers in WaitApplied; ApplyBatch commits at once for them
	// skus caches SKU records as of the last batch applied, committed or staged, for
	// apply alone (under wmu): a sale over many SKUs would otherwise read each from the
	// B+tree again in every transaction. Kept across commits, bounded by MaxCachedSKUs,
	// dropped with a discarded transaction. batches numbers ApplyBatch calls for it.
	skus    map[string]*skuRecord
	batches uint64
	// stagedSKUs holds the SKUs changed since the cache was last dropped, as of the last
	// batch (with Options.DeferCommit; else it stays empty): GetSKU looks here first, so
	// the read a flash sale makes most (stock, on every deduction's way in) neither waits
	// for nor forces a commit, nor reads the B+tree.
	stagedMu   sync.RWMutex
	stagedSKUs map[string]SKU
	// membersVersion moves whenever the member records may have changed, so readers can
	// cache them.
	membersVersion atomic.Uint64
	notifyMu       sync.Mutex
	notify         chan struct{} // closed and replaced whenever the applied index moves
	poisoned       atomic.Bool
}

// meta is the state kept in bucketMeta.
type meta struct {
	Applied     uint64
	LogTime     int64 // largest command time seen: the clock of the log
	MoveSeq     uint64
	DedupSeq    uint64
	DedupWindow int64 // ms
	DedupMax    uint64
	LedgerMax   uint64
	Level       uint64 // the apply level in force (level.go); stored only once raised
}

// formatVersion is the layout of the whole state file. 3: an entry's exactly-once records
// are one value, and so are its ledger movements (seqgroup.go). 2: one append-only ledger
// for all SKUs with per-SKU links and a global retention (1 kept a key range per SKU). A
// format-2 file is a valid format-3 file (its records are groups of one) and is read as
// one; the first commit marks it 3, so an older build refuses it instead of misreading a
// group.
const formatVersion = 3

var metaKey = []byte("state")

func (m *meta) encode() []byte {
	w := writer{b: make([]byte, 0, 48)}
	w.byte(formatVersion)
	w.uvarint(m.Applied)
	w.varint(m.LogTime)
	w.uvarint(m.MoveSeq)
	w.uvarint(m.DedupSeq)
	w.varint(m.DedupWindow)
	w.uvarint(m.DedupMax)
	w.uvarint(m.LedgerMax)
	// Written only once raised, so a state that never left level 0 stays readable by the
	// builds before levels (they refuse a meta record with more fields).
	if m.Level > 0 {
		w.uvarint(m.Level)
	}
	return w.b
}

func decodeMeta(b []byte) (meta, error) {
	r := reader{b: b}
	if v := r.byte(); v != formatVersion && v != 2 && r.err == nil {
		return meta{}, fmt.Errorf("state format version %d, this build reads 2 and %d", v, formatVersion)
	}
	m := meta{Applied: r.uvarint(), LogTime: r.varint(), MoveSeq: r.uvarint(), DedupSeq: r.uvarint(),
		DedupWindow: r.varint(), DedupMax: r.uvarint(), LedgerMax: r.uvarint()}
	if len(r.b) > 0 && r.err == nil {
		m.Level = r.uvarint()
	}
	if err := r.done(); err != nil {
		return meta{}, fmt.Errorf("meta record: %w", err)
	}
	return m, nil
}

// Open opens or creates the state file at path.
func Open(path string, opts Options) (*Machine, error) {
	opts = opts.withDefaults()
	m := &Machine{path: path, opts: opts, notify: make(chan struct{}), skus: map[string]*skuRecord{}, stagedSKUs: map[string]SKU{},
		validate: Validate}
	db, err := openDB(path, opts)
	if err != nil {
		return nil, err
	}
	if err := m.adopt(db); err != nil {
		db.Close()
		return nil, err
	}
	return m, nil
}

func openDB(path string, opts Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, opts.Mode, &bolt.Options{
		Timeout: timeoutOpen,
		NoSync:  opts.NoSync,
		// Growing the file truncates it and fsyncs it, which without NoSync is the cost of
		// one more sync, but with it flushes every page written since the last one: 16 MB of
		// a busy sale's ledger at a time, tens of milliseconds with the state lock held. A
		// file that is never synced gains nothing from syncing its size (etcd's backend
		// pairs the two options the same way).
		NoGrowSync: opts.NoSync,
		// A large initial mapping keeps the file from being remapped as it grows; a remap
		// waits for every read transaction, and a snapshot being streamed is one.
		InitialMmapSize: 1 << 30,
		FreelistType:    bolt.FreelistMapType,
		NoFreelistSync:  true,
	})
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketMeta)
		if b.Get(metaKey) != nil {
			return nil
		}
		fresh := meta{DedupWindow: opts.DedupWindow.Milliseconds(), DedupMax: opts.DedupMax, LedgerMax: opts.LedgerMax}
		return b.Put(metaKey, fresh.encode())
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init state %s: %w", path, err)
	}
	return db, nil
}

// adopt makes db the machine's state: reads meta and rebuilds the dedup index.
func (m *Machine) adopt(db *bolt.DB) error {
	var md meta
	dedup := newDedupIndex(m.idHash)
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		if md, err = decodeMeta(tx.Bucket(bucketMeta).Get(metaKey)); err != nil {
			return err
		}
		return dedupLayout.each(tx.Bucket(bucketDedup), dedupFloor(&md), func(seq uint64, rec []byte) error {
			id, _, err := dedupHead(rec)
			if err != nil {
				return err
			}
			dedup.add(id, dedup.hash(id), seq)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	m.dedupMu.Lock()
	m.db, m.meta, m.dedup = db, md, dedup
	m.dedupMu.Unlock()
	m.membersVersion.Add(1)
	m.staged.Store(md.Applied)
	m.logTime.Store(md.LogTime)
	m.level.Store(md.Level)
	m.setApplied(md.Applied)
	return nil
}

// Sync flushes every committed transaction to disk (for a machine opened with NoSync).
func (m *Machine) Sync() error {
	if err := m.Flush(); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.db == nil {
		return errClosed
	}
	return m.db.Sync()
}

// Close commits what is staged and closes the state file.
func (m *Machine) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.db == nil {
		return nil
	}
	m.wmu.Lock()
	var err error
	if m.poisoned.Load() {
		m.discardLocked()
	} else {
		err = m.commitLocked()
		m.discardLocked() // after a failed commit
	}
	m.wmu.Unlock()
	err = errors.Join(err, m.db.Close())
	m.db = nil
	return err
}

// Remembers reports whether the exactly-once table holds requestID as of the last applied
// batch: a request it holds must go through the log to get its first answer back.
func (m *Machine) Remembers(requestID string) bool {
	found := false
	_ = m.view(func(tx *bolt.Tx) error {
		// view committed what was staged, so this read holds every record the index named
		// then. A batch applied since may have named records the read cannot see (found
		// stays false: they came later than it) or forgotten some (pruned since, as the log
		// would find them now).
		m.dedupMu.RLock()
		seq, ok := m.dedup.candidate(requestID, m.dedup.hash(requestID))
		m.dedupMu.RUnlock()
		if !ok {
			return nil
		}
		md, err := decodeMeta(tx.Bucket(bucketMeta).Get(metaKey))
		if err != nil || seq < dedupFloor(&md) { // below the floor: forgotten, maybe still stored
			return nil
		}
		r := seqReader{l: dedupLayout, b: tx.Bucket(bucketDedup)}
		if rec, err := r.get(seq); rec != nil && err == nil {
			id, _, err := dedupHead(rec)
			found = err == nil && id == requestID
		}
		return nil
	})
	return found
}

// MembersVersion changes whenever the member records may have changed (a member command
// applied, a snapshot restored): a reader may cache Members until it moves.
func (m *Machine) MembersVersion() uint64 { return m.membersVersion.Load() }

// Path is the state file's location.
func (m *Machine) Path() string { return m.path }

// AppliedIndex is the index of the last entry whose effects are committed: what reads see.
func (m *Machine) AppliedIndex() uint64 { return m.applied.Load() }

// LogTime is the log's clock (cluster time, in ms) as of the last entry applied: the
// largest time stamped into a command so far. A new leader continues cluster time from it.
func (m *Machine) LogTime() int64 { return m.logTime.Load() }

// StagedIndex is the index of the last entry applied, committed or still staged.
func (m *Machine) StagedIndex() uint64 { return m.staged.Load() }

func (m *Machine) setApplied(idx uint64) {
	m.applied.Store(idx)
	m.notifyMu.Lock()
	close(m.notify)
	m.notify = make(chan struct{})
	m.notifyMu.Unlock()
}

// WaitApplied blocks until the applied index reaches idx (committing it if it is staged)
// or ctx ends. A linearizable read waits here for the commit index it recorded.
func (m *Machine) WaitApplied(ctx context.Context, idx uint64) error {
	// Counted before staged is read: an ApplyBatch that stages idx after our look either
	// sees a waiter and commits, or staged shows it to us.
	m.waiters.Add(1)
	defer m.waiters.Add(-1)
	for {
		m.notifyMu.Lock()
		ch := m.notify
		m.notifyMu.Unlock()
		if m.applied.Load() >= idx {
			return nil
		}
		if m.staged.Load() >= idx {
			if err := m.Flush(); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ApplyBatch applies entries in order, in one bbolt transaction, and gives one result per
// entry. It is called from one goroutine at a time with strictly increasing indexes, never
// concurrently with Restore; reads may run concurrently with both. An error means storage
// failed: the machine is poisoned and the process must stop. With Options.DeferCommit the
// transaction may stay open for later batches (see stagedTx).
func (m *Machine) ApplyBatch(entries []Entry) ([]Result, error) {
	if m.poisoned.Load() {
		return nil, ErrPoisoned
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.db == nil {
		return nil, errors.New("fsm: apply on a closed machine")
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if m.open == nil {
		tx, err := m.db.Begin(true)
		if err != nil {
			m.poisoned.Store(true)
			return nil, fmt.Errorf("fsm: apply batch (fatal): %w", err)
		}
		p := &stagedTx{tx: tx, next: m.meta} // a copy: adopted only if the transaction commits
		p.a = newApplier(tx, &p.next, m.dedup, m.skus)
		p.a.stage = m.opts.DeferCommit
		p.a.validate = m.validate
		m.open = p
	}
	p := m.open
	m.batches++
	p.a.batch = m.batches
	results := make([]Result, len(entries))
	m.dedupMu.Lock()
	err := p.apply(entries, results)
	m.dedupMu.Unlock()
	if err != nil {
		// The in-memory dedup index may have seen part of the transaction and other
		// replicas applied these entries: this replica cannot go on.
		m.open = nil
		p.tx.Rollback()
		m.poisoned.Store(true)
		return nil, fmt.Errorf("fsm: apply batch (fatal): %w", err)
	}
	if m.opts.DeferCommit {
		m.stageSKUs(p.a)
	}
	m.staged.Store(p.next.Applied)
	m.logTime.Store(p.next.LogTime)
	m.level.Store(p.next.Level)
	p.batches++
	if !m.opts.DeferCommit || p.batches >= maxStagedBatches || p.ops >= maxStagedOps || m.waiters.Load() > 0 {
		if err := m.commitLocked(); err != nil {
			return nil, err
		}
	}
	return results, nil
}

var errClosed = errors.New("fsm: use of a closed machine")

func beUint64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// timeoutOpen bounds waiting for bbolt's file lock: another process holding the state file
// is a configuration error, not something to wait out.
const timeoutOpen = time.Second
