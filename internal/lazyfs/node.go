package lazyfs

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node whose data changes are recorded for PowerLoss first; the rest
// (lookups, reads, the namespace) is the loopback's.
type node struct {
	*fs.LoopbackNode
	lfs *FS
}

var (
	_ fs.NodeWrapChilder = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeCreater     = (*node)(nil)
	_ fs.NodeSetattrer   = (*node)(nil)
	_ fs.NodeUnlinker    = (*node)(nil)
	_ fs.NodeRenamer     = (*node)(nil)
	_ fs.NodeTmpfiler    = (*node)(nil)
)

// WrapChild makes every node below the root a lazy one.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), lfs: n.lfs}
}

// backingPath is the node's path in the backing dir.
func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

// Open opens the backing file, keeping the kernel's cached pages (doc.go says why). O_TRUNC
// is applied through the undo record, like any other truncation.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	trunc := flags&syscall.O_TRUNC != 0
	flags &^= syscall.O_APPEND | syscall.O_TRUNC | fuse.FMODE_EXEC
	f, err := os.OpenFile(n.backingPath(), int(flags)|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	h := n.handle(f)
	if trunc && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		if errno := h.truncate(0); errno != 0 {
			f.Close()
			return nil, 0, errno
		}
	}
	return h, fuse.FOPEN_KEEP_CACHE, 0
}

// Create creates the backing file; a new file's durable size is zero.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	trunc := flags&syscall.O_TRUNC != 0
	child, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags&^syscall.O_TRUNC, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	h := &handle{LoopbackFile: fh.(*fs.LoopbackFile), lfs: n.lfs, inode: child}
	if trunc {
		if errno := h.truncate(0); errno != 0 {
			h.Release(ctx)
			return nil, nil, 0, errno
		}
		h.Getattr(ctx, &fuse.AttrOut{})
	}
	return child, h, fuseFlags | fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) handle(f *os.File) *handle {
	return &handle{LoopbackFile: fs.NewLoopbackFileFromOS(f), lfs: n.lfs, inode: n.EmbeddedInode()}
}

// Setattr changes the size through the undo record and passes the rest through.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var inner fs.FileHandle
	h, _ := f.(*handle)
	if h != nil {
		inner = h.LoopbackFile
	}
	if size, ok := in.GetSize(); ok {
		if h == nil {
			bf, err := os.OpenFile(n.backingPath(), os.O_RDWR|syscall.O_NOFOLLOW, 0)
			if err != nil {
				return fs.ToErrno(err)
			}
			defer bf.Close()
			h = n.handle(bf)
		}
		if errno := h.truncate(int64(size)); errno != 0 {
			return errno
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	return n.LoopbackNode.Setattr(ctx, inner, in, out)
}

// Unlink removes the name, and the undo record of a file left without names.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	errno := n.LoopbackNode.Unlink(ctx, name)
	n.lfs.mu.Lock()
	n.lfs.forgetUnlinked()
	n.lfs.mu.Unlock()
	return errno
}

// Rename renames, and drops the undo record of a file it replaced.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if np, ok := newParent.(*node); ok {
		newParent = np.LoopbackNode
	}
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	n.lfs.mu.Lock()
	n.lfs.forgetUnlinked()
	n.lfs.mu.Unlock()
	return errno
}

// Tmpfile is not offered: an O_TMPFILE handle would bypass the undo record.
func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EOPNOTSUPP
}

// CopyFileRange is not offered (the kernel falls back to reads and writes, which are
// recorded).
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.EOPNOTSUPP
}
