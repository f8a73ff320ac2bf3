package node

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// BenchmarkHotSKU_HTTP: concurrent buyers deduct one unit each from one SKU through the
// leader's HTTP API on a 3-node cluster with fsync on. One op is one acknowledged
// deduction; there are 64 × GOMAXPROCS buyers, each with its own keep-alive connection.
func BenchmarkHotSKU_HTTP(b *testing.B) {
	c := benchCluster(b)
	addr := c.LeaderAddr()
	c.mustCall(addr, "PUT", "/v1/skus/hot", map[string]any{"stock": 1_000_000_000}, nil)
	tr := &http.Transport{MaxIdleConnsPerHost: 4096, MaxIdleConns: 4096}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var seq atomic.Int64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := seq.Add(1)
			body := fmt.Sprintf(`{"qty":1,"request_id":"r%d","user_id":"u%d"}`, id, id%1000)
			resp, err := client.Post("http://"+addr+"/v1/skus/hot/deduct", "application/json", bytes.NewReader([]byte(body)))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deductions/s")
}

// benchCluster runs 3 nodes with production timings and no log output.
func benchCluster(b *testing.B) *testCluster {
	return newCluster(b, 3, func(cfg *Config) {
		d := DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
		cfg.Logger = hclog.NewNullLogger()
	})
}
