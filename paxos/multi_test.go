package paxos

import (
	"fmt"
	"testing"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

func newMulti(t *testing.T, seed uint64, cfg multiConfig) *multiRun {
	t.Helper()
	cfg.dir = t.TempDir()
	r, err := newMultiRun(seed, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return r
}

// flashSale creates a SKU with stock units and has buyers try to buy one each.
func flashSale(t *testing.T, r *multiRun, stock, buyers int) {
	t.Helper()
	must(t, r.submit(fsm.Command{Kind: fsm.KindCreateSKU, RequestID: "create", SKU: "phone", Qty: int64(stock)}))
	if !r.runUntil(3000, r.clientsDone) {
		t.Fatalf("seed %d: the SKU was never created: %v", r.seed, r.err)
	}
	for b := range buyers {
		must(t, r.submit(fsm.Command{Kind: fsm.KindDeduct, RequestID: fmt.Sprintf("buy-%d", b),
			SKU: "phone", Qty: 1, UserID: fmt.Sprintf("user-%d", b)}))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkSale checks the end of a healed flash sale: all replicas converged, nothing
// oversold, the same state hash everywhere — and the same as replaying the decided log on
// one fresh fsm.
func checkSale(t *testing.T, r *multiRun, stock, buyers int) {
	t.Helper()
	if r.fatal != nil {
		t.Fatal(r.fatal)
	}
	sold := 0
	for _, c := range r.pending {
		if c.id != "create" && c.result.Code == api.OK {
			sold++
		} else if c.id != "create" && c.result.Code != api.SoldOut {
			t.Errorf("seed %d: %s got %s", r.seed, c.id, c.result.Code)
		}
	}
	if want := min(stock, buyers); sold != want {
		t.Errorf("seed %d: %d buyers were told they bought one, want %d", r.seed, sold, want)
	}
	var hash [32]byte
	for id := 1; id < len(r.machines); id++ {
		m := r.machines[id]
		sku, err := m.GetSKU("phone")
		must(t, err)
		if sku.Sold != int64(min(stock, buyers)) || sku.Available < 0 || sku.Total() != int64(stock) {
			t.Errorf("seed %d: %s: %+v (oversold or lost units)", r.seed, nodeName(NodeID(id)), sku)
		}
		h, err := m.StateHash()
		must(t, err)
		if id > 1 && h != hash {
			t.Errorf("seed %d: %s's state hash differs from n1's", r.seed, nodeName(NodeID(id)))
		}
		hash = h
	}
	// The same commands applied to a single fsm.
	one, err := fsm.Open(t.TempDir()+"/one.fsm", fsm.Options{NoSync: true})
	must(t, err)
	defer one.Close()
	_, err = one.ApplyBatch(r.decidedLog())
	must(t, err)
	if h, _ := one.StateHash(); h != hash {
		t.Errorf("seed %d: replaying the decided log on one fsm gives another state", r.seed)
	}
}

func TestMulti_StableLeaderSkipsPhase1(t *testing.T) {
	r := newMulti(t, 1, multiConfig{replicas: 3})
	flashSale(t, r, 3, 5)
	if !r.runUntil(2000, r.converged) {
		t.Fatalf("not converged: %v", r.err)
	}
	checkSale(t, r, 3, 5)
	// One election, then phase 2 only: the leader's promise covers every slot.
	prepares := 0
	for id := 1; id < len(r.disks); id++ {
		if r.disks[id].hs.MaxRound > 0 {
			prepares++
		}
	}
	if prepares != 1 {
		t.Errorf("%d replicas campaigned on a reliable network, want 1", prepares)
	}
}

func TestMulti_LeaderCrashTakeOver(t *testing.T) {
	r := newMulti(t, 2, multiConfig{replicas: 3, net: NetConfig{MaxDelay: 3}})
	flashSale(t, r, 4, 8)
	r.runUntil(15, func() bool { return false })
	old := r.pickTarget()
	r.crashNode(old)
	if !r.runUntil(3000, r.clientsDone) {
		t.Fatalf("the survivors did not finish the sale: %v", r.err)
	}
	r.restartNode(old)
	if !r.runUntil(3000, r.converged) {
		t.Fatalf("the restarted replica did not catch up: %v", r.err)
	}
	checkSale(t, r, 4, 8)
}

func TestMulti_PartitionedLeaderThenHeal(t *testing.T) {
	r := newMulti(t, 3, multiConfig{replicas: 5, net: NetConfig{MaxDelay: 3}})
	flashSale(t, r, 3, 6)
	lead := r.pickTarget()
	r.isolate(lead) // the old leader keeps thinking it leads, but cannot get a majority
	r.runUntil(400, func() bool { return false })
	r.heal()
	if !r.runUntil(5000, r.converged) {
		t.Fatalf("not converged after heal: %v", r.err)
	}
	checkSale(t, r, 3, 6)
}

// TestMulti_FlashSaleUnreliable is the sale under drops, duplicates, reordering and
// crashes, on many seeds: buyers outnumber stock, nothing is oversold, and the replicas end
// equal to each other and to one fsm fed the decided log.
func TestMulti_FlashSaleUnreliable(t *testing.T) {
	for _, seed := range sweepSeeds(sweepRuns() / 6) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			n := 3 + 2*int(seed%2)
			// Impatient clients retry while their first try may still be decided: some
			// commands end up in two slots, and the fsm must apply them once.
			r := newMulti(t, seed, multiConfig{replicas: n, window: 4, retryTicks: 12,
				net: NetConfig{Drop: 0.15, Duplicate: 0.1, MaxDelay: 5}})
			flashSale(t, r, 4, 10)
			for i := range 5 {
				id := NodeID(1 + r.rng.IntN(n))
				if i%2 == 0 && r.pickTarget() != 0 && r.nodes[r.pickTarget()].(*Replica).IsLeader() {
					id = r.pickTarget() // crash the leader mid-window: holes and re-proposals
				}
				r.crashNode(id)
				r.runUntil(20+r.rng.IntN(60), func() bool { return false })
				r.restartNode(id)
				r.runUntil(r.rng.IntN(40), func() bool { return false })
			}
			// Liveness: once faults stop, with the network still lossy, everything finishes.
			if !r.runUntil(20000, r.converged) {
				t.Fatalf("seed %d: no progress after faults stopped: %v", seed, r.err)
			}
			checkSale(t, r, 4, 10)
		})
	}
}
