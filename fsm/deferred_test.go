package fsm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// With commits deferred, reads still see every batch applied: GetSKU from the staged view
// without a commit, other reads by committing first. Waiting for an index commits it.
func TestDeferCommit_ReadsSeeStagedBatches(t *testing.T) {
	r := newReplica(t, Options{DeferCommit: true})
	r.apply(create("hot", 1000, 0))
	r.apply(deduct("d-1", "hot", "u", 1))
	if got := r.m.AppliedIndex(); got != 0 || r.m.StagedIndex() != 2 {
		t.Fatalf("applied %d staged %d after two batches, want 0 and 2 (nothing committed yet)", got, r.m.StagedIndex())
	}
	if s, err := r.m.GetSKU("hot"); err != nil || s.Sold != 1 || s.Version != 2 {
		t.Fatalf("GetSKU of a staged SKU: %+v, %v", s, err)
	}
	if r.m.AppliedIndex() != 0 {
		t.Fatalf("GetSKU committed (applied %d)", r.m.AppliedIndex())
	}
	if !r.m.Remembers("d-1") || r.m.AppliedIndex() != 2 {
		t.Fatalf("Remembers a staged request id: false or no commit (applied %d)", r.m.AppliedIndex())
	}
	r.apply(deduct("d-x", "hot", "u", 1))
	if h, err := r.m.History("hot", 10); err != nil || len(h) != 3 {
		t.Fatalf("History of a staged SKU: %+v, %v", h, err)
	}
	if r.m.AppliedIndex() != 3 {
		t.Fatalf("a read of the file did not commit what was staged (applied %d)", r.m.AppliedIndex())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.apply(deduct("d-2", "hot", "u", 1))
	if err := r.m.WaitApplied(ctx, 4); err != nil || r.m.AppliedIndex() != 4 {
		t.Fatalf("WaitApplied(4): %v, applied %d", err, r.m.AppliedIndex())
	}

	// Readers racing the applier: whatever index a reader waits for, the read after it
	// shows at least that many deductions.
	const n = 400
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				idx := r.m.StagedIndex() + 1 // an entry not applied yet, now and then
				if idx > n+4 {
					return
				}
				if err := r.m.WaitApplied(ctx, idx); err != nil {
					errs <- err
					return
				}
				if got := r.m.AppliedIndex(); got < idx {
					errs <- fmt.Errorf("WaitApplied(%d) returned at applied index %d", idx, got)
					return
				}
				s, err := r.m.GetSKU("hot")
				if err != nil || s.Sold < int64(idx-1) {
					errs <- fmt.Errorf("waited for %d, read %+v (%v)", idx, s, err)
					return
				}
			}
		}()
	}
	for i := range n {
		if _, err := r.m.ApplyBatch([]Entry{r.entry(deduct(fmt.Sprintf("d-%d", i+4), "hot", "u", 1))}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := r.m.Flush(); err != nil {
		t.Fatal(err)
	}
	r.check(nil)
}

// Close commits what is staged; the file reopens with every batch in it.
func TestDeferCommit_CloseCommitsStagedBatches(t *testing.T) {
	r := newReplica(t, Options{DeferCommit: true})
	r.apply(create("hot", 10, 0))
	r.apply(deduct("d-1", "hot", "u", 3))
	m := r.reopen(Options{})
	defer m.Close()
	s, err := m.GetSKU("hot")
	if err != nil || s.Sold != 3 || m.AppliedIndex() != 2 {
		t.Fatalf("reopened: %+v, %v, applied %d", s, err, m.AppliedIndex())
	}
}

// A file that is never synced does not sync when it grows either (bbolt's grow is a
// truncate and a full fsync, tens of milliseconds of a sale's unsynced pages with the state
// lock held). It then grows by writing past its end, and the image a killed process leaves
// behind still opens with every committed batch: the page cache holds what was written.
func TestNoSync_GrowsWithoutSyncAndSurvivesAKill(t *testing.T) {
	r := newReplica(t, Options{DeferCommit: true})
	if !r.m.db.NoGrowSync {
		t.Fatal("a NoSync state file syncs when it grows")
	}
	r.apply(create("hot", 1_000_000, 0))
	before, err := os.Stat(r.m.Path())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		cmds := make([]Command, 100)
		for j := range cmds {
			cmds[j] = deduct(fmt.Sprintf("grow-%04d-%03d-%s", i, j, strings.Repeat("x", 40)), "hot", "u", 1)
		}
		r.apply(Command{Kind: KindBatch, Batch: cmds})
	}
	if err := r.m.Flush(); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(r.m.Path())
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() <= before.Size() {
		t.Fatalf("the file did not grow (%d → %d bytes): the test proves nothing", before.Size(), after.Size())
	}
	image, err := os.ReadFile(r.m.Path()) // the machine stays open, as a killed process leaves it
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "killed.db")
	if err := os.WriteFile(path, image, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.db.NoGrowSync {
		t.Error("a synced state file skips the sync when it grows")
	}
	if s, err := m.GetSKU("hot"); err != nil || s.Sold != 4000 || m.AppliedIndex() != 41 {
		t.Fatalf("the killed image: %+v, %v, applied %d; want 4000 sold at index 41", s, err, m.AppliedIndex())
	}
	if err := m.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if got, want := (&replica{t: t, m: m}).hash(), r.hash(); got != want {
		t.Fatal("the killed image hashes differently from the live state")
	}
}

// The SKU cache and the staged view outlive a commit, so a sale over many SKUs reads none
// from the file again; past their bound a commit empties both, and reads and deductions go
// on from the file.
func TestDeferCommit_SKUCacheKeptAcrossCommitsWithinItsBound(t *testing.T) {
	r := newReplica(t, Options{DeferCommit: true, MaxCachedSKUs: 4})
	skus := []string{"s0", "s1", "s2", "s3", "s4"}
	sold := map[string]int64{}
	for _, s := range skus[:4] {
		r.apply(create(s, 100, 0))
	}
	for round := range 3 {
		for i, s := range skus[:4] {
			r.apply(deduct(fmt.Sprintf("a%d-%d", round, i), s, "u", int64(i+1)))
			sold[s] += int64(i + 1)
		}
		if err := r.m.Flush(); err != nil {
			t.Fatal(err)
		}
		if len(r.m.skus) != 4 || len(r.m.stagedSKUs) != 4 {
			t.Fatalf("after commit %d: %d cached, %d in the staged view; want all 4 kept", round, len(r.m.skus), len(r.m.stagedSKUs))
		}
	}
	r.apply(create("s4", 100, 0), deduct("b", "s4", "u", 7))
	sold["s4"] = 7
	if err := r.m.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(r.m.skus) != 0 || len(r.m.stagedSKUs) != 0 {
		t.Fatalf("past the bound: %d cached, %d in the staged view; want both emptied", len(r.m.skus), len(r.m.stagedSKUs))
	}
	for i, s := range skus {
		if got := r.sku(s); got.Sold != sold[s] || got.Available != 100-sold[s] {
			t.Fatalf("%s after the cache was emptied: %+v, want %d sold", s, got, sold[s])
		}
		r.apply(deduct(fmt.Sprintf("c%d", i), s, "u", 1))
		if got := r.sku(s); got.Sold != sold[s]+1 {
			t.Fatalf("%s: sold %d after one more deduction, want %d", s, got.Sold, sold[s]+1)
		}
	}
	if err := r.m.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := r.m.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}
