package meta

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
)

// A snapshot is
//
//	"FSMP" | format (1 byte) | body (canonical JSON) | CRC-32C of all before it (4 bytes, big endian)
//
// The format byte comes before the body so that a build can tell a snapshot it does not
// know from a corrupt one; the checksum covers the format byte too.
const (
	snapshotMagic  = "FSMP"
	snapshotFormat = 1
)

type snapshotBody struct {
	Applied   uint64         `json:"applied"`
	Placement *api.Placement `json:"placement"` // null before Bootstrap
	// Level is the meta apply level, absent at 0: a snapshot of a log never raised stays
	// the bytes that builds before levels read (they refuse a field they do not know).
	Level uint64 `json:"level,omitempty"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot returns the machine's state: its placement and applied index. Two machines
// that applied the same log return the same bytes.
func (m *Machine) Snapshot() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		// Raft would label the snapshot with the index of the entry that stopped us,
		// and a replica restored from it would never apply that entry.
		return nil, m.err
	}
	body, err := json.Marshal(snapshotBody{Applied: m.applied, Placement: m.p, Level: m.level})
	if err != nil {
		return nil, fmt.Errorf("meta: snapshot: %w", err)
	}
	b := append([]byte(snapshotMagic), snapshotFormat)
	b = append(b, body...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// Restore replaces the machine's state with a snapshot's and wakes the waiters. A snapshot
// that is corrupt, of another format or holds an invalid placement is refused with
// placement.ErrSnapshot and changes nothing.
func (m *Machine) Restore(b []byte) error {
	body, err := readSnapshot(b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.p, m.applied, m.level = body.Placement, body.Applied, body.Level
	m.wake()
	return nil
}

func readSnapshot(b []byte) (snapshotBody, error) {
	bad := func(format string, args ...any) (snapshotBody, error) {
		return snapshotBody{}, &placement.Error{Rule: placement.ErrSnapshot, Detail: fmt.Sprintf(format, args...)}
	}
	n := len(snapshotMagic) + 1
	if len(b) < n+4 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return bad("not a meta group snapshot")
	}
	data, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(data, castagnoli) != sum {
		return bad("checksum mismatch")
	}
	if f := data[n-1]; f != snapshotFormat {
		return bad("format %d, this build reads %d", f, snapshotFormat)
	}
	var body snapshotBody
	if err := json.Unmarshal(data[n:], &body); err != nil {
		return bad("body: %v", err)
	}
	if body.Level > ApplyLevel {
		return bad("meta apply level %d, this build applies up to %d", body.Level, ApplyLevel)
	}
	if body.Placement != nil {
		if err := placement.Validate(body.Placement); err != nil {
			return bad("%v", err)
		}
		for _, g := range body.Placement.Groups {
			if g.Leader != "" {
				return bad("group %d records a live leader", g.ID)
			}
		}
	}
	if again, _ := json.Marshal(body); !bytes.Equal(again, data[n:]) {
		// A field this build would drop: restoring would lose it.
		return bad("body is not the encoding this build writes")
	}
	return body, nil
}
