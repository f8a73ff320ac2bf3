package paxos

import (
	"flag"
	"testing"
	"time"
)

var modelRounds = flag.Int("paxos.rounds", 0, "rounds per proposer in the exhaustive model check (default 1; 2 explores ~500k states)")

// modelCfg is the configuration the issue asks for: 3 acceptors, 2 proposers, and a few
// ballots (each proposer may start `rounds` of them).
func modelCfg() modelConfig {
	cfg := modelConfig{acceptors: 3, proposers: 2, learners: 1, rounds: 1}
	if testing.Short() {
		cfg.learners = 0 // the proposers still learn, and the space is 7 times smaller
	}
	if *modelRounds > 0 {
		cfg.rounds = *modelRounds
		cfg.learners = 0 // the proposers still learn; a learner multiplies the states by ~7
	}
	return cfg
}

func TestModel_SingleDecreeIsSafe(t *testing.T) {
	cfg := modelCfg()
	start := time.Now()
	res := newModelChecker(cfg).run()
	t.Logf("%d acceptors, %d proposers, %d learner(s), %d round(s) each: %d states, %d transitions, depth %d, %v",
		cfg.acceptors, cfg.proposers, cfg.learners, cfg.rounds, res.states, res.transitions, res.depth,
		time.Since(start).Round(time.Millisecond))
	for _, v := range res.violations {
		t.Errorf("%v", v)
	}
	if res.states < 1000 {
		t.Errorf("only %d states explored: the model is not exercising Paxos", res.states)
	}
}

// TestModel_CatchesBrokenPaxos proves the checker can fail: each deliberately broken variant
// must be caught, with a short counterexample.
func TestModel_CatchesBrokenPaxos(t *testing.T) {
	type want struct {
		invariant string
		maxSteps  int
	}
	tests := []struct {
		name   string
		faults faults
		want   []want
	}{
		{"quorum of one", faults{quorumOfOne: true}, []want{{invLearnedChosen, 6}}},
		{"ignore values in promises", faults{ignorePromiseValues: true}, []want{{invOneChosen, 16}}},
		{"accept below promise", faults{acceptBelowPromise: true}, []want{{invOneChosen, 16}}},
		// Forgetting a promise is visible at once; that it really matters takes longer.
		{"forget promise on restart", faults{forgetPromiseOnRestart: true},
			[]want{{invPromiseMonotone, 4}, {invOneChosen, 18}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := modelCfg()
			cfg.faults = tt.faults
			for _, w := range tt.want {
				cfg.stopAfter = append(cfg.stopAfter, w.invariant)
			}
			res := newModelChecker(cfg).run()
			for _, w := range tt.want {
				v, ok := res.find(w.invariant)
				if !ok {
					t.Fatalf("%q not caught in %d states; violations: %v", w.invariant, res.states, res.violations)
				}
				t.Logf("caught within %d states explored: %v", res.states, v)
				if len(v.trace) > w.maxSteps {
					t.Errorf("counterexample has %d steps, want at most %d", len(v.trace), w.maxSteps)
				}
			}
		})
	}
}
