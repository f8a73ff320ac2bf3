package client_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// exchange is one batch request's encodings as they went over the wire.
type exchange struct {
	contentType, accept, answer string
}

// A node that answers a batch in binary gets the following ones in binary, and each call of
// a binary batch still gets its own answer.
func TestBatcher_SpeaksBinaryToANodeThatDoes(t *testing.T) {
	c := startCluster(t, 1)
	ctx := testContext(t)
	var mu sync.Mutex
	var seen []exchange
	rec := &recorder{base: http.DefaultTransport.(*http.Transport).Clone()}
	rec.after = func(req *http.Request, resp *http.Response, err error) (*http.Response, error) {
		if req.URL.Path == "/v1/batch/deduct" && err == nil {
			mu.Lock()
			seen = append(seen, exchange{req.Header.Get("Content-Type"), req.Header.Get("Accept"), resp.Header.Get("Content-Type")})
			mu.Unlock()
		}
		return resp, err
	}
	cl := newClient(t, client.Config{Endpoints: c.Addrs(), Transport: rec})
	if _, err := cl.CreateSKU(ctx, "wire", 3); err != nil {
		t.Fatal(err)
	}
	if got, err := cl.Deduct(ctx, "wire", 1, "u0"); err != nil || got.Remaining != 2 {
		t.Fatalf("first deduct: %+v %v", got, err)
	}

	type outcome struct {
		remaining int64
		code      api.Code
	}
	calls := []struct {
		sku string
		qty int64
	}{{"wire", 1}, {"wire", 1}, {"wire", 1}, {"wire", 1}, {"wire", 0}, {"nope", 1}}
	outs := make([]outcome, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := cl.Deduct(ctx, call.sku, call.qty, "u")
			outs[i] = outcome{got.Remaining, client.Code(err)}
		}()
	}
	wg.Wait()
	sold, soldOut := map[int64]bool{}, 0
	for _, o := range outs[:4] {
		switch o.code {
		case api.OK:
			sold[o.remaining] = true
		case api.SoldOut:
			soldOut++
		default:
			t.Fatalf("buyer of one unit: %+v", o)
		}
	}
	if !sold[0] || !sold[1] || soldOut != 2 {
		t.Fatalf("buyers got %+v; want remaining 1 and 0 once each, and two sold out", outs[:4])
	}
	if outs[4].code != api.InvalidArgument || outs[5].code != api.NotFound {
		t.Fatalf("qty 0 got %+v, unknown sku got %+v", outs[4], outs[5])
	}

	mu.Lock()
	defer mu.Unlock()
	bin := api.BatchContentType
	if len(seen) < 2 {
		t.Fatalf("%d batch requests", len(seen))
	}
	// The first batch cannot know the node reads binary: it asks in JSON for a binary answer.
	if want := (exchange{"application/json", bin, bin}); seen[0] != want {
		t.Fatalf("first batch %+v, want %+v", seen[0], want)
	}
	for i, x := range seen[1:] {
		if want := (exchange{bin, bin, bin}); x != want {
			t.Fatalf("batch %d: %+v, want %+v", i+1, x, want)
		}
	}
}

// A node that stops reading binary (rolled back to a release without it) refuses a binary
// batch as malformed JSON: that batch's calls get the refusal, and the next batch is JSON.
func TestBatcher_FallsBackToJSONWhenANodeStopsReadingBinary(t *testing.T) {
	var mu sync.Mutex
	var seen []exchange
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster/self", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, api.Node{Role: api.RoleLeader})
	})
	mux.HandleFunc("POST /v1/batch/deduct", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, exchange{contentType: r.Header.Get("Content-Type"), accept: r.Header.Get("Accept")})
		n := len(seen)
		mu.Unlock()
		var req api.BatchDeductRequest
		var err error
		if r.Header.Get("Content-Type") == api.BatchContentType {
			req, err = api.DecodeBatchDeductRequest(body)
		} else {
			err = json.Unmarshal(body, &req)
		}
		if err != nil || len(req.Items) != 1 || req.Items[0].RequestID == "" {
			t.Errorf("request %d: %+v %v", n, req, err)
		}
		switch n {
		case 1: // a node of this release
			w.Header().Set("Content-Type", api.BatchContentType)
			w.Write(api.AppendBatchDeductResponse(nil, &api.BatchDeductResponse{Results: []api.DeductResult{{Remaining: 10}}}))
		case 2: // the same node rolled back
			writeJSON(w, 400, api.ErrorBody{Error: api.Errorf(api.InvalidArgument, "malformed JSON: invalid character 'F' looking for beginning of value")})
		default:
			writeJSON(w, 200, api.BatchDeductResponse{Results: []api.DeductResult{{Remaining: 8}}})
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cl := newClient(t, client.Config{Endpoints: []string{strings.TrimPrefix(srv.URL, "http://")}})
	ctx := testContext(t)

	if got, err := cl.Deduct(ctx, "tee", 1, "u"); err != nil || got.Remaining != 10 {
		t.Fatalf("first deduct: %+v %v", got, err)
	}
	if _, err := cl.Deduct(ctx, "tee", 1, "u"); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("second deduct: %v, want the node's invalid_argument", err)
	}
	for range 2 {
		if got, err := cl.Deduct(ctx, "tee", 1, "u"); err != nil || got.Remaining != 8 {
			t.Fatalf("deduct after the rollback: %+v %v", got, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var types []string
	for _, x := range seen {
		types = append(types, x.contentType)
		if x.accept != api.BatchContentType {
			t.Errorf("batch sent with Accept %q", x.accept)
		}
	}
	bin := api.BatchContentType
	if want := []string{"application/json", bin, "application/json", "application/json"}; strings.Join(types, " ") != strings.Join(want, " ") {
		t.Fatalf("batches sent as %q, want %q", types, want)
	}
}
