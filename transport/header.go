package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A stream of a Mux names its raft group in a header written by the dialer
// before any of raft's bytes:
//
//	magic   4 bytes  0xF5 'f' 's' 'g'
//	version 1 byte   1
//	group   8 bytes  group id, big-endian
//
// The exception is LegacyGroup: its streams carry no header at all, exactly
// the bytes a single-group node has always sent. raft's NetworkTransport
// opens every stream with a one-byte rpc type (0 to 4 in hashicorp/raft
// v1.7), so a first byte of 0xF5 cannot be raft's and the acceptor tells the
// two kinds apart by that byte alone: anything else is a header-less stream
// of LegacyGroup, handed on with the byte unread.
//
// Rolling upgrade from a single-group version (which listens with a plain
// Layer): a single-group cluster is LegacyGroup, so every stream between old
// and new nodes is header-less, byte for byte what the old version sends and
// expects, in both directions. A headed stream (any other group) reaching an
// old node is read by its raft as rpc type 245, which it logs as an unknown
// rpc type and closes; that can only happen when groups other than
// LegacyGroup are created before every node runs a Mux, so finish the upgrade
// first. A future header version keeps the magic and changes the version
// byte; an acceptor refuses a version it does not know (closes the stream and
// counts it in MuxStats.BadHeader), so new headers may only be sent once
// every node reads them.
const (
	headerVersion = 1
	headerLen     = 4 + 1 + 8
)

var headerMagic = [4]byte{0xF5, 'f', 's', 'g'}

// LegacyGroup is the raft group whose streams carry no header: the group of
// a single-group cluster, and of its data after an upgrade to many groups.
const LegacyGroup uint64 = 1

var (
	errBadMagic   = errors.New("bad stream header magic")
	errBadVersion = errors.New("unknown stream header version")
)

// appendHeader appends the header that opens a stream of group, or nothing
// for LegacyGroup.
func appendHeader(b []byte, group uint64) []byte {
	if group == LegacyGroup {
		return b
	}
	b = append(b, headerMagic[:]...)
	b = append(b, headerVersion)
	return binary.BigEndian.AppendUint64(b, group)
}

// readHeader reads the start of an accepted stream and returns its group and
// the bytes read that belong to raft (the first byte of a header-less
// stream, else none).
func readHeader(r io.Reader) (group uint64, rest []byte, err error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:1]); err != nil {
		return 0, nil, err
	}
	if h[0] != headerMagic[0] {
		return LegacyGroup, h[:1], nil
	}
	if _, err := io.ReadFull(r, h[1:]); err != nil {
		return 0, nil, err
	}
	if [4]byte(h[:4]) != headerMagic {
		return 0, nil, fmt.Errorf("%w %x", errBadMagic, h[:4])
	}
	if h[4] != headerVersion {
		return 0, nil, fmt.Errorf("%w %d", errBadVersion, h[4])
	}
	// Group 0 is a group like any other: the meta group (api.MetaGroupID).
	return binary.BigEndian.Uint64(h[5:]), nil, nil
}
