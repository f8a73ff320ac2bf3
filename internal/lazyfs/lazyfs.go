package lazyfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// ErrNoFUSE says FUSE cannot be used here: no /dev/fuse, or no permission to mount.
var ErrNoFUSE = errors.New("lazyfs: FUSE is not available (needs /dev/fuse and root)")

// Available reports whether Mount can work on this machine, and why not.
func Available() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("%w: %v", ErrNoFUSE, err)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root", ErrNoFUSE)
	}
	return nil
}

// FS is one mounted lazy file system.
type FS struct {
	backing string
	mnt     string
	server  *fuse.Server

	// mu orders every change of file data against fsync and PowerLoss: a change records
	// its undo and reaches the backing file under it, so an fsync never drops the record
	// of a change that lands after it.
	mu    sync.Mutex
	files map[uint64]*undo // by backing inode number; only files changed since their fsync
}

// Mount serves backing at mountpoint (both directories must exist). Unmount it when done.
func Mount(backing, mountpoint string) (*FS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	root, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		return nil, fmt.Errorf("lazyfs: %w", err)
	}
	l := &FS{backing: backing, mnt: mountpoint, files: map[uint64]*undo{}}
	rootNode := &node{LoopbackNode: root.(*fs.LoopbackNode), lfs: l}
	// Attributes may be cached briefly: nothing but this FS changes the backing dir, and
	// PowerLoss invalidates what it rewrites.
	ttl := time.Second
	srv, err := fs.Mount(mountpoint, rootNode, &fs.Options{
		EntryTimeout: &ttl,
		AttrTimeout:  &ttl,
		MountOptions: fuse.MountOptions{
			FsName:      "lazyfs:" + backing,
			Name:        "lazyfs",
			DirectMount: true, // root: no fusermount needed
			// The kernel drops cached pages only when PowerLoss says so (see doc.go).
			ExplicitDataCacheControl: true,
		},
	})
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return nil, fmt.Errorf("%w: mount %s: %v", ErrNoFUSE, mountpoint, err)
	}
	if err != nil {
		return nil, fmt.Errorf("lazyfs: mount %s: %w", mountpoint, err)
	}
	l.server = srv
	return l, nil
}

// Dir is the mount point.
func (l *FS) Dir() string { return l.mnt }

// Unmount detaches the mount and stops serving it. Processes must have closed their files.
func (l *FS) Unmount() error {
	err := l.server.Unmount()
	l.mu.Lock()
	for ino, u := range l.files {
		u.f.Close()
		delete(l.files, ino)
	}
	l.mu.Unlock()
	return err
}

// PowerLoss discards every change not fsynced: each file changed since its last fsync gets
// back its durable bytes and size. Every process using the mount must be stopped. It
// returns how many files it rolled back and how many bytes it rewrote.
//
// keep, when not nil, makes the loss torn, as on a real disk whose cache wrote back some
// of its pages before the cut: it is asked once for each page changed since the fsync
// (and once for each file's size), and a true keeps the new content instead of the
// durable one. Pages and sizes are decided independently, so a file may keep a page past
// the size it falls back to, or a size whose pages were rolled back.
func (l *FS) PowerLoss(ctx context.Context, keep func() bool) (files int, bytes int64, err error) {
	if keep == nil {
		keep = func() bool { return false }
	}
	l.mu.Lock()
	var inodes []*fs.Inode
	for ino, u := range l.files {
		n, rerr := u.rollBack(keep)
		err = errors.Join(err, rerr)
		files++
		bytes += n
		if u.inode != nil {
			inodes = append(inodes, u.inode)
		}
		delete(l.files, ino)
	}
	l.mu.Unlock()
	// The kernel may hold the lost bytes in its page cache and the lost size in its
	// attribute cache: drop both. An inode it already forgot has nothing cached (ENOENT).
	for _, in := range inodes {
		if ctx.Err() != nil {
			return files, bytes, errors.Join(err, ctx.Err())
		}
		if errno := in.NotifyContent(0, 0); errno != 0 && errno != syscall.ENOENT {
			err = errors.Join(err, fmt.Errorf("lazyfs: invalidate the kernel cache: %w", errno))
		}
	}
	return files, bytes, err
}

// Pending reports how many files hold changes that a PowerLoss would discard.
func (l *FS) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.files)
}

// TB is the part of testing.TB that SkipUnlessCI needs.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// SkipUnlessCI ends a test that cannot have FUSE here (err wraps ErrNoFUSE): skipped on a
// developer's machine, failed under CI=true, where .ci/run runs as root with /dev/fuse, so
// the power-loss proof can never be skipped there.
func SkipUnlessCI(t TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and FUSE is not usable (%v): the power-loss tests must run in CI (as root, with /dev/fuse)", err)
		return
	}
	t.Skipf("needs FUSE (root and /dev/fuse): %v; skipped (under CI=true this fails instead)", err)
}
