package main

import (
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

func TestMetricValue_FindsTheUnlabelledSample(t *testing.T) {
	text := `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total_extra 9
process_cpu_seconds_total{x="y"} 8
process_cpu_seconds_total 12.34
`
	v, err := metricValue(strings.NewReader(text), "process_cpu_seconds_total")
	if err != nil || v != 12.34 {
		t.Fatalf("got %v, %v; want 12.34", v, err)
	}
	if _, err := metricValue(strings.NewReader("go_goroutines 5\n"), "process_cpu_seconds_total"); err == nil {
		t.Fatal("a missing metric gave no error")
	}
}

func TestCPUBetween_PerProcessPerDeduction(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := cpuSample{at: t0, client: 3, nodes: []nodeCPU{
		{name: "n3", role: "follower", sec: 7}, {name: "n2", role: "follower", sec: 5}, {name: "n1", role: "leader", sec: 10}}}
	b := cpuSample{at: t0.Add(2 * time.Second), client: 4, nodes: []nodeCPU{ // n3 restarted: its counter went down
		{name: "n1", role: "follower", sec: 12}, {name: "n3", role: "follower", sec: 1}, {name: "n2", role: "leader", sec: 5.5}}}
	c := cpuBetween(a, b, 1000)
	if c == nil || len(c.Processes) != 3 {
		t.Fatalf("got %+v; want n1, n2 and the client (n3 restarted)", c)
	}
	want := []cpuProcJSON{ // the leader at the window's start first
		{Name: "n1", Role: "leader", CPUS: 2, USPerOp: 2000, CoresUsed: 1},
		{Name: "n2", Role: "follower", CPUS: 0.5, USPerOp: 500, CoresUsed: 0.25},
		{Name: "client", Role: "client", CPUS: 1, USPerOp: 1000, CoresUsed: 0.5},
	}
	for i, p := range c.Processes {
		if p != want[i] {
			t.Errorf("process %d: %+v, want %+v", i, p, want[i])
		}
	}
	if c.USPerOp != 3500 || c.CoresUsed != 1.75 || c.WindowS != 2 {
		t.Errorf("total %v µs/op, %v cores over %vs; want 3500, 1.75, 2", c.USPerOp, c.CoresUsed, c.WindowS)
	}
	if cpuBetween(a, b, 0) != nil {
		t.Error("no deduction acknowledged, yet a CPU per deduction")
	}
}

// TestCPURole_NamesTheGroupsANodeLeads: in a multi-group cluster a node's CPU is named by
// the data groups it leads (the meta group's leadership is not a data path), and the line
// puts the node's name first; a single-group node keeps its raft role.
func TestCPURole_NamesTheGroupsANodeLeads(t *testing.T) {
	for _, tc := range []struct {
		name   string
		node   api.Node
		want   string
		inLine string
	}{
		{"single group", api.Node{ID: "n1", Role: api.RoleLeader, Groups: []api.NodeGroup{{ID: 1, Role: api.RoleLeader}}}, "leader", "leader n1 "},
		{"no groups reported", api.Node{ID: "n2", Role: api.RoleFollower}, "follower", "follower n2 "},
		{"multi-group", api.Node{ID: "n1", Role: api.RoleLeader, Groups: []api.NodeGroup{{ID: 0, Role: api.RoleLeader}, {ID: 1, Role: api.RoleFollower},
			{ID: 2, Role: api.RoleLeader}, {ID: 3, Role: api.RoleLeader}}}, "leads 2,3", "n1 (leads 2,3) "},
		{"a follower of every group", api.Node{ID: "n3", Role: api.RoleFollower, Groups: []api.NodeGroup{{ID: 0, Role: api.RoleLeader}, {ID: 1, Role: api.RoleFollower}}}, "leads none", "n3 (leads none) "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cpuRole(&tc.node); got != tc.want {
				t.Fatalf("cpuRole = %q, want %q", got, tc.want)
			}
			var b strings.Builder
			(&cpuJSON{Processes: []cpuProcJSON{{Name: tc.node.ID, Role: tc.want, USPerOp: 1}}}).describe(&b)
			if !strings.Contains(b.String(), tc.inLine) {
				t.Fatalf("cpu line %q lacks %q", b.String(), tc.inLine)
			}
		})
	}
}
