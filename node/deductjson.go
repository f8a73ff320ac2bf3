package node

import (
	"strings"

	"github.com/flashstock/flashstock/api"
)

// decodeDeduct decodes the body of POST /v1/skus/{sku}/deduct exactly as decodeStrict
// does. Every non-Go application sends one such body per deduction, and encoding/json's
// reflection was the largest share of a deduction's CPU in the handler (BENCHMARKS.md,
// "Plain HTTP path"), so the plain form of the body is read by hand here: an object of
// the three fields, each at most once and spelled as the contract spells it, an integer
// qty, strings of printable ASCII without escapes, JSON whitespace anywhere. Anything else
// (escapes, other bytes, other or repeated keys, null, a fraction, an error) goes to
// decodeStrict, which stays the one home of what a body may be and of every message about
// a bad one; FuzzDecodeDeduct checks that the two agree on every body read here.
func decodeDeduct(body []byte, req *api.DeductRequest) error {
	if parseDeduct(body, req) {
		return nil
	}
	// decodeStrict's argument escapes: declared here, only a body off the plain form pays
	// for it on the heap.
	var slow api.DeductRequest
	err := decodeStrict(body, &slow)
	*req = slow
	return err
}

// parseDeduct reads body into req and reports true when it has the plain form
// decodeDeduct describes; on false, req holds nothing to use.
func parseDeduct(body []byte, req *api.DeductRequest) bool {
	p := plainJSON{b: body}
	p.space()
	if !p.byte('{') {
		return false
	}
	// Where each string lies in body, so that both are copied out in one allocation.
	var reqID, userID [2]int
	var seen [3]bool
	p.space()
	if !p.byte('}') {
		for {
			key, ok := p.str()
			if !ok {
				return false
			}
			p.space()
			if !p.byte(':') {
				return false
			}
			p.space()
			field := -1
			switch string(body[key[0]:key[1]]) {
			case "qty":
				field = 0
				req.Qty, ok = p.int64()
			case "request_id":
				field = 1
				reqID, ok = p.str()
			case "user_id":
				field = 2
				userID, ok = p.str()
			}
			if field < 0 || !ok || seen[field] {
				return false
			}
			seen[field] = true
			p.space()
			if p.byte('}') {
				break
			}
			if !p.byte(',') {
				return false
			}
			p.space()
		}
	}
	p.space()
	if p.i != len(body) {
		return false
	}
	var sb strings.Builder
	sb.Grow(reqID[1] - reqID[0] + userID[1] - userID[0])
	sb.Write(body[reqID[0]:reqID[1]])
	sb.Write(body[userID[0]:userID[1]])
	s := sb.String()
	n := reqID[1] - reqID[0]
	req.RequestID, req.UserID = s[:n], s[n:]
	return true
}

// plainJSON reads the plain form of JSON that parseDeduct accepts.
type plainJSON struct {
	b []byte
	i int
}

func (p *plainJSON) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *plainJSON) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes and returns where its contents
// lie in b.
func (p *plainJSON) str() ([2]int, bool) {
	if !p.byte('"') {
		return [2]int{}, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			p.i++
			return [2]int{start, p.i - 1}, true
		}
		if c < 0x20 || c == '\\' || c > 0x7e {
			return [2]int{}, false
		}
		p.i++
	}
	return [2]int{}, false
}

// int64 reads a JSON integer of at most 18 digits, which cannot overflow.
func (p *plainJSON) int64() (int64, bool) {
	neg := p.byte('-')
	start := p.i
	var v int64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		v = v*10 + int64(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > 18 || (digits > 1 && p.b[start] == '0') {
		return 0, false
	}
	// A fraction or an exponent is decodeStrict's to refuse.
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}
