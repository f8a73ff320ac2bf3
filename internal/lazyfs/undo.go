package lazyfs

import (
	"fmt"
	"math"
	"os"
	"slices"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
)

// pageSize is the unit of the undo record. Any size works; the kernel's page keeps the
// record small for bbolt, which rewrites whole pages.
const pageSize = 4096

// undo is what a file looked like at its last fsync, for the pages changed since.
type undo struct {
	f     *os.File         // the backing inode, reopened read-write; held until fsync or PowerLoss
	size  int64            // the durable size
	pages map[int64][]byte // durable content of changed pages (the last one may be short)
	inode *fs.Inode        // to invalidate the kernel's cache after a rollback
}

// change records the durable content of [off, end) of the backing file open as fd before
// the caller changes it; end past the size means to the end of the file. l.mu is held.
func (l *FS) change(fd int, inode *fs.Inode, off, end int64) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return err
	}
	u := l.files[st.Ino]
	if u == nil {
		// Reopened through /proc so that a write-only handle can still be read, and the
		// record follows the inode across renames.
		f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		u = &undo{f: f, size: st.Size, pages: map[int64][]byte{}, inode: inode}
		l.files[st.Ino] = u
	}
	if u.inode == nil {
		u.inode = inode
	}
	end = min(end, u.size)
	for p := max(off, 0) / pageSize; p*pageSize < end; p++ {
		if _, ok := u.pages[p]; ok {
			continue
		}
		// A page not recorded yet still holds its durable bytes: every change since the
		// fsync recorded its pages first, and a truncation recorded everything past it.
		buf := make([]byte, min(pageSize, u.size-p*pageSize))
		if _, err := u.f.ReadAt(buf, p*pageSize); err != nil {
			return fmt.Errorf("lazyfs: keep page %d: %w", p, err)
		}
		u.pages[p] = buf
	}
	return nil
}

// synced makes the file open as fd durable as it is now. l.mu is held.
func (l *FS) synced(fd int) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return err
	}
	if u := l.files[st.Ino]; u != nil {
		delete(l.files, st.Ino)
		return u.f.Close()
	}
	return nil
}

// forgetUnlinked drops the records of files no name points to any more: nothing can read
// them after a power loss, and their inode numbers may be reused. l.mu is held.
func (l *FS) forgetUnlinked() {
	for ino, u := range l.files {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(u.f.Fd()), &st); err == nil && st.Nlink == 0 {
			u.f.Close()
			delete(l.files, ino)
		}
	}
}

// rollBack restores the durable bytes and size, except where keep says the new ones
// reached the disk, and closes the record's file. Pages are visited in order, so a seeded
// keep decides the same way each time.
func (u *undo) rollBack(keep func() bool) (int64, error) {
	defer u.f.Close()
	pages := make([]int64, 0, len(u.pages))
	for p := range u.pages {
		pages = append(pages, p)
	}
	slices.Sort(pages)
	var n int64
	for _, p := range pages {
		if keep() {
			continue
		}
		b := u.pages[p]
		if _, err := u.f.WriteAt(b, p*pageSize); err != nil {
			return n, err
		}
		n += int64(len(b))
	}
	if keep() {
		return n, nil
	}
	return n, u.f.Truncate(u.size)
}

// toEnd is the end of a change that reaches the end of the file, whatever its size.
const toEnd = math.MaxInt64
