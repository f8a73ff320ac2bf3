package node

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

// Past the bound of commands in flight, the leader answers overloaded at once, with
// Retry-After, and proposes nothing for those requests.
func TestAdmission_OverloadedPastTheBound(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) { cfg.MaxInflight = 1 })
	addr := c.Node(0).HTTPAddr()
	// The bound counts clients' commands only; the set-up's create is not what is tested,
	// so it retries in case the harness's own first requests still hold the slot.
	eventually(t, 10*time.Second, func() error {
		_, err := c.call(addr, "PUT", "/v1/skus/hot", map[string]any{"stock": 1000}, nil)
		return err
	})
	const buyers = 64
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for b := 0; b < buyers; b++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"qty":1,"request_id":"o%d","user_id":"u"}`, b)
			resp, err := c.client.Post("http://"+addr+"/v1/skus/hot/deduct", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 429 {
				var eb api.ErrorBody
				if json.Unmarshal(raw, &eb) != nil || eb.Error == nil || eb.Error.Code != api.Overloaded || resp.Header.Get("Retry-After") == "" {
					t.Errorf("429 answer %s, Retry-After %q", raw, resp.Header.Get("Retry-After"))
				}
			}
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[429] == 0 || codes[200]+codes[429] != buyers {
		t.Fatalf("answers by status %v: want some 429s and the rest 200", codes)
	}
	var s api.SKU
	c.mustCall(addr, "GET", "/v1/skus/hot", nil, &s)
	if s.Sold != int64(codes[200]) {
		t.Fatalf("sold %d, acknowledged %d: an overloaded request changed state", s.Sold, codes[200])
	}
}
