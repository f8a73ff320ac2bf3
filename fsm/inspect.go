package fsm

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// SnapshotInfo describes a snapshot stream (a backup file), read offline.
type SnapshotInfo struct {
	AppliedIndex uint64
	// StateHash is the hash of the state inside: what stockd restore prints after seeding
	// from it and GET /v1/debug/state shows on a replica at the same applied index.
	StateHash [32]byte
	Format    int   // the state format version of the file inside (formatVersion)
	SKUs      int   // SKU records
	Bytes     int64 // the stream's size
}

// InspectSnapshot checks a snapshot stream as Restore does (checksum, applied index, a
// readable state) and describes it. The state is unpacked into a temporary dir under dir
// ("" for the system's temp dir), removed before it returns.
func InspectSnapshot(r io.Reader, dir string) (SnapshotInfo, error) {
	tmp, err := os.MkdirTemp(dir, "flashstock-inspect-")
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("inspect: %w", err)
	}
	defer os.RemoveAll(tmp)
	m, err := Open(filepath.Join(tmp, "state.db"), Options{NoSync: true})
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("inspect: %w", err)
	}
	defer m.Close()
	cr := &countReader{r: r}
	if err := m.Restore(cr); err != nil {
		return SnapshotInfo{}, err
	}
	info := SnapshotInfo{Bytes: cr.n}
	if info.AppliedIndex, info.StateHash, err = m.HashAt(); err != nil {
		return SnapshotInfo{}, err
	}
	err = m.view(func(tx *bolt.Tx) error {
		// The meta record's first byte is its format (meta.encode); decodeMeta, run by
		// Restore, has accepted it.
		info.Format = int(tx.Bucket(bucketMeta).Get(metaKey)[0])
		info.SKUs = tx.Bucket(bucketSKUs).Stats().KeyN
		return nil
	})
	return info, err
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
