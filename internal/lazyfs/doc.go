// Package lazyfs is a loopback FUSE file system that forgets what was not fsynced: the
// power-loss fault of flashstock's chaos suite (issue 15), after Jepsen's LazyFS.
//
// A mounted FS passes every operation through to a backing directory, so reads, sizes and
// mmap see exactly what was written (there is no second copy of the data to disagree with
// the backing file: LazyFS itself crashed nodes through a size race between its cache and
// its reported sizes). What it adds is an undo record per file: before the first change to
// a page since the file's last fsync, it keeps that page's durable content and the file's
// durable size. fsync and fdatasync drop the record (the backing file becomes the durable
// state); PowerLoss writes every kept page back and truncates each file to its durable
// size, so exactly the fsynced bytes remain.
//
// The model, precisely:
//   - File data and size (write, truncate, fallocate, open with O_TRUNC) are durable only
//     after an fsync or fdatasync of that file, through any handle. A file never fsynced
//     comes back with the size it had when it was created (empty), as on a file system with
//     delayed allocation whose metadata reached the journal.
//   - Namespace and attribute changes (create, mkdir, rename, link, unlink, rmdir, chmod,
//     utimes) are durable at once, as if the journal committed each one immediately. A
//     directory fsync is passed through and costs a round trip, but losing a rename or a
//     create whose directory was not synced is NOT modelled: a program that forgets the
//     directory fsync after a rename passes here and may fail on a real disk.
//   - Writes through the kernel reach the FS before write(2) returns (no writeback cache),
//     so a process crash (SIGKILL) loses nothing; only PowerLoss does.
//   - The kernel's page cache is the one cache, kept coherent by every write through the
//     mount, and dropped only where PowerLoss changed the backing files (it tells the
//     kernel which). The kernel is not allowed to drop it by itself, neither on open
//     (FOPEN_KEEP_CACHE) nor when it sees a file's mtime move (explicit data cache
//     control): with those defaults, bbolt state files mmapped by a live stockd read pages
//     that were not what had been written, on Linux 6.18 under load, and panicked within
//     seconds ("page N already freed", "freepages: ... multiple references", a bucket
//     missing): 14 of about 21 long power-loss runs with raft-wal, 4 of 38 short ones with
//     raft-boltdb. The same scenarios without FUSE, and with the cache kept, ran clean.
//
// What it must never do: change a byte that was fsynced, or keep one that was not, across
// PowerLoss. PowerLoss is for a stopped machine: every process using the mount must be
// dead (what a live process sees is not modelled). It is test equipment; nothing in the
// product imports it.
package lazyfs
