package lazyfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// mount serves a fresh backing dir; the test skips only where FUSE cannot work.
func mount(t *testing.T) *FS {
	t.Helper()
	if err := Available(); err != nil {
		SkipUnlessCI(t, err)
	}
	l, err := Mount(t.TempDir(), t.TempDir())
	if errors.Is(err, ErrNoFUSE) {
		SkipUnlessCI(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return l
}

func powerLoss(t *testing.T, l *FS) {
	t.Helper()
	if _, _, err := l.PowerLoss(context.Background(), nil); err != nil {
		t.Fatalf("power loss: %v", err)
	}
	if n := l.Pending(); n != 0 {
		t.Fatalf("%d files still pending after the power loss", n)
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

func wantFile(t *testing.T, path string, want []byte) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(len(want)) || !bytes.Equal(got, want) {
		t.Fatalf("%s: size %d, %d bytes read (equal: %v); want %d bytes", filepath.Base(path), st.Size(), len(got), bytes.Equal(got, want), len(want))
	}
}

func TestPowerLoss_KeepsOnlyFsyncedBytes(t *testing.T) {
	l := mount(t)
	path := filepath.Join(l.Dir(), "data")
	durable := randomBytes(1, 3*pageSize+123)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(durable); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// Overwrite across a page boundary and grow: all of it lost, but visible until then.
	if _, err := f.WriteAt(randomBytes(2, 200), pageSize-100); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randomBytes(3, 5000), int64(len(durable))); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != int64(len(durable))+5000 {
		t.Fatalf("size before the power loss: %d, want %d", st.Size(), len(durable)+5000)
	}
	// A second file made durable with fdatasync, then changed; a third never synced.
	other := filepath.Join(l.Dir(), "other")
	g, err := os.Create(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fdatasync(int(g.Fd())); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write([]byte(" and lost")); err != nil {
		t.Fatal(err)
	}
	never := filepath.Join(l.Dir(), "never")
	if err := os.WriteFile(never, []byte("never synced"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantFile(t, never, []byte("never synced")) // the page cache holds it now
	f.Close()
	g.Close()

	powerLoss(t, l)
	wantFile(t, path, durable)
	wantFile(t, other, []byte("kept"))
	wantFile(t, never, nil) // the name was durable at once, the data never
}

func TestPowerLoss_Truncate(t *testing.T) {
	l := mount(t)
	path := filepath.Join(l.Dir(), "t")
	durable := randomBytes(4, 10000)
	if err := os.WriteFile(path, durable, 0o644); err != nil {
		t.Fatal(err)
	}
	syncPath(t, path)

	// Shrink by path, grow by writing: both lost.
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("x"), 300)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantFile(t, path, append(durable[:100:100], bytes.Repeat([]byte("x"), 300)...))
	powerLoss(t, l)
	wantFile(t, path, durable)

	// Opening with O_TRUNC is a truncation like any other.
	if err := os.WriteFile(path, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	powerLoss(t, l)
	wantFile(t, path, durable)

	// A truncation made durable stays.
	f, err = os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(100); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5000); err != nil { // grown with zeros, not synced
		t.Fatal(err)
	}
	f.Close()
	powerLoss(t, l)
	wantFile(t, path, durable[:100])
}

func TestPowerLoss_Rename(t *testing.T) {
	l := mount(t)
	target := filepath.Join(l.Dir(), "state")
	if err := os.WriteFile(target, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	syncPath(t, target)

	// The safe replacement: write, fsync, rename, fsync the dir.
	tmp := target + ".tmp"
	if err := os.WriteFile(tmp, []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	syncPath(t, tmp)
	if err := os.Rename(tmp, target); err != nil {
		t.Fatal(err)
	}
	syncPath(t, l.Dir())
	powerLoss(t, l)
	wantFile(t, target, []byte("v2"))

	// Without the file's fsync the rename survives (namespace changes are durable at
	// once in this model) but the data does not: the replaced file comes back empty.
	if err := os.WriteFile(tmp, []byte("v3"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, target); err != nil {
		t.Fatal(err)
	}
	wantFile(t, target, []byte("v3"))
	powerLoss(t, l)
	wantFile(t, target, nil)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the renamed-away name: %v", err)
	}

	// A file unlinked before its fsync leaves nothing pending behind.
	if err := os.WriteFile(tmp, []byte("gone"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	if n := l.Pending(); n != 0 {
		t.Fatalf("%d files pending after the only changed one was removed", n)
	}
}

// A torn power loss keeps, page by page, either the durable bytes or the new ones, and
// never anything else; the size is one of the two as well.
func TestPowerLoss_Torn(t *testing.T) {
	l := mount(t)
	path := filepath.Join(l.Dir(), "torn")
	old, next := randomBytes(5, 8*pageSize), randomBytes(6, 10*pageSize)
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	syncPath(t, path)
	if err := os.WriteFile(path, next, 0o644); err != nil {
		t.Fatal(err)
	}
	i := 0
	// Asked for the 8 durable pages (the growth past them has no durable content to
	// restore) and then the size: keeps pages 1, 3, 5 and 7, rolls back the size.
	keepOdd := func() bool { i++; return i%2 == 0 }
	if _, _, err := l.PowerLoss(context.Background(), keepOdd); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(old) {
		t.Fatalf("size %d, want the durable %d", len(got), len(old))
	}
	for p := range 8 {
		page := got[p*pageSize : (p+1)*pageSize]
		want := next[p*pageSize : (p+1)*pageSize]
		if p%2 == 0 {
			want = old[p*pageSize : (p+1)*pageSize]
		}
		if !bytes.Equal(page, want) {
			t.Fatalf("page %d is neither what the torn loss kept nor what it rolled back", p)
		}
	}
}

// TestSizes_Consistent checks the sizes reported while a file grows and after a power
// loss: the writer sees its own writes at once (size and data), a concurrent reader never
// gets bytes that were not written below the size it is told (a size mid-record, as a
// write across a page boundary shows on any Linux file system, is allowed), and
// after the power loss the durable size comes back even where the kernel had cached the
// larger one.
//
// A concurrent reader may briefly get EOF below a size stat reported: stat's answer can
// race the kernel's handling of the write's reply, on any FUSE file system. It reads less,
// never something else; the writer itself is never affected.
func TestSizes_Consistent(t *testing.T) {
	l := mount(t)
	path := filepath.Join(l.Dir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const rec, records = 100, 2000
	done := make(chan struct{})
	var wg sync.WaitGroup
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		g, err := os.Open(path)
		if err != nil {
			readErr = err
			return
		}
		defer g.Close()
		buf := make([]byte, rec)
		for {
			select {
			case <-done:
				return
			default:
			}
			st, err := os.Stat(path)
			if err != nil {
				readErr = err
				return
			}
			// A write that spans a page boundary updates the size page by page on any
			// Linux file system (the backing one included), so another handle may see a
			// size that ends inside a record; what lies below it was written.
			size := st.Size()
			whole := size / rec * rec
			if whole == 0 {
				continue
			}
			n, err := g.ReadAt(buf, whole-rec)
			if n == rec && binary.BigEndian.Uint64(buf) != uint64(whole/rec-1) || err != nil && !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("record %d below size %d: %v %x", whole/rec-1, size, err, buf[:8])
				return
			}
		}
	}()
	buf := make([]byte, rec)
	got := make([]byte, rec)
	for i := range records {
		binary.BigEndian.PutUint64(buf, uint64(i))
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
		st, err := f.Stat()
		if err != nil || st.Size() != int64(rec*(i+1)) {
			t.Fatalf("after write %d: size %d (%v), want %d", i, st.Size(), err, rec*(i+1))
		}
		if _, err := f.ReadAt(got, int64(rec*i)); err != nil || !bytes.Equal(got, buf) {
			t.Fatalf("after write %d: read back %x (%v)", i, got[:8], err)
		}
		if i == records/2-1 {
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	wg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	if st, _ := os.Stat(path); st.Size() != rec*records { // cached by the kernel now
		t.Fatalf("size %d, want %d", st.Size(), rec*records)
	}
	f.Close()
	powerLoss(t, l)
	st, err := os.Stat(path)
	if err != nil || st.Size() != rec*records/2 {
		t.Fatalf("size after the power loss: %v %v, want %d", st.Size(), err, rec*records/2)
	}
}

// TestBolt_SurvivesPowerLoss runs bbolt on the lazy FS in a child process (a Go process
// must not fault in pages of a FUSE mount it serves itself: the fault blocks a thread the
// garbage collector then waits for, while the server goroutines are stopped). The child
// commits transactions with fsync, then more without, and dies without closing; after a
// power loss bbolt opens again, passes its consistency check and holds exactly the
// transactions it fsynced.
func TestBolt_SurvivesPowerLoss(t *testing.T) {
	l := mount(t)
	path := filepath.Join(l.Dir(), "bolt.db")
	boltChild(t, "write", path)
	if l.Pending() == 0 {
		t.Fatal("nothing pending: the unsynced transactions were synced after all")
	}
	powerLoss(t, l)
	if out := boltChild(t, "check", path); out != fmt.Sprint(boltSynced) {
		t.Fatalf("after the power loss bbolt holds %s keys, want the %d synced ones", out, boltSynced)
	}
}

const boltSynced, boltUnsynced = 300, 200

// boltChild runs this test binary as the bbolt child (see TestMain) and returns its output.
func boltChild(t *testing.T, phase, path string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LAZYFS_BOLT_CHILD="+phase, "LAZYFS_BOLT_PATH="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bbolt child %s: %v\n%s", phase, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestMain(m *testing.M) {
	if phase := os.Getenv("LAZYFS_BOLT_CHILD"); phase != "" {
		out, err := runBolt(phase, os.Getenv("LAZYFS_BOLT_PATH"))
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Print(out)
		os.Exit(0) // "write" leaves without closing the db: a crash
	}
	os.Exit(m.Run())
}

func runBolt(phase, path string) (string, error) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return "", err
	}
	value := func(i int) []byte { return randomBytes(uint64(i), 700) } // grows the file, splits pages
	if phase == "write" {
		put := func(i int) error {
			return db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("b"))
				if err != nil {
					return err
				}
				return b.Put(fmt.Appendf(nil, "k%05d", i), value(i))
			})
		}
		for i := range boltSynced {
			if err := put(i); err != nil {
				return "", err
			}
		}
		// Committed, never fsynced (bbolt also fsyncs when it grows the file, unless told not).
		db.NoSync, db.NoGrowSync = true, true
		for i := boltSynced; i < boltSynced+boltUnsynced; i++ {
			if err := put(i); err != nil {
				return "", err
			}
		}
		return "", nil
	}
	defer db.Close()
	var keys int
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("bbolt check: %w", err)
		}
		b := tx.Bucket([]byte("b"))
		if b == nil {
			return errors.New("bucket lost")
		}
		keys = b.Stats().KeyN
		for i := range keys {
			if v := b.Get(fmt.Appendf(nil, "k%05d", i)); !bytes.Equal(v, value(i)) {
				return fmt.Errorf("key %d: %d bytes, not what was committed", i, len(v))
			}
		}
		return nil
	})
	return fmt.Sprint(keys), err
}

// syncPath fsyncs a file or directory by name.
func syncPath(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", path, err)
	}
}

type recordTB struct{ skipped, failed bool }

func (r *recordTB) Helper()               {}
func (r *recordTB) Skipf(string, ...any)  { r.skipped = true }
func (r *recordTB) Fatalf(string, ...any) { r.failed = true }

func TestSkipUnlessCI_FailsUnderCI(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		var r recordTB
		SkipUnlessCI(&r, ErrNoFUSE)
		if r.failed != (ci == "true") || r.skipped != (ci != "true") {
			t.Errorf("CI=%q: skipped %v, failed %v", ci, r.skipped, r.failed)
		}
	}
}
