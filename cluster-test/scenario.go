package clustertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// Settings of a suite run, from flags or the environment (scenarios_test.go).
type Settings struct {
	Bin        string // the stockd binary
	Seed       int64  // 0: a fresh seed per scenario
	Long       bool
	Iterations int
	CheckTime  time.Duration // porcupine's bound
	// LogStore, when set, is every node's --raft-log-store (bolt or wal), before the
	// scenario's own flags; empty: stockd's default.
	LogStore string
	// RerunFlags are the flags a rerun of a scenario needs besides its seed (the
	// -chaos.log-store it ran with, if any).
	RerunFlags string
}

// env is one scenario run: a cluster, its history and fault timeline, and the checks.
type env struct {
	t       *testing.T
	name    string
	seed    int64
	rng     *rand.Rand
	set     Settings
	c       *Cluster
	hist    *History
	events  *eventLog
	w       Workload
	procs   atomic.Int64
	load    *load
	members []string // the cluster's configuration, for the end checks
	// groups is the number of data groups (ClusterConfig.Groups; 0 or 1: one group), and
	// layout the last settled layout of a multi-group cluster: where each SKU's replicas
	// are, for the end checks.
	groups   int
	layout   Layout
	dropped  int64    // answers the stopped loads dropped (Workload.DropResponses)
	problems []string // scenario criteria that failed
	started  time.Time
	tag      string
}

// newEnv starts a cluster for a scenario, waits for its leader and creates the workload's
// SKUs; the history begins after that.
func newEnv(t *testing.T, set Settings, name string, seed int64, cfg ClusterConfig, w Workload) *env {
	t.Helper()
	if set.LogStore != "" {
		name += "/" + set.LogStore
		cfg.Extra = append([]string{"--raft-log-store", set.LogStore}, cfg.Extra...)
	}
	e := &env{t: t, name: name, seed: seed, rng: rand.New(rand.NewPCG(uint64(seed), 42)), set: set, w: w, started: time.Now(), groups: cfg.Groups}
	e.tag = fmt.Sprintf("%s-%d", strings.ReplaceAll(name, "/", "_"), seed%1_000_000)
	t.Logf("scenario %s: seed %d (rerun: go test ./cluster-test/ -run '%s' -chaos.seed=%d%s)", name, seed, "^"+strings.ReplaceAll(t.Name(), "/", "$/^")+"$", seed, set.RerunFlags)
	e.events = newEventLog(e.started)
	e.c = NewCluster(t, set.Bin, cfg, seed, e.events)
	for _, m := range e.c.Members {
		if m.Running() {
			e.members = append(e.members, m.ID)
		}
	}
	up, cancelUp := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelUp()
	if e.multi() {
		e.settle(up, "start-up")
		spread, cancelSpread := context.WithTimeout(context.Background(), 30*time.Second)
		e.waitPreferredLeaders(spread) // so that "the node leading the most groups" means what it says
		cancelSpread()
		if e.w.SKUs == nil {
			skus, err := skusPerGroup(e.layout, 3)
			if err != nil {
				e.fatal("%v", err)
			}
			e.w.SKUs = skus
		}
	} else {
		leader, err := e.c.WaitLeader(up, e.members...)
		if err != nil {
			e.fatal("cluster did not come up: %v", err)
		}
		e.events.add("cluster up, leader %s", leader)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if set.Long { // more SKUs, so each one's ledger stays short
		base := e.w.SKUs
		for i := 1; i < 3; i++ {
			for _, sku := range base {
				e.w.SKUs = append(e.w.SKUs, fmt.Sprintf("%s-%d", sku, i))
			}
		}
	}
	cl, err := client.New(clientConfig(e.c.HTTPAddrs(e.members...), nil))
	if err != nil {
		e.fatal("client: %v", err)
	}
	defer cl.Close()
	for _, sku := range e.w.SKUs {
		e.createSKU(ctx, cl, sku, e.w.Initial)
	}
	e.hist = NewHistory()
	return e
}

// createSKU creates a SKU for the scenario. A leader may step down while the loaded
// machine starts up: the same request_id again settles the outcome (duplicate if the first
// call was applied).
func (e *env) createSKU(ctx context.Context, cl *client.Client, sku string, stock int64) {
	e.t.Helper()
	reqID := e.tag + "-create-" + sku
	for try := 1; ; try++ {
		_, err := cl.CreateSKU(ctx, sku, stock, client.WithRequestID(reqID))
		if err == nil {
			return
		}
		var ge *client.GaveUpError
		if try == 3 || !errors.As(err, &ge) && !client.Code(err).Retryable() {
			e.fatal("create %s: %v", sku, err)
		}
	}
}

// fatal ends the scenario, leaving its evidence.
func (e *env) fatal(format string, args ...any) {
	e.t.Helper()
	e.problems = append(e.problems, fmt.Sprintf(format, args...))
	e.report(nil, porcupine.Unknown, porcupine.LinearizationInfo{}, porcupine.Model{})
	e.t.FailNow()
}

// fail records a failed criterion of the scenario.
func (e *env) fail(format string, args ...any) {
	e.t.Helper()
	msg := fmt.Sprintf(format, args...)
	e.problems = append(e.problems, msg)
	e.t.Error(msg)
}

// scale stretches durations in the long form.
func (e *env) scale(d time.Duration) time.Duration {
	if e.set.Long {
		return 3 * d
	}
	return d
}

// rounds is how many fault rounds a scenario makes: n short, 3n long.
func (e *env) rounds(n int) int {
	if e.set.Long {
		return 3 * n
	}
	return n
}

// startLoad starts the workload on every slot's address (the client marks the ones that
// are down).
func (e *env) startLoad() {
	e.t.Helper()
	l, err := startLoad(e.hist, e.c.HTTPAddrs(), e.seed, e.tag, &e.procs, e.w)
	if err != nil {
		e.fatal("start load: %v", err)
	}
	e.load = l
	e.events.add("load started: %d workers", e.w.Workers)
}

// stopLoad stops the workload and waits for its running operations.
func (e *env) stopLoad() {
	if e.load != nil {
		e.load.Stop()
		e.dropped += e.load.dropped.Load()
		e.events.add("load stopped")
		e.load = nil
	}
}

// pinned makes a recorder that talks only to one member, for a scenario's own probes.
func (e *env) pinned(m *Member, w Workload) (*recorder, func()) {
	e.t.Helper()
	r, closeFn, err := newRecorder(e.hist, []string{m.HTTPAddr}, uint64(e.seed)+999, e.tag+"-pin-"+m.ID, &e.procs, w, new(atomic.Int64))
	if err != nil {
		e.fatal("pinned client: %v", err)
	}
	return r, closeFn
}

// sleep waits d (the scenarios' pacing; never used to wait for a condition).
func (e *env) sleep(d time.Duration) { time.Sleep(d) }

// leader waits up to 15s for a leader named by a majority of the running members.
func (e *env) leader() *Member {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	id, err := e.c.Leader(ctx)
	if err != nil {
		e.fatal("%v", err)
	}
	return e.c.Member(id)
}

// waitProgress waits up to d for a mutation acknowledged after now, and returns how long it
// took.
func (e *env) waitProgress(d time.Duration) (time.Duration, error) {
	from := e.hist.Now()
	start := time.Now()
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		if e.load.lastAck.Load() > from {
			return time.Since(start), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d, fmt.Errorf("no acknowledged mutation within %v", d)
}

// heal undoes every fault: the network heals, paused members continue, and members of the
// configuration that are down start again.
func (e *env) heal() {
	e.c.Net.Heal()
	for _, m := range e.c.Members {
		e.c.Resume(m)
	}
	for _, id := range e.members {
		if m := e.c.Member(id); !m.Running() {
			e.c.Start(m)
		}
	}
}

// finish heals the cluster, stops the load, waits for convergence and runs every checker;
// it returns the history as checked (unknown operations resolved).
func (e *env) finish() []Op {
	e.t.Helper()
	e.heal()
	if e.load != nil {
		// A moment of healthy load after the last fault, then stop.
		if _, err := e.waitProgress(10 * time.Second); err != nil {
			e.fail("after healing: %v", err)
		}
		e.stopLoad()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if e.multi() {
		e.settleOrFail(ctx, "after healing")
		for _, g := range e.layout.Data() {
			states, err := converge(ctx, e.c, e.layout.Hosts(g.ID), func(ctx context.Context, m *Member) (api.DebugState, error) {
				return e.c.GroupState(ctx, m, g.ID)
			})
			if err != nil {
				e.fail("CONVERGENCE of group %d: %v", g.ID, err)
			}
			for _, p := range checkInvariants(states) {
				e.fail("INVARIANT of group %d: %s", g.ID, p)
			}
		}
	} else {
		if _, err := e.c.WaitLeader(ctx, e.members...); err != nil {
			e.fail("after healing: %v", err)
		}
		states, err := converge(ctx, e.c, e.members, e.c.DebugState)
		if err != nil {
			e.fail("CONVERGENCE: %v", err)
		}
		for _, p := range checkInvariants(states) {
			e.fail("INVARIANT: %s", p)
		}
	}
	ops := e.hist.Ops()
	ledgers, problems := fetchLedgers(ctx, e.c, e.hosts, e.w.SKUs)
	for _, p := range problems {
		e.fail("LEDGER: %s", p)
	}
	for _, p := range checkUnexpected(ops) {
		e.fail("%s", p)
	}
	if len(problems) > 0 {
		// A ledger that could not be read is not an empty ledger: checking against it
		// would call every acknowledged operation lost.
		e.fail("EXACTLY-ONCE: not checked, %d ledger reads failed", len(problems))
	} else {
		for _, p := range checkExactlyOnce(ops, ledgers) {
			e.fail("EXACTLY-ONCE: %s", p)
		}
	}
	for _, p := range checkNoOversell(ctx, e.c, e.hosts, ops, ledgers) {
		e.fail("OVERSELL: %s", p)
	}
	for _, m := range e.c.Members {
		for _, p := range crashes(m.LogPath) {
			e.fail("CRASH: %s's log:\n%s", m.ID, p)
		}
	}
	twoLeaders, terms := checkOneLeaderPerTerm(e.c.Members)
	for _, p := range twoLeaders {
		e.fail("%s", p)
	}
	checked := resolveUnknown(ops, ledgers)
	res, info, model := checkLinearizable(checked, e.w.Initial, e.set.CheckTime)
	switch res {
	case porcupine.Illegal:
		e.fail("LINEARIZABILITY: the history of %d operations is not linearizable (see linearizability.html)", len(checked))
	case porcupine.Unknown:
		e.fail("LINEARIZABILITY: porcupine did not finish within %v: unknown, not a pass", e.set.CheckTime)
	}
	e.t.Logf("%s: %d operations (%d checked by porcupine: %s), %d faults, %d (group, term) pairs with a leader; timeline:\n%s",
		e.name, len(ops), len(checked), res, e.events.count(), terms, e.events)
	e.report(ops, res, info, model)
	return checked
}

// report adds the summary row and, when the scenario failed, writes its results directory.
func (e *env) report(ops []Op, res porcupine.CheckResult, info porcupine.LinearizationInfo, model porcupine.Model) {
	if ops == nil && e.hist != nil {
		ops = e.hist.Ops()
	}
	total, unknown := counts(ops)
	row := summaryRow{Scenario: e.name, Seed: e.seed, Ops: total, Unknown: unknown, Faults: e.events.count(),
		Duration: time.Since(e.started), Verdict: "PASS"}
	if len(e.problems) > 0 || e.t.Failed() {
		row.Verdict = "FAIL"
		if len(e.problems) > 0 {
			row.Verdict = "FAIL: " + firstWords(e.problems[0], 60)
		}
		r := newResults(e.name, e.seed)
		r.write("seed", fmt.Appendf(nil, "%d\n", e.seed))
		r.write("problems.txt", []byte(strings.Join(e.problems, "\n")+"\n"))
		r.write("timeline.txt", []byte(e.events.String()+"\n"))
		r.write("history.jsonl", marshalHistory(ops))
		if res == porcupine.Illegal || res == porcupine.Unknown && model.Step != nil {
			r.visualize(model, info)
		}
		for _, m := range e.c.Members {
			r.copyFile(m.ID+".log", m.LogPath)
			// The state and the raft log, for comparing replicas that disagree (open copies;
			// they may have been copied mid-write).
			r.copyFile(m.ID+"-state.db", filepath.Join(m.DataDir, "state.db"))
			r.copyFile(m.ID+"-raft.db", filepath.Join(m.DataDir, "raft.db"))
		}
		if r.err != nil {
			e.t.Logf("results dir %s: %v", r.dir, r.err)
		}
		e.t.Logf("results of the failed run (seed, history, visualization, node logs): %s", r.dir)
		row.Results = r.dir
	}
	addSummary(row)
}

func firstWords(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// opsBetween returns the operations with call >= from and return <= to (history times).
func opsBetween(ops []Op, from, to int64, keep func(Op) bool) []Op {
	var out []Op
	for _, op := range ops {
		if op.Call >= from && op.Return <= to && keep(op) {
			out = append(out, op)
		}
	}
	return out
}

// membersWithout returns ids without the given ones.
func membersWithout(ids []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(drop, id) })
}

// follower picks a running member that is not the leader; notFirst skips n1, whose command
// line bootstraps (a wiped n1 would bootstrap a new cluster, by the contract).
func (e *env) follower(notFirst bool) *Member {
	e.t.Helper()
	l := e.leader()
	var cands []*Member
	for _, id := range e.members {
		m := e.c.Member(id)
		if m != l && m.Running() && !(notFirst && m.ID == "n1") {
			cands = append(cands, m)
		}
	}
	if len(cands) == 0 {
		e.fatal("no follower to pick")
	}
	return cands[e.rng.IntN(len(cands))]
}

// waitCaughtUp waits until m names the leader and has applied at least what the leader
// had applied when the wait began.
func (e *env) waitCaughtUp(m *Member, d time.Duration) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	l := e.leader()
	target, err := e.c.DebugState(ctx, l)
	if err != nil {
		e.fail("read the leader's state: %v", err)
		return
	}
	for {
		s, err := e.c.DebugState(ctx, m)
		if err == nil && s.AppliedIndex >= target.AppliedIndex {
			e.events.add("%s caught up to index %d", m.ID, target.AppliedIndex)
			return
		}
		if pause(ctx, 50*time.Millisecond) != nil {
			e.fail("%s did not catch up to index %d within %v (last: %+v, %v)", m.ID, target.AppliedIndex, d, s, err)
			return
		}
	}
}

// client makes a client for a scenario's own calls, closed by the caller.
func (e *env) client(endpoints []string) *client.Client {
	e.t.Helper()
	c, err := client.New(clientConfig(endpoints, nil))
	if err != nil {
		e.fatal("client: %v", err)
	}
	return c
}

// countLines counts the lines of a file that contain s.
func countLines(path, s string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(data), s)
}

// snapshotIndexRE finds the index of each snapshot raft logs as complete, in hclog's text
// ("snapshot complete up to: group=1 node=n1 index=123") or JSON form.
var snapshotIndexRE = regexp.MustCompile(`snapshot complete up to[^\n]*?\bindex\W+(\d+)`)

// lastSnapshotIndex is the index of the newest snapshot a node's log says it completed,
// 0 if none.
func lastSnapshotIndex(path string) uint64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var last uint64
	for _, m := range snapshotIndexRE.FindAllSubmatch(data, -1) {
		if i, err := strconv.ParseUint(string(m[1]), 10, 64); err == nil {
			last = max(last, i)
		}
	}
	return last
}

// walFirstIndex is the base index of the oldest segment file of a node's raft-wal log
// (dataDir/raft-wal), 0 if it holds none. raft-wal drops compacted entries a whole segment
// at a time and serves every entry of a segment it still holds, so the entries below this
// index are the ones the node can no longer send.
func walFirstIndex(dataDir string) uint64 {
	names, _ := filepath.Glob(filepath.Join(dataDir, "raft-wal", "*.wal"))
	var first uint64
	for _, n := range names {
		base, _, _ := strings.Cut(filepath.Base(n), "-")
		if i, err := strconv.ParseUint(base, 10, 64); err == nil && (first == 0 || i < first) {
			first = i
		}
	}
	return first
}

// crashes returns each Go panic, fatal error or data race (-chaos.race) in a node's log
// with the lines after it, so a failed run shows the stack without its logs (CI keeps
// none).
func crashes(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := strings.Split(string(data), "\n")
	var out []string
	for i, l := range lines {
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") || strings.HasPrefix(l, "WARNING: DATA RACE") {
			out = append(out, strings.Join(lines[i:min(i+40, len(lines))], "\n"))
		}
	}
	return out
}

// maxAckGap is the longest time between acknowledged mutations returned in [from, to].
func maxAckGap(ops []Op, from, to int64) time.Duration {
	var rets []int64
	for _, op := range ops {
		if op.Acked() && op.Return >= from && op.Return <= to {
			rets = append(rets, op.Return)
		}
	}
	slices.Sort(rets)
	prev, gap := from, int64(0)
	for _, r := range append(rets, to) {
		gap = max(gap, r-prev)
		prev = r
	}
	return time.Duration(gap)
}

// multi says the scenario runs a multi-group cluster.
func (e *env) multi() bool { return e.groups > 1 }

// hosts lists the members holding sku's replicas: every member of a single-group
// cluster, or the replicas of the SKU's group in the last settled layout.
func (e *env) hosts(sku string) []string {
	if !e.multi() {
		return e.members
	}
	return e.layout.Hosts(e.layout.GroupOf(sku))
}

// settle waits until the multi-group cluster of e.members settles (Cluster.Settled),
// records its layout and ends the scenario if it does not.
func (e *env) settle(ctx context.Context, what string) Layout {
	e.t.Helper()
	if !e.settleOrFail(ctx, what) {
		e.fatal("%s: the cluster did not settle", what)
	}
	return e.layout
}

// settleOrFail is settle that records a failure and goes on, for the end checks.
func (e *env) settleOrFail(ctx context.Context, what string) bool {
	e.t.Helper()
	start := time.Now()
	lay, err := e.c.WaitSettled(ctx, e.members, e.groups)
	if err != nil {
		e.fail("%s: %v", what, err)
		return false
	}
	e.layout = lay
	e.events.add("%s: settled in %v; %s", what, time.Since(start).Round(time.Millisecond), lay)
	return true
}

// settleAndSpread is a fault's end in a multi-group scenario: the cluster settles and the
// leaderships go back to their preferred leaders within a minute, then the load runs on a
// moment before the next fault.
func (e *env) settleAndSpread(what string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.settle(ctx, what)
	e.waitPreferredLeaders(ctx)
	e.sleep(time.Second)
}

// waitPreferredLeaders waits until the cluster has settled with its leaderships spread
// (spreadProblem): at start-up once the controller has spread them, and after a failure
// heals once it has spread them again (DESIGN.md, "Placement"). It records how long that
// took and the layout; still unspread when ctx ends is a failure.
func (e *env) waitPreferredLeaders(ctx context.Context) {
	e.t.Helper()
	start := time.Now()
	for {
		lay, why := e.c.Settled(ctx, e.members, e.groups)
		if why == "" {
			why = spreadProblem(lay, e.members)
		}
		if why == "" {
			e.layout = lay
			e.events.add("leaderships spread in %v: %s", time.Since(start).Round(time.Millisecond), lay)
			return
		}
		if pause(ctx, 200*time.Millisecond) != nil {
			e.fail("BALANCE: leaderships not spread after %v: %s", time.Since(start).Round(time.Millisecond), why)
			return
		}
	}
}
