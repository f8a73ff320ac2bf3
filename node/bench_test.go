package node

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// BenchmarkHotSKU_HTTP: buyers deduct one unit each from one SKU over plain HTTP, one
// request per deduction, as a non-Go application does (docs/API.md): the real handler
// chain of real nodes, raft over loopback, fsync on, a net/http client with one keep-alive
// connection per buyer. One op is one acknowledged deduction. The cases: the leader of a
// single node, the leader of 3 nodes, and a follower of 3 nodes that forwards every
// request to its leader, with 64 × GOMAXPROCS buyers; and the leader of a single node with
// one buyer, where every deduction is a log entry of its own: the batch sizes do not vary,
// so a memory profile of it (-test.memprofilerate 1) counts each request's allocations in
// the handler chain exactly. (allocs/op still moves a little with the run's length: the
// node's timers allocate too.)
//
// Every node and the client share this process, so allocs/op and B/op count all of them:
// the client's and raft's shares are the same before and after a change to the HTTP path,
// which is what an A/B of these numbers compares (BENCHMARKS.md, "Plain HTTP path").
func BenchmarkHotSKU_HTTP(b *testing.B) {
	for _, bc := range []struct {
		name     string
		nodes    int
		follower bool
		serial   bool
	}{
		{"leader1", 1, false, false},
		{"leader3", 3, false, false},
		{"follower3", 3, true, false},
		{"leader1-serial", 1, false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := benchCluster(b, bc.nodes)
			li, l := c.WaitLeader()
			addr := l.HTTPAddr()
			c.mustCall(addr, "PUT", "/v1/skus/hot", map[string]any{"stock": 1_000_000_000}, nil)
			if bc.follower {
				addr = c.Node((li + 1) % bc.nodes).HTTPAddr()
			}
			benchDeductHTTP(b, "http://"+addr+"/v1/skus/hot/deduct", bc.serial)
		})
	}
}

// benchDeductHTTP runs the buyers against url until b.N deductions are acknowledged.
func benchDeductHTTP(b *testing.B, url string, serial bool) {
	tr := &http.Transport{MaxIdleConnsPerHost: 4096, MaxIdleConns: 4096}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var seq, retries atomic.Int64
	// buy makes one deduction, with body as its buffer; false ends the run.
	buy := func(body []byte) ([]byte, bool) {
		// The body is built without fmt so that the client's own allocations stay few and
		// the same in every run.
		id := seq.Add(1)
		body = append(body[:0], `{"qty":1,"request_id":"r`...)
		body = strconv.AppendInt(body, id, 10)
		body = append(body, `","user_id":"u`...)
		body = strconv.AppendInt(body, id%1000, 10)
		body = append(body, `"}`...)
		for {
			resp, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return body, false
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				return body, true
			case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				// On a starved host the leader can lose its term for a moment: the buyer
				// sends the same request again, as every client does (docs/API.md), and the
				// run says how often that happened.
				retries.Add(1)
				time.Sleep(10 * time.Millisecond)
			default:
				b.Errorf("status %d", resp.StatusCode)
				return body, false
			}
		}
	}
	b.ReportAllocs()
	cpu0 := processCPU(b)
	b.ResetTimer()
	if serial {
		var body []byte
		for i := 0; i < b.N; i++ {
			var ok bool
			if body, ok = buy(body); !ok {
				return
			}
		}
	} else {
		b.SetParallelism(64)
		b.RunParallel(func(pb *testing.PB) {
			var body []byte
			for pb.Next() {
				var ok bool
				if body, ok = buy(body); !ok {
					return
				}
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deductions/s")
	b.ReportMetric(float64(retries.Load()), "retries")
}

// processCPU is the CPU time this process has used, user and system, in ns. Per op it is
// the cost of a deduction to the machine (client and nodes together), which the other
// loads on a shared host do not inflate the way they inflate ns/op.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchCluster runs nodes with production timings and no log output.
func benchCluster(b *testing.B, size int) *testCluster {
	return newCluster(b, size, func(cfg *Config) {
		d := DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
		cfg.Logger = hclog.NewNullLogger()
	})
}
