package paxos

import (
	"flag"
	"testing"
)

var simRuns = flag.Int("paxos.runs", 300, "runs in the seeded single-decree sweep; the Multi-Paxos sweep runs a sixth as many")

var simSeed = flag.Uint64("paxos.seed", 0, "replay one seed of the sweeps (as printed by a failure) instead of all")

func sweepRuns() int { return max(*simRuns, 6) }

// sweepSeeds is 1..n, or only the seed being replayed.
func sweepSeeds(n int) []uint64 {
	if *simSeed != 0 {
		return []uint64{*simSeed}
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

// decide runs a single-decree group until every learner learned, and checks they agree.
func decide(t *testing.T, r *singleRun, maxTicks int) Value {
	t.Helper()
	if !r.run(maxTicks, r.allLearned) {
		if r.err != nil {
			t.Fatalf("%v", r.err)
		}
		got, _ := r.learned()
		t.Fatalf("seed %d: learners did not all learn within %d ticks (learned %v)", r.seed, maxTicks, got)
	}
	got, _ := r.learned()
	var v Value
	for _, x := range got {
		if v == "" {
			v = x
		} else if x != v {
			t.Fatalf("seed %d: learners disagree: %v", r.seed, got)
		}
	}
	return v
}

func TestSingle_OneProposer(t *testing.T) {
	r := newSingleRun(1, singleConfig{acceptors: 3, proposers: 1, learners: 2}, nil)
	if v := decide(t, r, 100); v != "A" {
		t.Fatalf("chose %q, want the only proposal A", v)
	}
}

func TestSingle_DuellingProposers(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		// Equal timeouts make the proposers collide; the jitter must break the tie.
		r := newSingleRun(seed, singleConfig{acceptors: 3, proposers: 3, learners: 1, timeoutTicks: 3,
			net: NetConfig{MinDelay: 1, MaxDelay: 3}}, nil)
		decide(t, r, 2000)
	}
}

func TestSingle_DeafAcceptor(t *testing.T) {
	r := newSingleRun(2, singleConfig{acceptors: 3, proposers: 2, learners: 1}, nil)
	for id := 1; id < len(r.nodes); id++ {
		r.block(NodeID(id), 3) // n3 hears nothing, but could still speak
	}
	decide(t, r, 500)
	if _, ok := r.disks[3].accepted[1]; ok {
		t.Fatal("the deaf acceptor accepted something it never heard")
	}
}

func TestSingle_MinorityCannotDecide(t *testing.T) {
	// 5 acceptors; the proposer and learner can reach only two of them.
	r := newSingleRun(3, singleConfig{acceptors: 5, proposers: 1, learners: 1}, nil)
	r.isolate(3, 4, 5)
	if r.run(300, r.allLearned) {
		t.Fatal("a minority of acceptors decided")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.heal()
	decide(t, r, 300)
}

func TestSingle_PartitionThenHeal(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		r := newSingleRun(seed, singleConfig{acceptors: 5, proposers: 2, learners: 2,
			net: NetConfig{MaxDelay: 3}}, nil)
		r.isolate(1, 2, 6) // proposer 6 with a minority; proposer 7 with the majority
		r.run(40, func() bool { return false })
		r.heal()
		decide(t, r, 1000)
	}
}

func TestSingle_CrashRestartAcceptors(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		r := newSingleRun(seed, singleConfig{acceptors: 3, proposers: 2, learners: 1,
			net: NetConfig{MaxDelay: 4, Drop: 0.1}}, nil)
		for round := range 6 {
			id := NodeID(1 + round%3)
			r.crash(id)
			r.run(7, func() bool { return false })
			r.restart(id)
		}
		decide(t, r, 2000)
	}
}

// TestSingle_UnreliableSweep is the CI sweep: many seeds of a lossy, duplicating,
// reordering network with crashes. Every step is checked by the observer.
func TestSingle_UnreliableSweep(t *testing.T) {
	for _, seed := range sweepSeeds(sweepRuns()) {
		r := newSingleRun(seed, singleConfig{acceptors: 3 + 2*int(seed%2), proposers: 2 + int(seed%3), learners: 2,
			net: NetConfig{Drop: 0.2, Duplicate: 0.2, MaxDelay: 6}}, nil)
		for range 4 {
			id := NodeID(1 + r.rng.IntN(r.cfg.acceptors+r.cfg.proposers))
			r.crash(id)
			r.run(r.rng.IntN(10), func() bool { return false })
			r.restart(id)
		}
		decide(t, r, 5000)
	}
}

// TestSingle_ObserverCatchesBrokenAcceptors: the simulator's observer, too, must fail on a
// broken Paxos — somewhere in a sweep of seeds.
func TestSingle_ObserverCatchesBrokenAcceptors(t *testing.T) {
	for _, f := range []faults{{acceptBelowPromise: true}, {ignorePromiseValues: true}, {quorumOfOne: true}} {
		caught := false
		for seed := uint64(1); seed <= 300 && !caught; seed++ {
			r := newSingleRun(seed, singleConfig{acceptors: 3, proposers: 3, learners: 1, timeoutTicks: 3,
				net: NetConfig{Drop: 0.1, Duplicate: 0.1, MaxDelay: 6}, faults: &f}, nil)
			r.run(300, func() bool { return false })
			caught = r.err != nil
		}
		if !caught {
			t.Errorf("%+v: no seed broke an invariant", f)
		}
	}
}
