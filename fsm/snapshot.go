package fsm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// The snapshot stream:
//
//	magic "FSTKSNP1" ‖ applied index (8) ‖ size (8) ‖ bbolt file (size bytes) ‖ sha256 of all before (32)
//
// The applied index travels in the header (raft does not hand Restore the snapshot's
// metadata) and again inside the bbolt file, and the two must agree.
var snapshotMagic = []byte("FSTKSNP1")

// ErrBadSnapshot is wrapped by every refusal of a snapshot stream.
var ErrBadSnapshot = errors.New("bad snapshot")

// Snapshot is a consistent, point-in-time copy of the state. It holds a read transaction
// open, so applies go on while it is written; Release it when done.
type Snapshot struct {
	tx      *bolt.Tx
	applied uint64
}

// Snapshot captures the state now, staged batches included. It is cheap: the copy happens
// in WriteTo.
func (m *Machine) Snapshot() (*Snapshot, error) {
	if err := m.Flush(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.db == nil {
		return nil, errors.New("fsm: snapshot of a closed machine")
	}
	tx, err := m.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	md, err := decodeMeta(tx.Bucket(bucketMeta).Get(metaKey))
	if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &Snapshot{tx: tx, applied: md.Applied}, nil
}

// AppliedIndex is the index the snapshot reflects.
func (s *Snapshot) AppliedIndex() uint64 { return s.applied }

// WriteTo streams the snapshot.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	var hdr [24]byte
	copy(hdr[:8], snapshotMagic)
	binary.BigEndian.PutUint64(hdr[8:], s.applied)
	binary.BigEndian.PutUint64(hdr[16:], uint64(s.tx.Size()))
	if _, err := cw.Write(hdr[:]); err != nil {
		return cw.n, fmt.Errorf("write snapshot header: %w", err)
	}
	if _, err := s.tx.WriteTo(cw); err != nil {
		return cw.n, fmt.Errorf("write snapshot body: %w", err)
	}
	n, err := w.Write(h.Sum(nil))
	return cw.n + int64(n), err
}

// Release ends the read transaction. Safe to call more than once.
func (s *Snapshot) Release() {
	if s.tx != nil {
		s.tx.Rollback()
		s.tx = nil
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restore replaces the state with a snapshot stream. The stream is written to a temporary
// file, checked (checksum, applied index, readable meta), fsynced and only then renamed over
// the state file; on any failure before the rename the old state stays, untouched and open.
func (m *Machine) Restore(r io.Reader) error {
	tmp, applied, err := m.receive(r)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // a no-op once renamed

	m.mu.Lock()
	defer m.mu.Unlock()
	// From here the old state is gone: batches staged in it are discarded (they are older
	// than the snapshot replacing them, but the dedup index holds their ids), and it is
	// closed. Failing to adopt the new state leaves no usable one, so the machine is
	// poisoned and the caller must stop.
	fail := func(err error) error {
		m.poisoned.Store(true)
		return fmt.Errorf("restore (fatal): %w", err)
	}
	m.wmu.Lock()
	m.discardLocked()
	m.wmu.Unlock()
	if m.db != nil {
		if err := m.db.Close(); err != nil {
			return fail(fmt.Errorf("close old state: %w", err))
		}
		m.db = nil
	}
	if err := os.Rename(tmp, m.path); err != nil {
		return fail(err)
	}
	if err := syncDir(filepath.Dir(m.path)); err != nil {
		return fail(err)
	}
	db, err := openDB(m.path, m.opts)
	if err != nil {
		return fail(err)
	}
	if err := m.adopt(db); err != nil {
		db.Close()
		return fail(err)
	}
	if m.meta.Applied != applied {
		return fail(fmt.Errorf("restored state says index %d, header %d", m.meta.Applied, applied))
	}
	return nil
}

// receive copies a snapshot stream into a checked, fsynced temporary file beside the state.
func (m *Machine) receive(r io.Reader) (path string, applied uint64, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, args...))
	}
	h := sha256.New()
	br := bufio.NewReaderSize(r, 1<<16)
	var hdr [24]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return "", 0, bad("header: %v", err)
	}
	h.Write(hdr[:])
	if !bytes.Equal(hdr[:8], snapshotMagic) {
		return "", 0, bad("not a flashstock snapshot")
	}
	applied = binary.BigEndian.Uint64(hdr[8:])
	size := binary.BigEndian.Uint64(hdr[16:])

	f, err := os.CreateTemp(filepath.Dir(m.path), filepath.Base(m.path)+".restore-*")
	if err != nil {
		return "", 0, fmt.Errorf("restore: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if n, err := io.Copy(f, io.TeeReader(io.LimitReader(br, int64(size)), h)); err != nil {
		return "", 0, fmt.Errorf("restore: copy body: %w", err)
	} else if uint64(n) != size {
		return "", 0, bad("body is %d bytes, header says %d", n, size)
	}
	if err := checkTrailer(br, h); err != nil {
		return "", 0, err
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("restore: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("restore: close: %w", err)
	}
	got, err := readApplied(tmp)
	if err != nil {
		return "", 0, bad("%v", err)
	}
	if got != applied {
		return "", 0, bad("state inside says index %d, header %d", got, applied)
	}
	return tmp, applied, nil
}

func checkTrailer(r io.Reader, h hash.Hash) error {
	want := h.Sum(nil)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil {
		return fmt.Errorf("%w: checksum: %v", ErrBadSnapshot, err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	if n, _ := io.Copy(io.Discard, io.LimitReader(r, 1)); n != 0 {
		return fmt.Errorf("%w: trailing data", ErrBadSnapshot)
	}
	return nil
}

// readApplied opens a received state file read-only and reads its applied index, which
// also proves bbolt can read it.
func readApplied(path string) (uint64, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeoutOpen})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var md meta
	err = db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %q missing", name)
			}
		}
		md, err = decodeMeta(tx.Bucket(bucketMeta).Get(metaKey))
		return err
	})
	return md.Applied, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SnapshotAppliedIndex reads the applied index from the header of a snapshot stream,
// without reading the rest: a node compares it with its own state on start-up.
func SnapshotAppliedIndex(r io.Reader) (uint64, error) {
	var hdr [24]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	if !bytes.Equal(hdr[:8], snapshotMagic) {
		return 0, fmt.Errorf("%w: not a flashstock snapshot", ErrBadSnapshot)
	}
	return binary.BigEndian.Uint64(hdr[8:]), nil
}
