package lazyfs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// handle is an open backing file. Reads, attributes and seeks are the loopback's; every
// call that changes data records the undo first and is declared here, so that none of the
// loopback's other writers (writev, passthrough, ioctl) is reachable.
type handle struct {
	*fs.LoopbackFile
	lfs   *FS
	inode *fs.Inode
}

var (
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileFsyncer   = (*handle)(nil)
	_ fs.FileAllocater = (*handle)(nil)
	_ fs.FileSetattrer = (*handle)(nil)
)

func (h *handle) fd() int {
	fd, _ := h.LoopbackFile.PassthroughFd()
	return fd
}

// Write records the pages it overwrites, then writes through.
func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.lfs.mu.Lock()
	defer h.lfs.mu.Unlock()
	fd := h.fd()
	if err := h.lfs.change(fd, h.inode, off, off+int64(len(data))); err != nil {
		return 0, fs.ToErrno(err)
	}
	n, err := syscall.Pwrite(fd, data, off)
	return uint32(max(n, 0)), fs.ToErrno(err)
}

// Writev hides the loopback's vectored write, which would not be recorded.
func (h *handle) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	var buf []byte
	for _, d := range data {
		buf = append(buf, d...)
	}
	return h.Write(ctx, buf, off)
}

// truncate records everything past size, then truncates.
func (h *handle) truncate(size int64) syscall.Errno {
	h.lfs.mu.Lock()
	defer h.lfs.mu.Unlock()
	fd := h.fd()
	if err := h.lfs.change(fd, h.inode, size, toEnd); err != nil {
		return fs.ToErrno(err)
	}
	return fs.ToErrno(syscall.Ftruncate(fd, size))
}

// Setattr is the node's (which records size changes).
func (h *handle) Setattr(context.Context, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.ENOTSUP
}

// Allocate records the range it may change (all of it for the modes that punch, zero or
// shift), then allocates.
func (h *handle) Allocate(ctx context.Context, off uint64, sz uint64, mode uint32) syscall.Errno {
	h.lfs.mu.Lock()
	defer h.lfs.mu.Unlock()
	end := int64(off + sz)
	if mode != 0 {
		end = toEnd
	}
	if err := h.lfs.change(h.fd(), h.inode, int64(off), end); err != nil {
		return fs.ToErrno(err)
	}
	return h.LoopbackFile.Allocate(ctx, off, sz, mode)
}

// Fsync makes the file's current bytes and size durable, then syncs the backing file.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	h.lfs.mu.Lock()
	err := h.lfs.synced(h.fd())
	h.lfs.mu.Unlock()
	if err != nil {
		return fs.ToErrno(err)
	}
	return h.LoopbackFile.Fsync(ctx, flags)
}

// PassthroughFd refuses kernel passthrough, which would write past the undo record.
func (h *handle) PassthroughFd() (int, bool) { return -1, false }

// Ioctl is refused: some ioctls change data.
func (h *handle) Ioctl(ctx context.Context, cmd uint32, arg uint64, input []byte, output []byte) (int32, syscall.Errno) {
	return 0, syscall.ENOTTY
}
