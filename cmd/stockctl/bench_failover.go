package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/proc"
)

// maxFailoverKills bounds --failover: each kill costs a restart and a catch-up.
const maxFailoverKills = 100

// Pacing of --failover: each kill comes a random 0.5–1.5s (idle) or 1–2s (under load) after
// the cluster was whole again, so kills fall at every phase of the followers' timers; a
// kill whose effect is not seen within failoverWait counts as failed.
const (
	failoverWait      = 30 * time.Second
	failoverPoll      = 5 * time.Millisecond
	failoverCatchUp   = 60 * time.Second
	failoverLoadStart = 2 * time.Second
)

// failoverResult is what --failover prints: per kill, how long the cluster was without a
// leader and (under load) without acknowledging a deduction, and their distributions.
type failoverResult struct {
	Nodes      int        `json:"nodes"`
	StockdArgs []string   `json:"stockd_args"`
	Buyers     int        `json:"buyers"`
	Idle       []killJSON `json:"idle_kills"`
	Load       []killJSON `json:"load_kills"`
	// Idle: SIGKILL → a survivor says it leads (GET /v1/cluster/self, polled every 5ms).
	IdleLeader distJSON `json:"idle_kill_to_leader_ms"`
	// Under load: the same, and SIGKILL → the first deduction acknowledged to a buyer
	// whose HTTP attempt was sent after the kill (what a buyer sees).
	LoadLeader distJSON    `json:"load_kill_to_leader_ms"`
	LoadAck    distJSON    `json:"load_kill_to_ack_ms"`
	OpsPerS    float64     `json:"load_ok_per_s"`
	Errors     uint64      `json:"errors"`
	Resolved   int         `json:"resolved_by_replay"`
	TermBefore uint64      `json:"term_before"`
	TermAfter  uint64      `json:"term_after"`
	Check      checkReport `json:"check"`
}

type killJSON struct {
	Killed    string  `json:"killed"`
	NewLeader string  `json:"new_leader"`
	LeaderMS  float64 `json:"leader_ms"`
	AckMS     float64 `json:"ack_ms,omitempty"`
	Failed    string  `json:"failed,omitempty"`
}

type distJSON struct {
	N   int     `json:"n"`
	Min float64 `json:"min"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	Max float64 `json:"max"`
}

// distOf summarizes samples (ms) by nearest rank: with few samples an interpolated
// percentile would report times no kill took.
func distOf(ms []float64) distJSON {
	if len(ms) == 0 {
		return distJSON{}
	}
	s := slices.Sorted(slices.Values(ms))
	rank := func(p float64) float64 { return s[max(int(math.Ceil(p*float64(len(s))))-1, 0)] }
	return distJSON{N: len(s), Min: round3(s[0]), P50: round3(rank(0.5)), P90: round3(rank(0.9)), Max: round3(s[len(s)-1])}
}

// runFailover kills the leader of the --stockd cluster kills times with no load, then kills
// times under the scenario's load, restarting the killed node after each kill and waiting
// until it has caught up; then it settles unknown outcomes and checks the books as a normal
// run does.
func (env *benchEnv) runFailover(ctx context.Context, cl *stockdCluster, sc scenario, kills int, log io.Writer) (*failoverResult, error) {
	res := &failoverResult{Nodes: len(cl.httpAddrs), StockdArgs: env.f.stockdArgs, Buyers: sc.buyers}
	skus, err := env.createSKUs(ctx, sc)
	if err != nil {
		return nil, err
	}
	if err := env.nodeClients(ctx); err != nil {
		return nil, err
	}
	if res.TermBefore, err = env.term(ctx); err != nil {
		return nil, err
	}
	pace := func(min time.Duration) error {
		return sleepCtx(ctx, min+rand.N(time.Second))
	}
	for k := 0; k < kills && ctx.Err() == nil; k++ {
		if err := pace(500 * time.Millisecond); err != nil {
			break
		}
		kj, err := env.killLeader(ctx, cl, false)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "stockctl bench: idle kill %d/%d: %s\n", k+1, kills, kj.describe())
		res.Idle = append(res.Idle, kj)
	}

	l, buyers, err := env.warmBuyers(ctx, sc, skus)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	stats := newPhaseStats(start, newTimeline(start, time.Hour))
	lctx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		l.drive(lctx, buyers, stats, start.Add(24*time.Hour), 0, false)
	}()
	if err := sleepCtx(ctx, failoverLoadStart); err == nil {
		for k := 0; k < kills && ctx.Err() == nil; k++ {
			if err := pace(time.Second); err != nil {
				break
			}
			kj, err := env.killLeader(ctx, cl, true)
			if err != nil {
				stopLoad()
				<-loadDone
				return nil, err
			}
			fmt.Fprintf(log, "stockctl bench: kill %d/%d under load: %s\n", k+1, kills, kj.describe())
			res.Load = append(res.Load, kj)
		}
	}
	stopLoad()
	<-loadDone
	elapsed := time.Since(start).Seconds()
	res.OpsPerS = math.Round(float64(stats.count(outcomeOK))/elapsed*10) / 10
	res.Errors = stats.count(outcomeUnknown)

	var idleLeader, loadLeader, loadAck []float64
	for _, k := range res.Idle {
		if k.Failed == "" {
			idleLeader = append(idleLeader, k.LeaderMS)
		}
	}
	for _, k := range res.Load {
		if k.Failed == "" {
			loadLeader = append(loadLeader, k.LeaderMS)
			loadAck = append(loadAck, k.AckMS)
		}
	}
	res.IdleLeader, res.LoadLeader, res.LoadAck = distOf(idleLeader), distOf(loadLeader), distOf(loadAck)

	if n := len(l.pending); n > 0 {
		fmt.Fprintf(log, "stockctl bench: replaying %d ops whose outcome was unknown, with their request ids\n", n)
	}
	resolved, unknown := l.replay(ctx, sc.opTimeout)
	res.Resolved = resolved
	expects := make([]skuExpect, len(skus))
	for i, s := range skus {
		expects[i] = skuExpect{SKU: s, Stock: sc.stock, Acked: l.acked[i].Load(), Unknown: unknown[i]}
	}
	cctx, cancel := context.WithTimeout(ctx, convergeWait+4*sc.opTimeout)
	defer cancel()
	if res.Check, err = runCheck(cctx, env.clients[0], env.nodes, sc.prefix, expects, convergeWait); err != nil {
		return nil, err
	}
	if res.TermAfter, err = env.term(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// killLeader SIGKILLs the leader and times how long until a survivor leads and, under load,
// until a buyer has a deduction acknowledged; then it restarts the killed node and waits
// until it has caught up with the leader.
func (env *benchEnv) killLeader(ctx context.Context, cl *stockdCluster, loaded bool) (killJSON, error) {
	old, err := env.leaderIndex(ctx, cl, nil)
	if err != nil {
		return killJSON{}, err
	}
	kj := killJSON{Killed: nodeName(old)}
	at := time.Now()
	if loaded {
		for _, ct := range env.counts {
			ct.setMark(at)
		}
	}
	if err := cl.procs[old].Kill(); err != nil {
		return kj, err
	}
	survivors := []int{}
	for i := range cl.httpAddrs {
		if i != old {
			survivors = append(survivors, i)
		}
	}
	deadline := at.Add(failoverWait)
	leaderSeen, acked := false, !loaded
	for !(leaderSeen && acked) {
		if time.Now().After(deadline) {
			kj.Failed = fmt.Sprintf("no new leader or no acknowledged deduction within %v", failoverWait)
			break
		}
		if !leaderSeen {
			if i, err := env.leaderIndex(ctx, cl, survivors); err == nil {
				leaderSeen, kj.NewLeader, kj.LeaderMS = true, nodeName(i), ms(time.Since(at))
			}
		}
		if !acked {
			first := int64(0)
			for _, ct := range env.counts {
				if a := ct.ackAfterMark.Load(); a != 0 && (first == 0 || a < first) {
					first = a
				}
			}
			if first != 0 {
				acked, kj.AckMS = true, ms(time.Unix(0, first).Sub(at))
			}
		}
		if err := sleepCtx(ctx, failoverPoll); err != nil {
			return kj, err
		}
	}
	kj.LeaderMS, kj.AckMS = round3(kj.LeaderMS), round3(kj.AckMS)
	if err := cl.procs[old].Start(); err != nil {
		return kj, err
	}
	return kj, env.waitCaughtUp(ctx, cl, old)
}

// leaderIndex returns the index of the node among idx (all when nil) that says it leads;
// an error when none does.
func (env *benchEnv) leaderIndex(ctx context.Context, cl *stockdCluster, idx []int) (int, error) {
	if idx == nil {
		for i := range cl.httpAddrs {
			idx = append(idx, i)
		}
		// Right after a restart every node may still be electing: wait a little.
		deadline := time.Now().Add(failoverWait)
		for {
			i, err := env.leaderIndex(ctx, cl, idx)
			if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
				return i, err
			}
			sleepCtx(ctx, 50*time.Millisecond)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for _, i := range idx {
		if n, err := env.self(pctx, cl.httpAddrs[i]); err == nil && n.Role == api.RoleLeader {
			return i, nil
		}
	}
	return -1, fmt.Errorf("none of %v leads", idx)
}

// waitCaughtUp waits until node i follows a leader and has applied what the leader had
// applied when the wait began.
func (env *benchEnv) waitCaughtUp(ctx context.Context, cl *stockdCluster, i int) error {
	deadline := time.Now().Add(failoverCatchUp)
	var target uint64
	for target == 0 {
		if li, err := env.leaderIndex(ctx, cl, nil); err == nil {
			if n, err := env.self(ctx, cl.httpAddrs[li]); err == nil && n.Role == api.RoleLeader {
				target = n.AppliedIndex
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no leader to catch up with within %v", failoverCatchUp)
		}
	}
	for {
		n, err := env.self(ctx, cl.httpAddrs[i])
		if err == nil && n.Role == api.RoleFollower && n.LastContactMS >= 0 && n.AppliedIndex >= target {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not catch up to index %d within %v (last: %+v, %v)", nodeName(i), target, failoverCatchUp, n, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// term is the current raft term as the cluster view reports it.
func (env *benchEnv) term(ctx context.Context) (uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, env.f.opTimeout)
	defer cancel()
	st, err := env.clients[0].ClusterStatus(cctx)
	return st.Term, err
}

func nodeName(i int) string { return fmt.Sprintf("n%d", i+1) }

func (k killJSON) describe() string {
	if k.Failed != "" {
		return fmt.Sprintf("killed %s: FAILED: %s", k.Killed, k.Failed)
	}
	s := fmt.Sprintf("killed %s, %s leads after %s", k.Killed, k.NewLeader, msStr(k.LeaderMS))
	if k.AckMS > 0 {
		s += fmt.Sprintf(", first acknowledged deduction after %s", msStr(k.AckMS))
	}
	return s
}

// sleepCtx waits d or until ctx ends.
var sleepCtx = proc.Sleep

// writeFailover is the human form of a --failover result.
func writeFailover(w io.Writer, r *failoverResult) {
	args := "defaults"
	if len(r.StockdArgs) > 0 {
		args = strings.Join(r.StockdArgs, " ")
	}
	fmt.Fprintf(w, "failover: %d stockd nodes on loopback (%s); leader SIGKILLed %d times idle, %d times under %d buyers\n",
		r.Nodes, args, len(r.Idle), len(r.Load), r.Buyers)
	row := func(label string, d distJSON) {
		fmt.Fprintf(w, "  %-34s n=%-3d min %-8s p50 %-8s p90 %-8s max %s\n", label, d.N, msStr(d.Min), msStr(d.P50), msStr(d.P90), msStr(d.Max))
	}
	row("idle: kill → new leader", r.IdleLeader)
	row("load: kill → new leader", r.LoadLeader)
	row("load: kill → next acked deduction", r.LoadAck)
	for _, k := range r.Idle {
		if k.Failed != "" {
			fmt.Fprintf(w, "  idle kill FAILED: %s\n", k.describe())
		}
	}
	for _, k := range r.Load {
		if k.Failed != "" {
			fmt.Fprintf(w, "  kill under load FAILED: %s\n", k.describe())
		}
	}
	fmt.Fprintf(w, "  %-12s %s deductions/s between kills; %s ops ended unknown (%d settled by replay); term %d → %d\n", "load",
		commas(int64(r.OpsPerS)), commas(int64(r.Errors)), r.Resolved, r.TermBefore, r.TermAfter)
	fmt.Fprintf(w, "  %-12s %s\n", "check", r.Check.describe())
}
