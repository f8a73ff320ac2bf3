package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A tiny binary codec shared by commands, results and stored records: unsigned varints,
// zig-zag signed varints and length-prefixed strings. The reader never panics on garbage:
// the first problem sticks in r.err and every later read returns zero values.

type writer struct{ b []byte }

func (w *writer) byte(v byte)      { w.b = append(w.b, v) }
func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) string(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}
func (w *writer) bytes(b []byte) {
	w.uvarint(uint64(len(b)))
	w.b = append(w.b, b...)
}
func (w *writer) bool(v bool) {
	if v {
		w.byte(1)
	} else {
		w.byte(0)
	}
}

var errTruncated = errors.New("truncated")

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail(errTruncated)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad uvarint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad varint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length and refuses one larger than max or than the bytes left (each
// element takes at least one byte), so garbage cannot make us allocate gigabytes.
func (r *reader) count(max int) int {
	n := r.uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(max) || n > uint64(len(r.b)) {
		r.fail(fmt.Errorf("length %d out of range", n))
		return 0
	}
	return int(n)
}

func (r *reader) string(max int) string {
	n := r.count(max)
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// bytes reads a length-prefixed byte string without copying it.
func (r *reader) bytes(max int) []byte {
	n := r.count(max)
	if r.err != nil {
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) bool() bool {
	switch r.byte() {
	case 0:
		return false
	case 1:
		return true
	default:
		r.fail(errors.New("bad bool"))
		return false
	}
}

// done fails if bytes are left over: trailing data is garbage, not padding.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Errorf("%d trailing bytes", len(r.b)))
	}
	return r.err
}
