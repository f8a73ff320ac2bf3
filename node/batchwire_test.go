package node

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// batchAnswer is one answer to POST /v1/batch/deduct as it came over the wire.
type batchAnswer struct {
	status      int
	contentType string
	raw         []byte
}

// postBatch posts body with the given Content-Type and Accept ("" leaves a header out).
func postBatch(t *testing.T, c *apiClient, addr, contentType, accept string, body []byte) batchAnswer {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+addr+"/v1/batch/deduct", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return batchAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), raw}
}

// results decodes a 200 answer in the encoding its Content-Type names, which must be want.
func (a batchAnswer) results(t *testing.T, want string) []api.DeductResult {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	if a.contentType != want {
		t.Fatalf("answer in %q, want %q", a.contentType, want)
	}
	if want == api.BatchContentType {
		out, err := api.DecodeBatchDeductResponse(a.raw)
		if err != nil {
			t.Fatalf("binary answer: %v", err)
		}
		return out.Results
	}
	var out api.BatchDeductResponse
	if err := json.Unmarshal(a.raw, &out); err != nil {
		t.Fatalf("JSON answer %s: %v", a.raw, err)
	}
	return out.Results
}

// encodeBatch is a request body and its Content-Type, binary or JSON.
func encodeBatch(t *testing.T, binary bool, req api.BatchDeductRequest) ([]byte, string) {
	t.Helper()
	if binary {
		return api.AppendBatchDeductRequest(nil, &req), api.BatchContentType
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b, "application/json"
}

// The binary encoding changes how a batch travels, not what it does: through the leader or a
// follower (which forwards the body to the leader), in binary or JSON, the same batch gets
// the same answers, item by item.
func TestBatchWire_SameAnswersAsJSON(t *testing.T) {
	c := newUnit(t, unitSpec{nodes: 3})
	leader, follower := c.addr(0), c.addr(1)

	t.Run("through leader and follower", func(t *testing.T) {
		// Each way gets its own SKUs, named alike so that messages compare equal once the
		// prefix is taken out.
		ways := []struct {
			prefix string
			addr   string
			binary bool
		}{{"lj-", leader, false}, {"lb-", leader, true}, {"fj-", follower, false}, {"fb-", follower, true}}
		var first [][]api.DeductResult
		for _, way := range ways {
			p := way.prefix
			c.createSKU(p+"a", 3)
			c.createSKU(p+"b", 1)
			batches := []api.BatchDeductRequest{
				{Items: []api.DeductItem{
					{SKU: p + "a", Qty: 2, RequestID: p + "i1", UserID: "u", Attempt: 1},
					{SKU: p + "a", Qty: 0, RequestID: p + "i2", UserID: "u", Attempt: 1}, // invalid
					{SKU: p + "zz", Qty: 1, RequestID: p + "i3", UserID: "u", Attempt: 1},
					{SKU: p + "a", Qty: 2, RequestID: p + "i4", UserID: "u", Attempt: 1}, // 1 left after i1
					{SKU: p + "a", Qty: 1, RequestID: p + "i5", UserID: "u", Attempt: 1},
					{SKU: p + "a", Qty: 1, RequestID: p + "i6", UserID: "u", Attempt: 1}, // none left
					{SKU: p + "a", Qty: 2, RequestID: p + "i1", UserID: "u", Attempt: 2}, // a retry of i1
					{SKU: p + "b", Qty: 1, RequestID: p + "i7", UserID: "", Attempt: 1},  // no user
					{SKU: p + "b", Qty: 1, RequestID: p + "i8", UserID: "u", Attempt: 1},
				}},
				// Sold out before it arrives: answered from a read, without the log.
				{Items: []api.DeductItem{{SKU: p + "b", Qty: 1, RequestID: p + "i9", UserID: "u", Attempt: 1}}},
			}
			want := [][]struct {
				code      api.Code
				remaining int64
				dup       bool
			}{
				{{api.OK, 1, false}, {api.InvalidArgument, 0, false}, {api.NotFound, 0, false},
					{api.InsufficientStock, 0, false}, {api.OK, 0, false}, {api.SoldOut, 0, false},
					{api.OK, 1, true}, {api.InvalidArgument, 0, false}, {api.OK, 0, false}},
				{{api.SoldOut, 0, false}},
			}
			ct := "application/json"
			if way.binary {
				ct = api.BatchContentType
			}
			for bi, batch := range batches {
				body, _ := encodeBatch(t, way.binary, batch)
				got := postBatch(t, &c.apiClient, way.addr, ct, ct, body).results(t, ct)
				if len(got) != len(want[bi]) {
					t.Fatalf("%s batch %d: %d results, want %d", p, bi, len(got), len(want[bi]))
				}
				for i, w := range want[bi] {
					r := got[i]
					code := api.OK
					if r.Error != nil {
						code = r.Error.Code
						r.Error.Message = strings.ReplaceAll(r.Error.Message, p, "")
						if r.Error.Message == "" {
							t.Errorf("%s batch %d item %d: error without a message", p, bi, i)
						}
					}
					if code != w.code || r.Remaining != w.remaining || r.Duplicate != w.dup {
						t.Errorf("%s batch %d item %d: %+v (error %v), want %+v", p, bi, i, r, r.Error, w)
					}
				}
				if len(first) <= bi {
					first = append(first, got)
				} else if !reflect.DeepEqual(got, first[bi]) {
					t.Errorf("%s batch %d answered %s, the first way %s", p, bi, dump(got), dump(first[bi]))
				}
			}
			var s api.SKU
			c.mustCall(way.addr, "GET", "/v1/skus/"+p+"a", nil, &s)
			if s.Sold != 3 || s.Available != 0 {
				t.Fatalf("%s: sku %+v", p, s)
			}
		}
	})

	t.Run("each header on its own", func(t *testing.T) {
		c.createSKU("mix", 100)
		item := func(id string) api.BatchDeductRequest {
			return api.BatchDeductRequest{Items: []api.DeductItem{{SKU: "mix", Qty: 1, RequestID: id, UserID: "u", Attempt: 1}}}
		}
		bin := api.BatchContentType
		cases := []struct {
			name           string
			binary         bool
			contentType    string
			accept, answer string
		}{
			{"binary body, no accept", true, bin, "", "application/json"},
			{"binary body, JSON accepted", true, bin, "application/json", "application/json"},
			{"binary body with parameters", true, "Application/Vnd.Flashstock.Batch-V1; charset=binary", bin, bin},
			{"JSON body, binary accepted", false, "application/json", "application/json;q=0.5, " + bin + ";q=1", bin},
			{"JSON body without a type, binary accepted", false, "", bin, bin},
		}
		n := 0
		for _, tc := range cases {
			for _, addr := range []string{leader, follower} {
				n++
				body, _ := encodeBatch(t, tc.binary, item(tc.name+addr))
				got := postBatch(t, &c.apiClient, addr, tc.contentType, tc.accept, body).results(t, tc.answer)
				if len(got) != 1 || got[0].Error != nil || got[0].Remaining != int64(100-n) {
					t.Fatalf("%s via %s: %s", tc.name, addr, dump(got))
				}
			}
		}
	})

	t.Run("malformed binary is refused in JSON", func(t *testing.T) {
		c.createSKU("m", 5)
		valid := api.AppendBatchDeductRequest(nil, &api.BatchDeductRequest{Items: []api.DeductItem{{SKU: "m", Qty: 1, RequestID: "m1", UserID: "u", Attempt: 1}}})
		cases := []struct {
			name   string
			body   []byte
			status int
		}{
			{"empty body", nil, 400},
			{"JSON body", []byte(`{"items":[{"sku":"m","qty":1,"request_id":"m2","user_id":"u"}]}`), 400},
			{"response magic", api.AppendBatchDeductResponse(nil, &api.BatchDeductResponse{Results: []api.DeductResult{{Remaining: 1}}}), 400},
			{"truncated", valid[:len(valid)-1], 400},
			{"trailing bytes", append(bytes.Clone(valid), 0), 400},
			{"no items", api.AppendBatchDeductRequest(nil, &api.BatchDeductRequest{}), 400},
			{"too many items", api.AppendBatchDeductRequest(nil, &api.BatchDeductRequest{Items: make([]api.DeductItem, api.MaxBatchItems+1)}), 400},
			{"body over 1 MiB", api.AppendBatchDeductRequest(nil, &api.BatchDeductRequest{Items: []api.DeductItem{{SKU: "m", Qty: 1, RequestID: strings.Repeat("x", 1<<20), UserID: "u"}}}), 413},
		}
		for _, tc := range cases {
			for _, addr := range []string{leader, follower} {
				a := postBatch(t, &c.apiClient, addr, api.BatchContentType, api.BatchContentType, tc.body)
				if a.status != tc.status || a.contentType != "application/json" {
					t.Fatalf("%s via %s: status %d in %q, want %d in JSON: %q", tc.name, addr, a.status, a.contentType, tc.status, a.raw)
				}
				var eb api.ErrorBody
				dec := json.NewDecoder(bytes.NewReader(a.raw))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&eb); err != nil || eb.Error == nil || eb.Error.Code != api.InvalidArgument || eb.Error.Message == "" {
					t.Fatalf("%s via %s: error body %s (%v)", tc.name, addr, a.raw, err)
				}
			}
		}
		var s api.SKU
		c.mustCall(leader, "GET", "/v1/skus/m", nil, &s)
		if s.Available != 5 {
			t.Fatalf("refused bodies changed the stock: %+v", s)
		}
	})
}

func dump(rs []api.DeductResult) string {
	b, _ := json.Marshal(rs)
	return string(b)
}
