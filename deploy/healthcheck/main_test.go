package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHealthURL_FromListenAddress(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		httpAddr string
		want     string
	}{
		{nil, "", "http://127.0.0.1:4001/healthz"},
		{nil, "0.0.0.0:4001", "http://127.0.0.1:4001/healthz"},
		{nil, "[::]:4100", "http://127.0.0.1:4100/healthz"},
		{nil, ":4200", "http://127.0.0.1:4200/healthz"},
		{nil, "10.1.2.3:4001", "http://10.1.2.3:4001/healthz"},
		{[]string{"http://n1:4001/healthz"}, "0.0.0.0:4001", "http://n1:4001/healthz"},
	} {
		if got := healthURL(tc.args, tc.httpAddr); got != tc.want {
			t.Errorf("healthURL(%q, %q) = %q, want %q", tc.args, tc.httpAddr, got, tc.want)
		}
	}
}

func TestCheck_PassesOnlyOn200(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	if err := check(context.Background(), srv.URL+"/healthz"); err != nil {
		t.Errorf("healthy node: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := check(context.Background(), srv.URL+"/healthz"); err == nil {
		t.Error("a 503 passed the health check")
	}
	srv.Close()
	if err := check(context.Background(), srv.URL+"/healthz"); err == nil {
		t.Error("a node that is down passed the health check")
	}
}
