package clustertest

import (
	"context"
	"testing"
	"time"

	"github.com/flashstock/flashstock/internal/lazyfs"
)

// TestPowerLoss cuts the power of the whole cluster or of its leader, again and again,
// dropping every un-fsynced write or (every other pair of cycles) a random half of them, a
// torn loss, under deductions (a tenth of their answers dropped, so the same request_ids are retried)
// and holds, with snapshots and log compaction running: every member's data dir is on a
// disk that drops whatever was not fsynced, and each comes back with a new boot id. No
// acknowledged deduction, reservation, confirm or cancel may be lost, none applied twice,
// retried ids must answer duplicate, the replicas must converge and no node may panic.
func TestPowerLoss(t *testing.T) {
	runScenario(t, func(t *testing.T, seed int64) { powerLoss(t, seed, "power-loss", nil) })
}

// TestPowerLoss_WAL is the same with every raft log in hashicorp/raft-wal (one fsync per
// append instead of raft-boltdb's two).
func TestPowerLoss_WAL(t *testing.T) {
	runScenario(t, func(t *testing.T, seed int64) {
		powerLoss(t, seed, "power-loss/wal", []string{"--raft-log-store", "wal"})
	})
}

func powerLoss(t *testing.T, seed int64, name string, extra []string) {
	if err := lazyfs.Available(); err != nil {
		lazyfs.SkipUnlessCI(t, err)
	}
	w := defaultWorkload()
	w.DropResponses = 0.1
	cfg := ClusterConfig{Slots: 3, Machines: true,
		Extra: append([]string{"--snapshot-threshold", "64", "--snapshot-interval", "200ms", "--trailing-logs", "32"}, extra...)}
	e := newEnv(t, settings, name, seed, cfg, w)
	orders := e.startOrders(2)
	e.startLoad()
	e.sleep(time.Second)
	cycles := 4 // whole cluster and leader, each with a clean and a torn loss
	if e.set.Long {
		cycles = 24
	}
	var files int
	var bytes int64
	for i := range cycles {
		var victims []*Member
		var keep func() bool // nil: every un-fsynced write lost
		kind := "clean"
		if i%4 >= 2 {
			keep, kind = func() bool { return e.rng.IntN(2) == 0 }, "torn"
		}
		if i%2 == 0 {
			for _, id := range e.members {
				victims = append(victims, e.c.Member(id))
			}
			e.events.fault("%s power loss of the whole cluster (cycle %d)", kind, i+1)
		} else {
			l := e.leader()
			victims = []*Member{l}
			e.events.fault("%s power loss of leader %s (cycle %d)", kind, l.ID, i+1)
		}
		for _, m := range victims {
			e.c.Kill(m) // every machine of the cut goes down before any disk is looked at
		}
		for _, m := range victims {
			f, b := e.c.PowerLoss(m, keep)
			files, bytes = files+f, bytes+b
		}
		e.sleep(time.Duration(200+e.rng.IntN(500)) * time.Millisecond)
		for _, m := range victims {
			e.c.Start(m)
		}
		if d, err := e.waitProgress(30 * time.Second); err != nil {
			e.fail("after the power loss of cycle %d: %v", i+1, err)
		} else {
			e.events.add("progress %v after the restart", d.Round(time.Millisecond))
		}
		// Load long enough for snapshots and compaction before the next cut.
		e.sleep(time.Duration(1000+e.rng.IntN(1500)) * time.Millisecond)
	}
	orders.Stop()
	ops := e.finish()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	problems, reserved := orders.check(ctx, e)
	for _, p := range problems {
		e.fail("HOLDS: %s", p)
	}
	dups := 0
	for _, op := range ops {
		if op.Duplicate {
			dups++
		}
	}
	if dups == 0 {
		e.fail("no retried request_id was answered as a duplicate: the scenario did not exercise retries")
	}
	var snaps, rebuilt, cutSnaps int
	for _, m := range e.c.Members {
		snaps += countLines(m.LogPath, "snapshot complete up to")
		rebuilt += countLines(m.LogPath, "setting it aside and rebuilding")
		cutSnaps += countLines(m.LogPath, "removing a snapshot left incomplete")
	}
	if snaps == 0 {
		e.fail("no snapshot was taken during the load")
	}
	if files == 0 {
		e.fail("the power losses dropped nothing: no un-fsynced write to lose")
	}
	t.Logf("%d power-loss cycles: %d files rolled back (%d bytes), %d state files rebuilt, %d snapshots (%d cut midway, removed on start); %d deductions/restocks answered duplicate; %d holds (%d reserved, acknowledged), %d retried hold calls answered duplicate",
		cycles, files, bytes, rebuilt, snaps, cutSnaps, dups, len(orders.orders), reserved, orders.dups)
}
