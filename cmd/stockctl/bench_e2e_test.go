package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/proc/proctest"
	"github.com/flashstock/flashstock/internal/testcluster"
	"github.com/flashstock/flashstock/node"
)

// A 2-second flash sale of 500 units to 32 buyers on a real cluster sells out exactly, and
// the oversell check agrees; the sell-out mode turns late buyers away with sold_out only.
func TestBench_EndToEnd_SellsOutExactly(t *testing.T) {
	eps := strings.Join(testcluster.Start(t, 3, node.DefaultConfig, node.New, nil).Addrs(), ",")

	profile := filepath.Join(t.TempDir(), "client.prof")
	out, errs, code := stockctl("bench", "--endpoints", eps, "--buyers", "32", "--stock", "500", "--duration", "2s",
		"--warmup", "0s", "--json", "--chart", filepath.Join(t.TempDir(), "run.png"), "--cpuprofile", profile)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if b, err := os.ReadFile(profile); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("--cpuprofile wrote %d bytes (%v), want a gzipped pprof profile", len(b), err)
	}
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Check.Verdict != verdictOK || r.Check.Sold != 500 || r.UnitsSold != 500 || r.OK != 500 {
		t.Fatalf("check %+v, ok %d units %d; want OK with 500 sold", r.Check, r.OK, r.UnitsSold)
	}
	if r.Rejected.SoldOut == 0 || r.Errors != 0 || r.Check.ReplicasAgree != "3/3" {
		t.Fatalf("sold_out %d errors %d replicas %s; want sold-out rejections, no errors, 3/3", r.Rejected.SoldOut, r.Errors, r.Check.ReplicasAgree)
	}
	if r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 || r.Latency.Max < r.Latency.P99 || len(r.Timeline) < 2 {
		t.Fatalf("latency %+v timeline %d points: not plausible", r.Latency, len(r.Timeline))
	}
	// The nodes share this process here, so their figures are the process's; what this
	// checks is that every node and the client are in the table, each under its role.
	if r.CPU == nil || len(r.CPU.Processes) != 4 || r.CPU.USPerOp <= 0 || r.CPU.HostCores < 1 {
		t.Fatalf("cpu %+v; want 3 nodes and the client, with CPU per deduction", r.CPU)
	}
	roles := map[string]int{}
	for _, p := range r.CPU.Processes {
		roles[p.Role]++
	}
	if roles[api.RoleLeader] != 1 || roles[api.RoleFollower] != 2 || roles["client"] != 1 {
		t.Fatalf("cpu table roles %v; want one leader, two followers, the client", roles)
	}

	out, errs, code = stockctl("bench", "--endpoints", eps, "--sellout", "--buyers", "32", "--stock", "200",
		"--late-buyers", "8", "--duration", "1s", "--json")
	if code != 0 {
		t.Fatalf("sellout: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	r = benchResult{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	so := r.Sellout
	if r.Check.Verdict != verdictOK || r.UnitsSold != 200 || so == nil || !so.SoldOut || r.Rejected.SoldOut != 32 {
		t.Fatalf("sellout: check %+v units %d sold_out %d sellout %+v", r.Check, r.UnitsSold, r.Rejected.SoldOut, so)
	}
	if so.LateRejected == 0 || so.LateOther != 0 || so.AppliedAfter < so.AppliedBefore {
		t.Fatalf("late buyers: %+v; want only sold_out answers", so)
	}
}

// --stockd starts a real 3-process cluster (internal/proc), --failover kills its leader
// and starts it again, and the end of the run stops every node, keeps their logs where
// --stockd-logs says and deletes their data.
func TestBench_StockdLauncher_FailoverThenStop(t *testing.T) {
	bin := proctest.Build(t, "github.com/flashstock/flashstock/cmd/stockd")
	logs := filepath.Join(t.TempDir(), "logs")
	out, errs, code := stockctl("bench", "--stockd", bin, "--failover", "1", "--buyers", "4", "--json",
		"--stockd-logs", logs, "--stockd-arg=--heartbeat-timeout=300ms", "--stockd-arg=--election-timeout=300ms",
		"--stockd-arg=--leader-lease-timeout=150ms")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	var r failoverResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Nodes != 3 || len(r.Idle) != 1 || len(r.Load) != 1 || r.Check.Verdict != verdictOK {
		t.Fatalf("failover result %+v; want 3 nodes, one idle and one loaded kill, check OK", r)
	}
	for _, k := range append(r.Idle, r.Load...) {
		if k.Failed != "" || k.NewLeader == "" || k.NewLeader == k.Killed {
			t.Fatalf("kill %+v: want another node leading after it", k)
		}
	}
	m := regexp.MustCompile(`\(data in (\S+)\)`).FindStringSubmatch(errs)
	if m == nil {
		t.Fatalf("stderr does not say where the data is:\n%s", errs)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Fatalf("data dir %s still there after the run (%v)", m[1], err)
	}
	starts := 0
	for _, id := range []string{"n1", "n2", "n3"} {
		b, err := os.ReadFile(filepath.Join(logs, id+".log"))
		if err != nil {
			t.Fatalf("kept log of %s: %v", id, err)
		}
		starts += strings.Count(string(b), "\n=== ") + strings.Count(string(b[:min(4, len(b))]), "=== ")
	}
	if want := 3 + len(r.Idle) + len(r.Load); starts != want { // a restart appends to the log
		t.Fatalf("the kept logs show %d starts, want %d (3, and one per kill)", starts, want)
	}
	if strings.Contains(errs, "ignored SIGTERM") {
		t.Fatalf("a node had to be SIGKILLed at the end:\n%s", errs)
	}
}

// The requests are counted over the window the ops are: without batching each op is one
// request, so after a warm-up as long as the window the two still match (counted from the
// start, the warm-up's requests doubled them).
func TestBench_RequestsAreCountedOverTheMeasuredWindow(t *testing.T) {
	eps := strings.Join(testcluster.Start(t, 3, node.DefaultConfig, node.New, nil).Addrs(), ",")
	const buyers = 2
	out, errs, code := stockctl("bench", "--endpoints", eps, "--no-batching", "--buyers", "2", "--duration", "1s",
		"--warmup", "1s", "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// An op in flight at either edge of the window may be counted on one side only (a
	// few per buyer); a retry on a starved host adds a request.
	if r.OK == 0 || r.Requests+4*buyers < r.OK || r.Requests > r.OK+r.OK/4+4*buyers {
		t.Fatalf("%d requests for %d ops, each op one request: want about as many", r.Requests, r.OK)
	}
}
