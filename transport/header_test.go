package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestReadHeader(t *testing.T) {
	tests := []struct {
		name      string
		stream    []byte
		wantGroup uint64
		wantRest  []byte
		wantErr   error
	}{
		{"headed", appendHeader(nil, 2), 2, nil, nil},
		{"headed, largest group", appendHeader(nil, 1<<64-1), 1<<64 - 1, nil, nil},
		{"headed LegacyGroup", []byte{0xF5, 'f', 's', 'g', 1, 0, 0, 0, 0, 0, 0, 0, 1}, LegacyGroup, nil, nil},
		{"raft AppendEntries", []byte{0, 0x85}, LegacyGroup, []byte{0}, nil},
		{"raft RequestPreVote", []byte{4}, LegacyGroup, []byte{4}, nil},
		{"wrong magic", []byte{0xF5, 'f', 's', 'x', 1, 0, 0, 0, 0, 0, 0, 0, 2}, 0, nil, errBadMagic},
		{"version 2", []byte{0xF5, 'f', 's', 'g', 2, 0, 0, 0, 0, 0, 0, 0, 2}, 0, nil, errBadVersion},
		{"headed group 0 (meta)", []byte{0xF5, 'f', 's', 'g', 1, 0, 0, 0, 0, 0, 0, 0, 0}, 0, nil, nil},
		{"short header", appendHeader(nil, 2)[:7], 0, nil, io.ErrUnexpectedEOF},
		{"empty", nil, 0, nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group, rest, err := readHeader(bytes.NewReader(tt.stream))
			if group != tt.wantGroup || !bytes.Equal(rest, tt.wantRest) || !errors.Is(err, tt.wantErr) {
				t.Errorf("readHeader(%x) = %d, %x, %v; want %d, %x, %v", tt.stream, group, rest, err, tt.wantGroup, tt.wantRest, tt.wantErr)
			}
		})
	}
}

func TestAppendHeader_LegacyGroupHasNone(t *testing.T) {
	if h := appendHeader(nil, LegacyGroup); len(h) != 0 {
		t.Errorf("LegacyGroup's header = %x, want none", h)
	}
	if h := appendHeader(nil, 2); len(h) != headerLen || h[0] <= 4 {
		t.Errorf("group 2's header = %x, want %d bytes opening with a byte no raft rpc type has", h, headerLen)
	}
}

// FuzzReadHeader: any stream start routes to one group with nothing lost, or
// is refused; a headed group's header reads back as that group.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte{0, 1, 2}, uint64(2))
	f.Add(appendHeader(nil, 7), uint64(1))
	f.Add([]byte{0xF5, 'f', 's', 'g', 9}, uint64(1<<63))
	f.Fuzz(func(t *testing.T, stream []byte, group uint64) {
		r := bytes.NewReader(stream)
		got, rest, err := readHeader(r)
		if err == nil {
			consumed := len(stream) - r.Len()
			if got == 0 || !bytes.Equal(rest, stream[:len(rest)]) || (len(rest) > 0 && (got != LegacyGroup || consumed != 1)) {
				t.Fatalf("readHeader(%x) = %d, %x", stream, got, rest)
			}
		}
		if group == 0 {
			return
		}
		head := appendHeader(nil, group)
		got, rest, err = readHeader(io.MultiReader(bytes.NewReader(head), bytes.NewReader([]byte{3})))
		if err != nil || got != group || (group != LegacyGroup && len(rest) != 0) {
			t.Fatalf("header of group %d read back as %d, %x, %v", group, got, rest, err)
		}
	})
}
