package node

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// deductBodies are the seeds of FuzzDecodeDeduct: the plain form the hand reader takes,
// and around it every way a body leaves that form.
var deductBodies = []string{
	`{"qty":1,"request_id":"r1","user_id":"u1"}`,
	"\t{ \"user_id\" : \"u\" ,\n\"qty\":\r-12 , \"request_id\":\"\" }  ",
	`{}`, `{"qty":0}`, `{"qty":-0}`, `{"qty":999999999999999999}`, `{"qty":9223372036854775807}`,
	`{"qty":9223372036854775808}`, `{"qty":01}`, `{"qty":1.0}`, `{"qty":1e2}`, `{"qty":-}`,
	`{"qty":null}`, `{"qty":"1"}`, `{"qty":true}`, `{"QTY":1}`, `{"Request_ID":"r"}`,
	`{"qty":1,"qty":2}`, `{"request_id":"a","request_id":"b"}`, `{"colour":"red"}`,
	`{"request_id":"a\"b"}`, `{"request_id":"a\u0041"}`, `{"user_id":"é"}`, "{\"user_id\":\"a\x7fb\"}",
	"{\"user_id\":\"\xff\"}", "{\"user_id\":\"a\tb\"}", `{"qty":1,}`, `{"qty":1}x`, `{"qty":1} {}`,
	`{"qty":1`, `{"qty"1}`, `{"qty":1 "user_id":"u"}`, `[1]`, ``, ` `, `null`, `{"qty":[1]}`,
}

// FuzzDecodeDeduct: whatever body the hand reader takes, decodeStrict decodes to the same
// request; every other body goes to decodeStrict itself, so the answer to any body is
// decodeStrict's.
func FuzzDecodeDeduct(f *testing.F) {
	for _, b := range deductBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast, strict api.DeductRequest
		if !parseDeduct(body, &fast) {
			return
		}
		if err := decodeStrict(body, &strict); err != nil {
			t.Fatalf("%q: the hand reader took it, decodeStrict refused it: %v", body, err)
		}
		if fast != strict {
			t.Fatalf("%q: hand reader %+v, decodeStrict %+v", body, fast, strict)
		}
	})
}

// TestDecodeDeduct_PlainBodiesSkipReflection: the bodies applications send are read by
// hand, with one allocation for both strings; a body outside the plain form still gets
// decodeStrict's answer.
func TestDecodeDeduct_PlainBodiesSkipReflection(t *testing.T) {
	body := []byte(`{"qty":2,"request_id":"order-7781:1","user_id":"u-42"}`)
	var req api.DeductRequest
	if allocs := testing.AllocsPerRun(100, func() {
		if err := decodeDeduct(body, &req); err != nil {
			t.Fatal(err)
		}
	}); allocs > 1 {
		t.Errorf("%v allocations per plain body, want at most 1", allocs)
	}
	if want := (api.DeductRequest{Qty: 2, RequestID: "order-7781:1", UserID: "u-42"}); req != want {
		t.Fatalf("decoded %+v, want %+v", req, want)
	}
	for _, b := range deductBodies {
		var got, want api.DeductRequest
		gotErr, wantErr := decodeDeduct([]byte(b), &got), decodeStrict([]byte(b), &want)
		if !reflect.DeepEqual(gotErr, wantErr) || (wantErr == nil && got != want) {
			t.Errorf("%q: %+v, %v; decodeStrict %+v, %v", b, got, gotErr, want, wantErr)
		}
	}
}

// TestWriteDeductAnswer_IsWriteJSON: the hand-written answer is writeJSON's, status,
// headers and bytes.
func TestWriteDeductAnswer_IsWriteJSON(t *testing.T) {
	for _, a := range []api.DeductResponse{{Remaining: 41}, {Remaining: 0, Duplicate: true}} {
		got, want := httptest.NewRecorder(), httptest.NewRecorder()
		writeDeductAnswer(got, a)
		writeJSON(want, http.StatusOK, a)
		if got.Code != want.Code || !reflect.DeepEqual(got.Header(), want.Header()) || got.Body.String() != want.Body.String() {
			t.Errorf("%+v: %d %v %q, want %d %v %q", a, got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
		}
	}
}

// BenchmarkDeductJSON: a deduction's body and answer by reflection (decodeStrict,
// writeJSON) and by hand (decodeDeduct, writeDeductAnswer), on one goroutine.
func BenchmarkDeductJSON(b *testing.B) {
	body := []byte(`{"qty":1,"request_id":"r123456","user_id":"u456"}`)
	answer := api.DeductResponse{Remaining: 999_876_543}
	w := &discardWriter{h: http.Header{}}
	for _, bc := range []struct {
		name string
		f    func()
	}{
		{"decode/reflection", func() { var req api.DeductRequest; _ = decodeStrict(body, &req) }},
		{"decode/hand", func() { var req api.DeductRequest; _ = decodeDeduct(body, &req) }},
		{"answer/reflection", func() { writeJSON(w, http.StatusOK, answer) }},
		{"answer/hand", func() { writeDeductAnswer(w, answer) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.f()
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing, so that a benchmark of an answer
// counts only the answer's own work.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
