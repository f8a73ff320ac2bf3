package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestStaleAcks: a leader whose followers' answers are held back must not confirm a read
// with them once they arrive after another leader has sold the stock. hashicorp/raft's
// VerifyLeader counts any successful AppendEntries answer it processes, also one sent
// before an election it has not heard of (docs/RAFT-NOTES.md, "Reads after a pause"); the
// node counts only answers to requests sent after its read round began (node/acks.go).
//
// Each round: the leader L stops hearing anything (its followers' answers and requests are
// held on the proxies; its own requests still go out), L is asked to hand leadership to
// a follower F, whose election the held answers never tell L about, F sells the last unit
// of a SKU, strong reads of that SKU wait on L, and then the held bytes are released, the
// answers to L's heartbeats of before the election first. A read L confirmed with them
// would say the unit is still there after the sale was acknowledged. The lease and
// heartbeat timeouts are long (2 s) so that L still believes it leads when the answers
// arrive, which is the window.
func TestStaleAcks(t *testing.T) {
	runScenario(t, func(t *testing.T, seed int64) {
		w := defaultWorkload()
		w.SKUs = nil
		for i := range 12 {
			w.SKUs = append(w.SKUs, fmt.Sprintf("last-%d", i))
		}
		w.Initial = 1
		w.OpTimeout = 4 * time.Second
		slow := []string{"--heartbeat-timeout", "2s", "--election-timeout", "2s", "--leader-lease-timeout", "2s"}
		e := newEnv(t, settings, "stale-acks", seed, ClusterConfig{Slots: 3, Extra: slow}, w)
		type sale struct {
			sku    string
			leader string // L's HTTP address
			acked  int64  // history time the sale's answer came back
		}
		var sales []sale
		for round := range min(e.rounds(4), len(e.w.SKUs)) {
			sku := e.w.SKUs[round]
			l := e.leader()
			f := e.follower(false)
			e.events.fault("round %d: %s hears nothing; leadership to %s", round, l.ID, f.ID)
			for _, m := range e.c.Members {
				if m != l {
					e.c.Net.Link(l.ID, m.ID).Set(Backward, Fault{Blackhole: true}) // answers to L
					e.c.Net.Link(m.ID, l.ID).Set(Forward, Fault{Blackhole: true})  // requests to L
				}
			}
			// L's heartbeats go on and are answered while nobody else leads yet: those
			// answers, held, are the stale ones.
			e.sleep(500 * time.Millisecond)
			transferDone := e.askTransfer(l, f)
			if err := e.waitRole(f, "leader", 5*time.Second); err != nil {
				e.heal()
				<-transferDone
				e.events.add("round %d: %s did not take over (%v); no window this round", round, f.ID, err)
				continue
			}
			buyer, closeBuyer := e.pinned(f, e.w)
			op := buyer.do(Input{Kind: OpDeduct, SKU: sku, Qty: 1})
			closeBuyer()
			if op.Output.Outcome != OutOK {
				e.fail("round %d: the sale on the new leader %s: %s %s", round, f.ID, op.Output.Outcome, op.Output.Err)
			}
			sales = append(sales, sale{sku: sku, leader: l.HTTPAddr, acked: op.Return})
			// Strong reads on L wait for its read round; then the held answers arrive.
			var wg sync.WaitGroup
			for range 3 { // three readers, each a logical client of its own
				reader, closeReader := e.pinned(l, e.w)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer closeReader()
					reader.do(Input{Kind: OpRead, SKU: sku})
				}()
				time.Sleep(30 * time.Millisecond)
			}
			e.sleep(200 * time.Millisecond)
			e.events.fault("round %d: the held answers reach %s", round, l.ID)
			e.c.Net.Heal()
			wg.Wait()
			<-transferDone
			if _, err := e.c.WaitLeader(context.Background(), e.members...); err != nil {
				e.fail("round %d: after healing: %v", round, err)
			}
		}
		if len(sales) == 0 {
			e.fail("STALE ACKS: no round opened the window (no follower took over): nothing was checked")
		}
		ops := e.finish()
		for _, s := range sales {
			for _, op := range ops {
				if op.Pinned == s.leader && op.Input.Kind == OpRead && op.Input.SKU == s.sku &&
					op.Output.Outcome == OutOK && op.Output.Value > 0 && op.Call > s.acked {
					e.fail("STALE READ: %s read %d available on the old leader, called %v after the sale of its last unit was acknowledged",
						s.sku, op.Output.Value, time.Duration(op.Call-s.acked))
				}
			}
		}
		e.t.Logf("stale-acks: %d rounds opened the window", len(sales))
	})
}

// askTransfer asks m to hand leadership to to, in the background (m may not hear the
// answer of its TimeoutNow); the channel closes when the call has ended.
func (e *env) askTransfer(m, to *Member) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		body := bytes.NewBufferString(fmt.Sprintf(`{"id":%q}`, to.ID))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+m.HTTPAddr+"/v1/cluster/leader", body)
		if err != nil {
			return
		}
		if resp, err := e.c.hc.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	return done
}

// waitRole waits until m says (GET /v1/cluster/self) it has role.
func (e *env) waitRole(m *Member, role string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var self struct {
			Role string `json:"role"`
		}
		if err := e.c.getJSON(context.Background(), m.HTTPAddr, "/v1/cluster/self", &self); err == nil && self.Role == role {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s is not %s after %v", m.ID, role, within)
}
