package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestBatchWire_RequestRoundTrip(t *testing.T) {
	many := make([]DeductItem, MaxBatchItems)
	for i := range many {
		many[i] = DeductItem{SKU: "s", Qty: int64(i), RequestID: fmt.Sprint(i), UserID: "u", Attempt: i % 3}
	}
	cases := []struct {
		name string
		req  BatchDeductRequest
	}{
		{"no items", BatchDeductRequest{Items: []DeductItem{}}},
		{"one item", BatchDeductRequest{Items: []DeductItem{{SKU: "tee", Qty: 1, RequestID: "r1", UserID: "u1", Attempt: 1}}}},
		{"empty strings and zeros", BatchDeductRequest{Items: []DeductItem{{}}}},
		{"extremes", BatchDeductRequest{Items: []DeductItem{
			{SKU: strings.Repeat("s", 300), Qty: math.MaxInt64, RequestID: strings.Repeat("r", 128), UserID: "ü\x00\xff", Attempt: math.MaxInt},
			{SKU: "a", Qty: math.MinInt64, RequestID: "b", UserID: "c", Attempt: 0},
			{SKU: "a", Qty: -1, RequestID: "b", UserID: "c", Attempt: 127},
			{SKU: "a", Qty: 64, RequestID: "b", UserID: "c", Attempt: 128},
		}}},
		{"MaxBatchItems items", BatchDeductRequest{Items: many}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc := AppendBatchDeductRequest(nil, &tc.req)
			got, err := DecodeBatchDeductRequest(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.req) {
				t.Fatalf("decoded %+v, want %+v", got, tc.req)
			}
			if again := AppendBatchDeductRequest(nil, &got); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoded %x, first %x", again, enc)
			}
		})
	}
}

// A negative attempt has no uvarint; it travels as 0, which the server reads the same way.
func TestBatchWire_NegativeAttemptIsSentAsZero(t *testing.T) {
	req := BatchDeductRequest{Items: []DeductItem{{SKU: "a", Qty: 1, RequestID: "r", UserID: "u", Attempt: -5}}}
	got, err := DecodeBatchDeductRequest(AppendBatchDeductRequest(nil, &req))
	if err != nil || got.Items[0].Attempt != 0 {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestBatchWire_ResponseRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		resp BatchDeductResponse
	}{
		{"no results", BatchDeductResponse{Results: []DeductResult{}}},
		{"ok and duplicate", BatchDeductResponse{Results: []DeductResult{{Remaining: 9}, {Remaining: 0, Duplicate: true}}}},
		{"extremes", BatchDeductResponse{Results: []DeductResult{{Remaining: math.MaxInt64}, {Remaining: math.MinInt64, Duplicate: true}, {Remaining: -1}}}},
		{"errors", BatchDeductResponse{Results: []DeductResult{
			{Error: &Error{Code: SoldOut, Message: "sold out"}},
			{Error: &Error{Code: NotLeader, Message: strings.Repeat("m", 1000), Leader: "127.0.0.1:4001"}},
			{Error: &Error{}},
			{Remaining: 3},
		}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc := AppendBatchDeductResponse(nil, &tc.resp)
			got, err := DecodeBatchDeductResponse(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.resp) {
				t.Fatalf("decoded %+v, want %+v", got, tc.resp)
			}
			if again := AppendBatchDeductResponse(nil, &got); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoded %x, first %x", again, enc)
			}
		})
	}
}

func TestBatchWire_AppendKeepsDst(t *testing.T) {
	req := BatchDeductRequest{Items: []DeductItem{{SKU: "a", Qty: 1, RequestID: "r", UserID: "u"}}}
	b := AppendBatchDeductRequest([]byte("prefix"), &req)
	if !bytes.HasPrefix(b, []byte("prefix"+batchRequestMagic)) {
		t.Fatalf("%q", b)
	}
	if _, err := DecodeBatchDeductRequest(b[len("prefix"):]); err != nil {
		t.Fatal(err)
	}
}

// Callers reuse their buffers: what was decoded must not change with them.
func TestBatchWire_DecodedStringsDoNotAliasTheInput(t *testing.T) {
	req := BatchDeductRequest{Items: []DeductItem{{SKU: "sku", Qty: 1, RequestID: "rid", UserID: "uid", Attempt: 1}}}
	b := AppendBatchDeductRequest(nil, &req)
	got, err := DecodeBatchDeductRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	resp := BatchDeductResponse{Results: []DeductResult{{Error: &Error{Code: SoldOut, Message: "msg", Leader: "ldr"}}}}
	rb := AppendBatchDeductResponse(nil, &resp)
	gotResp, err := DecodeBatchDeductResponse(rb)
	if err != nil {
		t.Fatal(err)
	}
	for _, buf := range [][]byte{b, rb} {
		for i := range buf {
			buf[i] = 'X'
		}
	}
	if !reflect.DeepEqual(got, req) || !reflect.DeepEqual(gotResp, resp) {
		t.Fatalf("decoded values changed with the input: %+v %+v", got, gotResp.Results[0].Error)
	}
}

// rawItem builds one request item by hand, for bodies the encoder would never write.
func rawItem(b []byte, sku string, qty int64, rid, uid string, attempt uint64) []byte {
	b = appendWireString(b, sku)
	b = binary.AppendVarint(b, qty)
	b = appendWireString(b, rid)
	b = appendWireString(b, uid)
	return binary.AppendUvarint(b, attempt)
}

func TestBatchWire_DecodeRefuses(t *testing.T) {
	req := []byte(batchRequestMagic)
	resp := []byte(batchResponseMagic)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	oneItem := rawItem(nil, "a", 1, "r", "u", 1)
	validReq := AppendBatchDeductRequest(nil, &BatchDeductRequest{Items: []DeductItem{{SKU: "a", Qty: 1, RequestID: "r", UserID: "u", Attempt: 1}}})
	validResp := AppendBatchDeductResponse(nil, &BatchDeductResponse{Results: []DeductResult{{Remaining: 1}}})
	big := bytes.Repeat([]byte{'x'}, maxWireString+1)

	cases := []struct {
		name     string
		response bool
		body     []byte
		want     string // in the message
	}{
		{"empty body", false, nil, "does not start with"},
		{"JSON body", false, []byte(`{"items":[]}`), "does not start with"},
		{"response magic on a request", false, cat(resp, uv(0)), "does not start with"},
		{"request magic on a response", true, cat(req, uv(0)), "does not start with"},
		{"short magic", false, []byte("FSQ"), "does not start with"},
		{"no count", false, req, "truncated in item count"},
		{"count above MaxBatchItems", false, cat(req, uv(MaxBatchItems+1), bytes.Repeat(oneItem, MaxBatchItems+1)), "more than 4096"},
		{"response count above MaxBatchItems", true, cat(resp, uv(MaxBatchItems+1), bytes.Repeat([]byte{0, 0, 0}, MaxBatchItems+1)), "more than 4096"},
		{"count beyond the bytes", false, cat(req, uv(100), oneItem), "100 items cannot fit"},
		{"response count beyond the bytes", true, cat(resp, uv(2), []byte{0, 0, 0}), "2 items cannot fit"},
		{"huge count", false, cat(req, uv(math.MaxUint64)), "more than 4096"},
		{"count overflows", false, cat(req, bytes.Repeat([]byte{0xff}, 11)), "overflows 64 bits"},
		{"non-minimal count", false, cat(req, []byte{0x81, 0x00}, oneItem), "not a minimal varint"},
		{"non-minimal qty", false, cat(req, uv(1), appendWireString(nil, "a"), []byte{0x82, 0x80, 0x00}, appendWireString(nil, "r"), appendWireString(nil, "u"), uv(1)), "item 0: qty is not a minimal varint"},
		{"trailing bytes", false, cat(validReq, []byte{0}), "1 trailing bytes"},
		{"response trailing bytes", true, cat(validResp, []byte{0, 0}), "2 trailing bytes"},
		{"truncated item", false, cat(req, uv(1), oneItem[:len(oneItem)-1]), "item 0: truncated in attempt"},
		{"string beyond the bytes", false, cat(req, uv(1), uv(50), []byte("abcd")), "item 0: truncated: sku needs 50 bytes, 4 left"},
		{"string above 1 MiB", false, cat(req, uv(1), uv(maxWireString+1), big, rawItem(nil, "", 1, "r", "u", 1)[1:]), "sku is 1048577 bytes, more than 1048576"},
		{"attempt overflows int", false, cat(req, uv(1), rawItem(nil, "a", 1, "r", "u", math.MaxInt+1)), "attempt 9223372036854775808 overflows int"},
		{"second item broken", false, cat(req, uv(2), oneItem, oneItem[:3], []byte{0xff}), "item 1:"},
		{"status byte 2", true, cat(resp, uv(1), []byte{2, 0, 0}), "item 0: status byte 2"},
		{"duplicate byte 2", true, cat(resp, uv(1), []byte{0, 0, 2}), "item 0: duplicate byte 2"},
		{"error string truncated", true, cat(resp, uv(1), []byte{1}, appendWireString(nil, "sold_out"), uv(9), []byte("x")), "truncated: message needs 9 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.response {
				var got BatchDeductResponse
				got, err = DecodeBatchDeductResponse(tc.body)
				if err == nil {
					t.Fatalf("decoded %+v", got)
				}
			} else {
				var got BatchDeductRequest
				got, err = DecodeBatchDeductRequest(tc.body)
				if err == nil {
					t.Fatalf("decoded %+v", got)
				}
			}
			checkRefusal(t, err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// Every proper prefix of a valid body is refused as truncated, never decoded or a panic.
func TestBatchWire_EveryTruncationIsRefused(t *testing.T) {
	req := AppendBatchDeductRequest(nil, &BatchDeductRequest{Items: []DeductItem{
		{SKU: "tee", Qty: 300, RequestID: "r1", UserID: "u1", Attempt: 200},
		{SKU: "cap", Qty: -70000, RequestID: "r2", UserID: "u2", Attempt: 1},
	}})
	resp := AppendBatchDeductResponse(nil, &BatchDeductResponse{Results: []DeductResult{
		{Remaining: 300, Duplicate: true},
		{Error: &Error{Code: SoldOut, Message: "gone", Leader: "l:1"}},
	}})
	for i := range req {
		_, err := DecodeBatchDeductRequest(req[:i])
		checkRefusal(t, err)
	}
	for i := range resp {
		_, err := DecodeBatchDeductResponse(resp[:i])
		checkRefusal(t, err)
	}
}

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != InvalidArgument || !strings.HasPrefix(ae.Message, "binary batch: ") {
		t.Fatalf("error %#v, want an invalid_argument *Error about the binary batch", err)
	}
}

func FuzzDecodeBatchDeductRequest(f *testing.F) {
	f.Add(AppendBatchDeductRequest(nil, &BatchDeductRequest{Items: []DeductItem{}}))
	f.Add(AppendBatchDeductRequest(nil, &BatchDeductRequest{Items: []DeductItem{
		{SKU: "tee", Qty: 1, RequestID: "r1", UserID: "u1", Attempt: 1},
		{SKU: "", Qty: math.MinInt64, RequestID: "", UserID: "", Attempt: math.MaxInt},
	}}))
	f.Add([]byte{})
	f.Add([]byte(batchRequestMagic))
	f.Add([]byte(batchRequestMagic + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Add([]byte(batchRequestMagic + "\x01\x81\x00"))
	f.Add([]byte(`{"items":[{"sku":"a","qty":1,"request_id":"r","user_id":"u"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeBatchDeductRequest(b)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if again := AppendBatchDeductRequest(nil, &req); !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v from %x, which re-encodes to %x", req, b, again)
		}
	})
}

func FuzzDecodeBatchDeductResponse(f *testing.F) {
	f.Add(AppendBatchDeductResponse(nil, &BatchDeductResponse{Results: []DeductResult{}}))
	f.Add(AppendBatchDeductResponse(nil, &BatchDeductResponse{Results: []DeductResult{
		{Remaining: 4}, {Remaining: -1, Duplicate: true},
		{Error: &Error{Code: NotLeader, Message: "not the leader", Leader: "127.0.0.1:4001"}},
	}}))
	f.Add([]byte{})
	f.Add([]byte(batchResponseMagic + "\x01\x02"))
	f.Add([]byte(batchResponseMagic + "\x01\x00\x00\x02"))
	f.Add([]byte(`{"results":[{"remaining":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := DecodeBatchDeductResponse(b)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if again := AppendBatchDeductResponse(nil, &resp); !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v from %x, which re-encodes to %x", resp, b, again)
		}
	})
}

// BenchmarkBatchWire: one op encodes and decodes a 64-item batch, as the client and the
// leader each do per request; binary beside encoding/json.
func BenchmarkBatchWire(b *testing.B) {
	const items = 64
	req := BatchDeductRequest{Items: make([]DeductItem, items)}
	resp := BatchDeductResponse{Results: make([]DeductResult, items)}
	for i := range items {
		req.Items[i] = DeductItem{SKU: "hot-sku-1", Qty: 1, RequestID: "DQ3TJ7WZQXMN5ZKC4VSRA6HBGE" + fmt.Sprint(i%10), UserID: fmt.Sprintf("user-%06d", i), Attempt: 1}
		if i%4 == 3 {
			resp.Results[i] = DeductResult{Error: &Error{Code: SoldOut, Message: "sku hot-sku-1 is sold out"}}
		} else {
			resp.Results[i] = DeductResult{Remaining: int64(100_000 - i)}
		}
	}
	b.Run("request/binary", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendBatchDeductRequest(buf[:0], &req)
			if _, err := DecodeBatchDeductRequest(buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "wire-bytes")
	})
	b.Run("request/json", func(b *testing.B) {
		var n int
		b.ReportAllocs()
		for b.Loop() {
			buf, err := json.Marshal(req)
			if err != nil {
				b.Fatal(err)
			}
			var out BatchDeductRequest
			if err := json.Unmarshal(buf, &out); err != nil {
				b.Fatal(err)
			}
			n = len(buf)
		}
		b.ReportMetric(float64(n), "wire-bytes")
	})
	b.Run("response/binary", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendBatchDeductResponse(buf[:0], &resp)
			if _, err := DecodeBatchDeductResponse(buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "wire-bytes")
	})
	b.Run("response/json", func(b *testing.B) {
		var n int
		b.ReportAllocs()
		for b.Loop() {
			buf, err := json.Marshal(resp)
			if err != nil {
				b.Fatal(err)
			}
			var out BatchDeductResponse
			if err := json.Unmarshal(buf, &out); err != nil {
				b.Fatal(err)
			}
			n = len(buf)
		}
		b.ReportMetric(float64(n), "wire-bytes")
	})
}
