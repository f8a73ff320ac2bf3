package fsm

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkApply_HotSKU measures deductions of one SKU with fsync on, batch sizes as raft
// hands them to a BatchingFSM. One op is one deduction.
func BenchmarkApply_HotSKU(b *testing.B) {
	for _, size := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			benchDeduct(b, size, 1)
		})
	}
}

// BenchmarkApply_ManySKUs spreads the same load over 1000 SKUs.
func BenchmarkApply_ManySKUs(b *testing.B) {
	benchDeduct(b, 1024, 1000)
}

var benchNoSync = os.Getenv("BENCH_NOSYNC") != ""

func benchDeduct(b *testing.B, batch, skus int) {
	m, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{NoSync: benchNoSync})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	var index uint64
	var setup []Entry
	for s := 0; s < skus; s++ {
		index++
		data, _ := Encode(create(fmt.Sprintf("sku-%d", s), MaxInitial, 0))
		setup = append(setup, Entry{Index: index, Data: data})
	}
	if _, err := m.ApplyBatch(setup); err != nil {
		b.Fatal(err)
	}
	// Encode up front: the benchmark measures apply, not encoding.
	entries := make([]Entry, b.N)
	for i := range entries {
		data, _ := Encode(Command{Kind: KindDeduct, RequestID: fmt.Sprintf("req-%d", i),
			SKU: fmt.Sprintf("sku-%d", i%skus), UserID: fmt.Sprintf("user-%d", i%5000), Qty: 1, Time: int64(i)})
		entries[i] = Entry{Index: index + uint64(i) + 1, Data: data}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		res, err := m.ApplyBatch(entries[i:min(i+batch, b.N)])
		if err != nil {
			b.Fatal(err)
		}
		if !res[0].OK() {
			b.Fatalf("deduct rejected: %+v", res[0])
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deductions/s")
}

// BenchmarkApply_CoalescedBatch: deductions arrive as Batch commands of 256 (what the
// node's coalescer proposes under load), 8 entries per transaction. One op is one deduction.
func BenchmarkApply_CoalescedBatch(b *testing.B) {
	benchBatchEntries(b, 1, 256, 8)
}

// BenchmarkApply_Sale is the shape a 3-node cluster under a flash sale hands each replica:
// Batch entries of 64 deductions (one per client batch request), 3 entries per
// transaction, request ids as the Go client makes them (26 characters), one user per buyer.
// One op is one deduction.
func BenchmarkApply_Sale(b *testing.B) {
	for _, skus := range []int{1, 1000} {
		b.Run(fmt.Sprintf("skus=%d", skus), func(b *testing.B) {
			benchBatchEntries(b, skus, 64, 3)
		})
	}
}

// BenchmarkApply_SaleFullTable is BenchmarkApply_Sale/skus=1 at a sale's rate: 100
// deductions per millisecond of log time, so the dedup window (15 min) never forgets and
// the bound (DedupMax, 2M) does once the table is full. Run it with -benchtime 4000000x:
// the second half of the run then forgets a record for each one it remembers, as a
// replica does within seconds of a sale's start.
func BenchmarkApply_SaleFullTable(b *testing.B) {
	benchBatchEntriesAt(b, 1, 64, 3, 100)
}

// benchBatchEntries applies b.N deductions spread over skus SKUs, as Batch entries of per
// deductions, entriesPerTx entries per transaction, one deduction per millisecond.
func benchBatchEntries(b *testing.B, skus, per, entriesPerTx int) {
	benchBatchEntriesAt(b, skus, per, entriesPerTx, 1)
}

// benchBatchEntriesAt is benchBatchEntries at perMs deductions per millisecond.
func benchBatchEntriesAt(b *testing.B, skus, per, entriesPerTx, perMs int) {
	m, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{NoSync: benchNoSync})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	var setup []Entry
	for s := 0; s < skus; s++ {
		data, _ := Encode(create(fmt.Sprintf("bench-x7k2p9-%d", s), MaxInitial, 0))
		setup = append(setup, Entry{Index: uint64(s + 1), Data: data})
	}
	if _, err := m.ApplyBatch(setup); err != nil {
		b.Fatal(err)
	}
	var entries []Entry
	for i := 0; i < b.N; i += per {
		cmd := Command{Kind: KindBatch, Time: int64(i / perMs)}
		for j := i; j < min(i+per, b.N); j++ {
			cmd.Batch = append(cmd.Batch, Command{Kind: KindDeduct, RequestID: fmt.Sprintf("%026d", j*7919),
				SKU: fmt.Sprintf("bench-x7k2p9-%d", (j*31)%skus), UserID: fmt.Sprintf("bench-x7k2p9-u%d", j%512), Qty: 1, Time: int64(i / perMs)})
		}
		data, _ := Encode(cmd)
		entries = append(entries, Entry{Index: uint64(skus + len(entries) + 1), Data: data})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < len(entries); i += entriesPerTx {
		res, err := m.ApplyBatch(entries[i:min(i+entriesPerTx, len(entries))])
		if err != nil {
			b.Fatal(err)
		}
		if !res[0].Batch[0].OK() {
			b.Fatalf("deduct rejected: %+v", res[0].Batch[0])
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deductions/s")
}
