package main

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestElectionAfterKill measures failover: it SIGKILLs the leader of a three-process
// cluster several times and prints how long each election took, from the kill until a
// survivor reports itself leader through GET /v1/cluster, and the median. It only runs
// when asked:
//
//	FLASHSTOCK_MEASURE=1 go test ./cmd/stockd -run TestElectionAfterKill -v
//
// FLASHSTOCK_MEASURE_ROUNDS (default 5) sets the number of kills; FLASHSTOCK_MEASURE_FLAGS
// replaces the test's raft timing, e.g. "--heartbeat-timeout 200ms --election-timeout
// 200ms --leader-lease-timeout 200ms" for stockd's defaults. `stockctl bench --stockd
// ./stockd --failover N` measures the same with the defaults, and under load too.
func TestElectionAfterKill(t *testing.T) {
	if os.Getenv("FLASHSTOCK_MEASURE") != "1" {
		t.Skip("a measurement, not a check: set FLASHSTOCK_MEASURE=1 to run it")
	}
	rounds := 5
	if v := os.Getenv("FLASHSTOCK_MEASURE_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FLASHSTOCK_MEASURE_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	timing := shortTiming
	if v := os.Getenv("FLASHSTOCK_MEASURE_FLAGS"); v != "" {
		timing = strings.Fields(v)
	}
	t.Logf("raft timing: %s", strings.Join(timing, " "))

	c := startProcCluster(t, 3, timing)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rounds)*30*time.Second)
	defer cancel()

	var took []time.Duration
	for round := 1; round <= rounds; round++ {
		readyCtx, readyCancel := context.WithTimeout(ctx, 30*time.Second)
		leader, err := c.waitReady(readyCtx)
		readyCancel()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		before, err := c.cluster(ctx, c.byID(leader))
		if err != nil || before.Leader != leader {
			t.Fatalf("round %d: leader %s moved before the kill (%v)", round, leader, err)
		}
		newLeader, term, d, err := c.killAndTimeElection(ctx, c.byID(leader))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if term <= before.Term {
			t.Fatalf("round %d: %s leads in term %d, not after term %d", round, newLeader, term, before.Term)
		}
		t.Logf("round %d: killed leader %s; %s leader after %v", round, leader, newLeader, d.Round(time.Millisecond))
		took = append(took, d)
		c.start(c.byID(leader)) // same command line, back from its data
	}
	slices.Sort(took)
	t.Logf("election after SIGKILL of the leader over %d rounds: median %v, min %v, max %v",
		rounds, took[len(took)/2].Round(time.Millisecond), took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
}
