package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// fakeNode is an httptest server answering with a script: each request gets the next
// answer (the last one repeats). It records what it received.
type fakeNode struct {
	*httptest.Server
	mu      sync.Mutex
	script  []func(w http.ResponseWriter, r *http.Request)
	got     []recorded
	arrived chan struct{} // one tick per scripted request, when not nil
}

type recorded struct {
	path, auth, requestID string
}

func newFakeNode(t *testing.T, script ...func(w http.ResponseWriter, r *http.Request)) *fakeNode {
	f := &fakeNode{script: script}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster/self", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, api.Node{Role: api.RoleFollower})
	})
	mux.HandleFunc("/", f.serve)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var m struct {
		RequestID string           `json:"request_id"`
		Items     []api.DeductItem `json:"items"`
	}
	_ = json.Unmarshal(body, &m)
	batch := r.URL.Path == "/v1/batch/deduct"
	if batch && len(m.Items) > 0 {
		m.RequestID = m.Items[0].RequestID
	}
	f.mu.Lock()
	f.got = append(f.got, recorded{r.URL.Path, r.Header.Get("Authorization"), m.RequestID})
	step := f.script[min(len(f.got), len(f.script))-1]
	f.mu.Unlock()
	if f.arrived != nil {
		f.arrived <- struct{}{}
	}
	if !batch {
		step(w, r)
		return
	}
	// A batch of the client's concurrent deductions: the scripted answer is the answer to
	// its (single) item, so the same script drives the batched path.
	rec := httptest.NewRecorder()
	step(rec, r)
	if rec.Code != 200 {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	var one api.DeductResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &one)
	writeJSON(w, 200, api.BatchDeductResponse{Results: []api.DeductResult{{Remaining: one.Remaining, Duplicate: one.Duplicate}}})
}

func (f *fakeNode) received() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.got...)
}

func (f *fakeNode) addr() string { return strings.TrimPrefix(f.URL, "http://") }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(code api.Code, leader string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		if code == api.Overloaded {
			w.Header().Set("Retry-After", "0")
		}
		writeJSON(w, code.HTTPStatus(), api.ErrorBody{Error: &api.Error{Code: code, Message: "scripted " + string(code), Leader: leader}})
	}
}

func answer(v any) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, v) }
}

func TestDo_RetriesRetryableCodesWithOneRequestID(t *testing.T) {
	f := newFakeNode(t, fail(api.NoLeader, ""), fail(api.Overloaded, ""), fail(api.Timeout, ""),
		fail(api.Internal, ""), answer(api.DeductResponse{Remaining: 4}))
	cl := newClient(t, client.Config{Endpoints: []string{f.addr()}, Token: "s3cret"})
	got, err := cl.Deduct(testContext(t), "tee", 1, "u")
	if err != nil || got.Remaining != 4 {
		t.Fatalf("deduct: %+v, %v", got, err)
	}
	reqs := f.received()
	if len(reqs) != 5 {
		t.Fatalf("%d tries, want 5", len(reqs))
	}
	for _, r := range reqs {
		if r.requestID == "" || r.requestID != reqs[0].requestID {
			t.Fatalf("tries carried request ids %+v, want one id throughout", reqs)
		}
		if r.auth != "Bearer s3cret" {
			t.Fatalf("authorization %q", r.auth)
		}
	}
	// The next logical call gets a new id.
	if _, err := cl.Deduct(testContext(t), "tee", 1, "u"); err != nil {
		t.Fatal(err)
	}
	if last := f.received()[5]; last.requestID == reqs[0].requestID {
		t.Fatal("a new call reused the previous call's request id")
	}
	// The caller's own id is used when given.
	if _, err := cl.Deduct(testContext(t), "tee", 1, "u", client.WithRequestID("order-17")); err != nil {
		t.Fatal(err)
	}
	if last := f.received()[6]; last.requestID != "order-17" {
		t.Fatalf("request id %q, want the caller's", last.requestID)
	}
}

func TestDo_DefiniteErrorsAreTypedAndNotRetried(t *testing.T) {
	for _, tc := range []struct {
		code api.Code
		want error
	}{
		{api.SoldOut, client.ErrSoldOut},
		{api.InsufficientStock, client.ErrInsufficientStock},
		{api.LimitExceeded, client.ErrLimitExceeded},
		{api.NotFound, client.ErrNotFound},
		{api.AlreadyExists, client.ErrAlreadyExists},
		{api.InvalidArgument, client.ErrInvalidArgument},
		{api.Unauthorized, client.ErrUnauthorized},
		{api.Expired, client.ErrExpired},
	} {
		t.Run(string(tc.code), func(t *testing.T) {
			f := newFakeNode(t, fail(tc.code, ""))
			cl := newClient(t, client.Config{Endpoints: []string{f.addr()}})
			_, err := cl.Deduct(testContext(t), "tee", 1, "u")
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Message != "scripted "+string(tc.code) {
				t.Fatalf("the server's message is lost: %v", err)
			}
			if n := len(f.received()); n != 1 {
				t.Fatalf("%d tries of a definite answer", n)
			}
			if client.Code(err) != tc.code {
				t.Fatalf("Code(err) = %q", client.Code(err))
			}
		})
	}
}

// A follower's not_leader hint is followed at once, and the leader is remembered.
func TestDo_FollowsAndRemembersTheLeader(t *testing.T) {
	leader := newFakeNode(t, answer(api.SKU{SKU: "tee", Available: 3}))
	follower := newFakeNode(t, fail(api.NotLeader, leader.addr()))
	cl := newClient(t, client.Config{Endpoints: []string{follower.addr()}, HealthInterval: time.Hour})
	for i := 0; i < 3; i++ {
		if _, err := cl.Restock(testContext(t), "tee", 1); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(follower.received()); n != 1 {
		t.Fatalf("follower asked %d times, want once", n)
	}
	if n := len(leader.received()); n != 3 {
		t.Fatalf("leader asked %d times, want 3", n)
	}
	if cl.Leader() != leader.addr() {
		t.Fatalf("leader %q", cl.Leader())
	}
}

func TestDo_GivesUpAfterMaxAttempts(t *testing.T) {
	f := newFakeNode(t, fail(api.NoLeader, ""))
	cl := newClient(t, client.Config{Endpoints: []string{f.addr()}, MaxAttempts: 3})
	_, err := cl.Deduct(testContext(t), "tee", 1, "u")
	var gu *client.GaveUpError
	if !errors.As(err, &gu) || gu.Attempts != 3 || gu.RequestID == "" || !errors.Is(err, client.ErrNoLeader) {
		t.Fatalf("error %#v", err)
	}
	if n := len(f.received()); n != 3 {
		t.Fatalf("%d tries, want 3", n)
	}
}

// Cancelling the context ends a call that is waiting to retry at once: with an hour of
// backoff, a call that ignored it would hang the test.
func TestDo_ContextCancellationStopsRetries(t *testing.T) {
	f := newFakeNode(t, fail(api.NoLeader, ""))
	f.arrived = make(chan struct{}, 16)
	cl := newClient(t, client.Config{Endpoints: []string{f.addr()}, BackoffBase: time.Hour, BackoffMax: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := cl.Deduct(ctx, "tee", 1, "u")
		done <- err
	}()
	<-f.arrived // the first try failed; the call now waits to retry
	cancel()
	err := <-done
	var gu *client.GaveUpError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &gu) || gu.RequestID == "" {
		t.Fatalf("error %v, want context.Canceled naming the request id", err)
	}
	if n := len(f.received()); n != 1 {
		t.Fatalf("%d tries after cancellation, want 1", n)
	}
}

// An unreachable node is skipped: the call goes on to the next one.
func TestDo_UnreachableNodeIsSkipped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	f := newFakeNode(t, answer(api.SKU{SKU: "tee"}))
	cl := newClient(t, client.Config{Endpoints: []string{dead, f.addr()}})
	for i := 0; i < 5; i++ {
		if _, err := cl.GetSKU(testContext(t), "tee", client.WithStale()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, func() error { return healthOf(cl, dead, false) })
}

func TestClose_StopsEveryGoroutine(t *testing.T) {
	f := newFakeNode(t, answer(api.SKU{SKU: "tee", Version: 1}))
	before, _ := ownGoroutines()
	dns := &fakeDNS{hosts: map[string][]string{"flashstock.test": {"127.0.0.1"}}}
	_, port, _ := net.SplitHostPort(f.addr())
	cl, err := client.New(client.Config{Endpoints: []string{f.addr(), "flashstock.test:" + port}, Resolver: dns,
		ResolveInterval: 10 * time.Millisecond, HealthInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.GetSKU(testContext(t), "tee"); err != nil {
		t.Fatal(err)
	}
	_ = cl.Watch(context.Background(), "tee") // a watch the caller never ends: Close must
	cl.Close()
	if _, err := cl.GetSKU(testContext(t), "tee"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
	noLeakedGoroutines(t, before)
}

// Over TLS, a node found through a DNS name is verified against that name although it is
// dialed by IP.
func TestClient_TLSWithDNSName(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.SKU{SKU: "tee", Available: 1})
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	dns := &fakeDNS{hosts: map[string][]string{"example.com": {"127.0.0.1"}}} // httptest's cert names example.com
	cl := newClient(t, client.Config{Endpoints: []string{"example.com:" + port}, Resolver: dns,
		TLS: &tls.Config{RootCAs: pool}})
	if s, err := cl.GetSKU(testContext(t), "tee"); err != nil || s.Available != 1 {
		t.Fatalf("get over TLS: %+v %v", s, err)
	}
}

// Under a slow node, least-outstanding sends it a small share of the reads, where round
// robin gives it a third.
func TestLeastOutstanding_SlowNodeGetsLess(t *testing.T) {
	slowShare := func(bal client.Balancer) int {
		slow := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(20 * time.Millisecond) // the slow node: not an assertion
			writeJSON(w, 200, api.SKU{SKU: "tee"})
		})
		fast1 := newFakeNode(t, answer(api.SKU{SKU: "tee"}))
		fast2 := newFakeNode(t, answer(api.SKU{SKU: "tee"}))
		cl := newClient(t, client.Config{Endpoints: []string{slow.addr(), fast1.addr(), fast2.addr()}, Balancer: bal})
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 45; i++ {
					if _, err := cl.GetSKU(testContext(t), "tee", client.WithStale()); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return len(slow.received())
	}
	rr, least := slowShare(client.RoundRobin()), slowShare(client.LeastOutstanding())
	t.Logf("slow node served %d reads of 360 with round robin, %d with least-outstanding", rr, least)
	if rr < 100 || least*3 > rr {
		t.Fatalf("slow node served %d of 360 reads with least-outstanding, %d with round robin", least, rr)
	}
}

// Calls reuse keep-alive connections instead of dialing one per request.
func TestClient_ReusesConnections(t *testing.T) {
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.SKU{SKU: "tee"})
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	cl := newClient(t, client.Config{Endpoints: []string{strings.TrimPrefix(srv.URL, "http://")}, HealthInterval: time.Hour})
	for i := 0; i < 200; i++ {
		if _, err := cl.GetSKU(testContext(t), "tee"); err != nil {
			t.Fatal(err)
		}
	}
	// One connection for the calls and perhaps one for the first health check; net/http
	// hands a finished connection back to its pool asynchronously, so under load a call
	// may now and then dial anew. A client without keep-alive would dial 200 times.
	if n := dials.Load(); n > 10 {
		t.Fatalf("%d connections for 200 sequential calls", n)
	}
}

// Every endpoint refuses: the call stops at once and says nothing was sent, for a read and
// for a mutation, which keeps its request id.
func TestDo_EveryEndpointRefusingFailsFastAsNotSent(t *testing.T) {
	var dead []string
	for i := 0; i < 3; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead = append(dead, ln.Addr().String())
		ln.Close()
	}
	// Only the context bounds the tries: without failing fast the calls would run to it.
	cl := newClient(t, client.Config{Endpoints: dead, MaxAttempts: -1, DisableBatching: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := cl.GetSKU(ctx, "tee")
	if !errors.Is(err, client.ErrNotSent) || !errors.Is(err, client.ErrUnavailable) || ctx.Err() != nil {
		t.Fatalf("read: %v (context: %v)", err, ctx.Err())
	}
	_, err = cl.Deduct(ctx, "tee", 1, "u", client.WithRequestID("buy-1"))
	var ue *client.UnreachableError
	if !errors.As(err, &ue) || ue.RequestID != "buy-1" || !strings.Contains(err.Error(), "not sent") {
		t.Fatalf("mutation: %v", err)
	}
}

// Every answer names the leader (X-Flashstock-Leader): a call answered through a follower
// points the next ones at the leader, without waiting for a health check to find it.
func TestDo_LearnsTheLeaderFromAnyAnswer(t *testing.T) {
	leader := newFakeNode(t, answer(api.SKU{SKU: "tee", Available: 3}))
	follower := newFakeNode(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(api.HeaderLeader, leader.addr())
		writeJSON(w, 200, api.SKU{SKU: "tee", Available: 4})
	})
	cl := newClient(t, client.Config{Endpoints: []string{follower.addr()}, HealthInterval: time.Hour})
	for i := 0; i < 3; i++ {
		if _, err := cl.Restock(testContext(t), "tee", 1); err != nil {
			t.Fatal(err)
		}
	}
	if n, m := len(follower.received()), len(leader.received()); n != 1 || m != 2 {
		t.Fatalf("follower asked %d times, leader %d; want 1 and 2", n, m)
	}
}

// A node that refuses the connection was sent nothing, so the call goes on to another node
// at once: after a leader's death, the backoff is not where the time goes. With a day of
// backoff, a call that waited would outlast the test.
func TestDo_LeavesARefusingNodeAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	follower := newFakeNode(t, fail(api.NotLeader, dead), answer(api.SKU{SKU: "tee", Available: 3}))
	cl := newClient(t, client.Config{Endpoints: []string{follower.addr()}, HealthInterval: time.Hour,
		BackoffBase: 24 * time.Hour, BackoffMax: 24 * time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Restock(ctx, "tee", 1); err != nil {
		t.Fatalf("restock with the named leader refusing connections: %v", err)
	}
}

// A node that has just won an election while a forwarded request waited answers
// not_leader naming itself: the call is sent there again at once.
func TestDo_FollowsAHintNamingTheAnsweringNode(t *testing.T) {
	var f *fakeNode
	f = newFakeNode(t, func(w http.ResponseWriter, r *http.Request) { fail(api.NotLeader, f.addr())(w, r) },
		answer(api.SKU{SKU: "tee", Available: 3}))
	cl := newClient(t, client.Config{Endpoints: []string{f.addr()}, HealthInterval: time.Hour,
		BackoffBase: 24 * time.Hour, BackoffMax: 24 * time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Restock(ctx, "tee", 1); err != nil {
		t.Fatalf("restock: %v", err)
	}
	if n := len(f.received()); n != 2 {
		t.Fatalf("%d tries, want 2", n)
	}
}
