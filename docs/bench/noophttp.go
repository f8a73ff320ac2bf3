//go:build ignore

// noophttp is the do-nothing ceiling of the plain HTTP path: a net/http server that answers
// the same requests as a flashstock node (docs/API.md's deduct, create, read, cluster) from
// one in-memory counter per SKU under a mutex. No raft, no log, no fsync, no dedup, no
// middleware: what is left is net/http and JSON on both sides.
//
// go build -o /tmp/noophttp docs/bench/noophttp.go   (see BENCHMARKS.md, "The do-nothing ceiling")
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

type sku struct{ stock, sold int64 }

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	life := flag.Duration("max-life", 10*time.Minute, "exit after this long")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	self := ln.Addr().String()
	fmt.Println(self)
	var mu sync.Mutex
	skus := map[string]*sku{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"leader":"n1","term":1,"nodes":[{"id":"n1","http_addr":%q,"role":"leader"}]}`, self)
	})
	mux.HandleFunc("PUT /v1/skus/{sku}", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stock int64 `json:"stock"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		skus[r.PathValue("sku")] = &sku{stock: req.Stock}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"sku":%q,"available":%d}`, r.PathValue("sku"), req.Stock)
	})
	mux.HandleFunc("GET /v1/skus/{sku}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s := skus[r.PathValue("sku")]
		var avail, sold int64
		if s != nil {
			avail, sold = s.stock-s.sold, s.sold
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sku":%q,"available":%d,"reserved":0,"sold":%d,"version":1}`, r.PathValue("sku"), avail, sold)
	})
	mux.HandleFunc("POST /v1/skus/{sku}/deduct", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Qty       int64  `json:"qty"`
			RequestID string `json:"request_id"`
			UserID    string `json:"user_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		s := skus[r.PathValue("sku")]
		ok := s != nil && s.stock-s.sold >= req.Qty
		var left int64
		if ok {
			s.sold += req.Qty
			left = s.stock - s.sold
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(409)
			w.Write([]byte(`{"error":{"code":"sold_out","message":"sold out"}}`))
			return
		}
		fmt.Fprintf(w, `{"remaining":%d,"duplicate":false}`, left)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(*life):
	}
	srv.Close()
}
