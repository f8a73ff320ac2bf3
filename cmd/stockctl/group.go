package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/flashstock/flashstock/api"
)

var groupCommand = group("group", "show the cluster's raft groups and move their replicas and leaders", []sub{
	{"list", "list the raft groups: kind, leader, replicas and slots", runGroupList},
	{"move", "move a data group's replica from one node to another", runGroupMove},
	{"leader", "pin a data group's leadership to one of its voters", runGroupLeader},
	{"balance", "clear every pin so that the groups are balanced again", runGroupBalance},
})

func runGroupList(args []string, stdout, stderr io.Writer) error {
	c := newCLI("group list", "group list [flags]", `
Lists the cluster's raft groups as the answering node knows them: the meta group (0,
which holds the placement, only in a cluster bootstrapped with --groups above 1) and the
data groups, each with its leader, its replicas (node:role) and the slot ranges it owns.
A single-group cluster shows one data group, 1, owning every slot. With --json it prints
{"groups":[...],"placement_version":N}, the groups as GET /v1/cluster carries them.

examples:
  stockctl group list
  stockctl group list --json`, stdout, stderr)
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	st, err := cl.ClusterStatus(ctx)
	if err != nil {
		return c.explain(err)
	}
	if c.json {
		return writeJSON(stdout, struct {
			Groups           []api.Group `json:"groups"`
			PlacementVersion uint64      `json:"placement_version"`
		}{st.Groups, st.PlacementVersion})
	}
	rows := make([][]string, 0, len(st.Groups))
	for _, g := range st.Groups {
		slots := make([]string, len(g.Slots))
		for i, r := range g.Slots {
			slots[i] = fmt.Sprintf("%d-%d", r.From, r.To-1)
		}
		rows = append(rows, []string{strconv.FormatUint(g.ID, 10), g.Kind, dash(g.Leader), dash(replicaList(g)), dash(strings.Join(slots, ","))})
	}
	return writeTable(stdout, "ID\tKIND\tLEADER\tREPLICAS\tSLOTS", rows)
}

// replicaList shows g's replicas as node:role, comma-separated.
func replicaList(g api.Group) string {
	reps := make([]string, len(g.Replicas))
	for i, r := range g.Replicas {
		reps[i] = r.Node + ":" + r.Role
	}
	return strings.Join(reps, ",")
}

// groupsLine sums the groups up for cluster status: how many data groups, whether a meta
// group holds a placement, and which nodes lead how many groups.
func groupsLine(st api.Cluster) string {
	if len(st.Groups) == 0 {
		return "" // a node of a build before groups
	}
	data, leads := 0, map[string]int{}
	var order []string
	meta := false
	for _, g := range st.Groups {
		if g.Kind == api.GroupMeta {
			meta = true
		} else {
			data++
		}
		l := g.Leader
		if l == "" {
			l = "(none)"
		}
		if leads[l] == 0 {
			order = append(order, l)
		}
		leads[l]++
	}
	parts := make([]string, len(order))
	for i, l := range order {
		parts[i] = fmt.Sprintf("%s %d", l, leads[l])
	}
	s := fmt.Sprintf("groups: %d data", data)
	if meta {
		s += fmt.Sprintf(" + meta (placement version %d)", st.PlacementVersion)
	}
	return s + "  leaders: " + strings.Join(parts, ", ")
}
