package api

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
)

// BatchContentType names the compact binary encoding of POST /v1/batch/deduct: a request body
// in it says so with Content-Type, and a client that reads it says so with Accept. JSON stays
// the default; the binary form exists because encoding/json costs microseconds per item on
// both ends of a flash sale's batches.
//
// Every integer is an encoding/binary varint, every string a uvarint length and its bytes:
//
//	request:  "FSQ1" count{uvarint} count × (sku qty{varint} request_id user_id attempt{uvarint})
//	response: "FSR1" count{uvarint} count × (0 remaining{varint} duplicate{0|1}
//	                                         | 1 code message leader)
//
// A result with an error carries only the error: Remaining and Duplicate are dropped, as a
// node never sets them together. An Attempt below 0 is sent as 0, which the server reads the
// same way (not known to be a first try).
//
// Decoding accepts only what the encoders produce (minimal varints, flags 0 or 1, nothing
// after the last item), so a body has one meaning and re-encodes to itself.
const BatchContentType = "application/vnd.flashstock.batch-v1"

// IsMediaType reports whether a Content-Type or one element of an Accept header names
// mediaType, whatever its parameters and case.
func IsMediaType(v, mediaType string) bool {
	v, _, _ = strings.Cut(v, ";")
	return strings.EqualFold(strings.TrimSpace(v), mediaType)
}

const (
	batchRequestMagic  = "FSQ1"
	batchResponseMagic = "FSR1"
	// maxWireString bounds one string whatever the caller's buffer holds: a node reads at
	// most 1 MiB of body anyway.
	maxWireString = 1 << 20
	// The fewest bytes an item can take, so a count is checked against the bytes left
	// before anything is allocated for it.
	minRequestItem  = 5 // three empty strings, qty and attempt: one byte each
	minResponseItem = 3 // status, remaining, duplicate
)

// AppendBatchDeductRequest appends req's binary encoding (BatchContentType) to dst.
func AppendBatchDeductRequest(dst []byte, req *BatchDeductRequest) []byte {
	// Room for the usual item (short strings, small numbers), so dst grows once.
	size := len(batchRequestMagic) + binary.MaxVarintLen64
	for i := range req.Items {
		it := &req.Items[i]
		size += len(it.SKU) + len(it.RequestID) + len(it.UserID) + 16
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, batchRequestMagic...)
	dst = binary.AppendUvarint(dst, uint64(len(req.Items)))
	for i := range req.Items {
		it := &req.Items[i]
		dst = appendWireString(dst, it.SKU)
		dst = binary.AppendVarint(dst, it.Qty)
		dst = appendWireString(dst, it.RequestID)
		dst = appendWireString(dst, it.UserID)
		dst = binary.AppendUvarint(dst, uint64(max(it.Attempt, 0)))
	}
	return dst
}

// AppendBatchDeductResponse appends resp's binary encoding (BatchContentType) to dst.
func AppendBatchDeductResponse(dst []byte, resp *BatchDeductResponse) []byte {
	size := len(batchResponseMagic) + binary.MaxVarintLen64
	for i := range resp.Results {
		size += 2 + binary.MaxVarintLen64
		if e := resp.Results[i].Error; e != nil {
			size += len(e.Code) + len(e.Message) + len(e.Leader)
		}
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, batchResponseMagic...)
	dst = binary.AppendUvarint(dst, uint64(len(resp.Results)))
	for i := range resp.Results {
		r := &resp.Results[i]
		if r.Error != nil {
			dst = append(dst, 1)
			dst = appendWireString(dst, string(r.Error.Code))
			dst = appendWireString(dst, r.Error.Message)
			dst = appendWireString(dst, r.Error.Leader)
			continue
		}
		dup := byte(0)
		if r.Duplicate {
			dup = 1
		}
		dst = append(dst, 0)
		dst = binary.AppendVarint(dst, r.Remaining)
		dst = append(dst, dup)
	}
	return dst
}

// DecodeBatchDeductRequest decodes a request body in BatchContentType. Every refusal is an
// *Error with code InvalidArgument. The strings are copies: b may be reused afterwards.
func DecodeBatchDeductRequest(b []byte) (BatchDeductRequest, error) {
	r := wireReader{b: b, item: -1}
	n := r.header(batchRequestMagic, minRequestItem)
	req := BatchDeductRequest{Items: make([]DeductItem, n)}
	for i := range req.Items {
		r.item = i
		it := &req.Items[i]
		it.SKU = r.string("sku")
		it.Qty = r.varint("qty")
		it.RequestID = r.string("request_id")
		it.UserID = r.string("user_id")
		attempt := r.uvarint("attempt")
		if attempt > math.MaxInt {
			r.fail("attempt %d overflows int", attempt)
		}
		it.Attempt = int(attempt)
	}
	if err := r.finish(); err != nil {
		return BatchDeductRequest{}, err
	}
	return req, nil
}

// DecodeBatchDeductResponse decodes an answer in BatchContentType. Every refusal is an
// *Error with code InvalidArgument. The strings are copies: b may be reused afterwards.
func DecodeBatchDeductResponse(b []byte) (BatchDeductResponse, error) {
	r := wireReader{b: b, item: -1}
	n := r.header(batchResponseMagic, minResponseItem)
	resp := BatchDeductResponse{Results: make([]DeductResult, n)}
	for i := range resp.Results {
		r.item = i
		res := &resp.Results[i]
		switch status := r.byte("status"); status {
		case 0:
			res.Remaining = r.varint("remaining")
			switch dup := r.byte("duplicate"); dup {
			case 0, 1:
				res.Duplicate = dup == 1
			default:
				r.fail("duplicate byte %d, want 0 or 1", dup)
			}
		case 1:
			res.Error = &Error{Code: Code(r.string("code")), Message: r.string("message"), Leader: r.string("leader")}
		default:
			r.fail("status byte %d, want 0 (ok) or 1 (error)", status)
		}
	}
	if err := r.finish(); err != nil {
		return BatchDeductResponse{}, err
	}
	return resp, nil
}

func appendWireString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// wireReader consumes a binary batch. The first failure sticks and empties the input, so the
// decoders read on without a check after every field, and report only that first failure.
type wireReader struct {
	b    []byte
	item int // the item being read, -1 outside the items
	err  *Error
}

func (r *wireReader) fail(format string, args ...any) {
	if r.err != nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if r.item >= 0 {
		msg = fmt.Sprintf("item %d: %s", r.item, msg)
	}
	r.err = Errorf(InvalidArgument, "binary batch: %s", msg)
	r.b = nil
}

// finish refuses trailing bytes and returns the first failure, as a nil error (not a nil
// *Error) when there was none.
func (r *wireReader) finish() error {
	if r.err == nil && len(r.b) > 0 {
		r.item = -1
		r.fail("%d trailing bytes after the last item", len(r.b))
	}
	if r.err != nil {
		return r.err
	}
	return nil
}

// header reads the magic and the item count, which it checks against MaxBatchItems and
// against what the bytes left could hold, before anything is allocated for it.
func (r *wireReader) header(magic string, minItem int) int {
	if len(r.b) < len(magic) || string(r.b[:len(magic)]) != magic {
		r.fail("body does not start with %q", magic)
		return 0
	}
	r.b = r.b[len(magic):]
	n := r.uvarint("item count")
	switch {
	case r.err != nil:
		return 0
	case n > MaxBatchItems:
		r.fail("%d items, more than %d", n, MaxBatchItems)
		return 0
	case n > uint64(len(r.b)/minItem):
		r.fail("truncated: %d items cannot fit in the %d bytes left", n, len(r.b))
		return 0
	}
	return int(n)
}

func (r *wireReader) uvarint(field string) uint64 {
	v, n := binary.Uvarint(r.b)
	if !r.advance(n, field) {
		return 0
	}
	return v
}

func (r *wireReader) varint(field string) int64 {
	v, n := binary.Varint(r.b)
	if !r.advance(n, field) {
		return 0
	}
	return v
}

// advance consumes a varint of n bytes, n as binary.Uvarint and binary.Varint report it.
func (r *wireReader) advance(n int, field string) bool {
	switch {
	case n == 0:
		r.fail("truncated in %s", field)
		return false
	case n < 0:
		r.fail("%s overflows 64 bits", field)
		return false
	case n > 1 && r.b[n-1] == 0:
		// A last group of zero spells the value in more bytes than it needs; refusing it
		// keeps one encoding per value.
		r.fail("%s is not a minimal varint", field)
		return false
	}
	r.b = r.b[n:]
	return true
}

func (r *wireReader) byte(field string) byte {
	if len(r.b) == 0 {
		r.fail("truncated in %s", field)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// string copies the bytes, so the result neither pins the caller's buffer nor changes when
// the caller reuses it.
func (r *wireReader) string(field string) string {
	n, size := binary.Uvarint(r.b)
	switch {
	case !r.advance(size, field):
		return ""
	case n > maxWireString:
		r.fail("%s is %d bytes, more than %d", field, n, maxWireString)
		return ""
	case n > uint64(len(r.b)):
		r.fail("truncated: %s needs %d bytes, %d left", field, n, len(r.b))
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
