package proc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// TestReady_WaitsForAMultiGroupPlacementToSettle: a multi-group cluster is ready only once
// every group has a leader and the placement controller has nothing left to do (replicas
// in place, leaderships spread), so a bench or a fault does not start while replicas or
// leaders are still moving.
func TestReady_WaitsForAMultiGroupPlacementToSettle(t *testing.T) {
	nodes := []api.Node{
		{ID: "n1", Role: api.RoleLeader, HTTPAddr: "a", RaftAddr: "ra"},
		{ID: "n2", Role: api.RoleFollower, HTTPAddr: "b", RaftAddr: "rb"},
		{ID: "n3", Role: api.RoleFollower, HTTPAddr: "c", RaftAddr: "rc"},
	}
	v, nv := api.Voter, api.Nonvoter
	reps := func(roles ...string) []api.Replica {
		out := make([]api.Replica, len(roles))
		for i, r := range roles {
			out[i] = api.Replica{Node: "n" + string(rune('1'+i)), Role: r}
		}
		return out
	}
	// A settled placement: the meta group led by n1, the two data groups by n2 and n3.
	groups := func(change func([]api.Group)) []api.Group {
		gs := []api.Group{
			{ID: 0, Kind: api.GroupMeta, Leader: "n1", PreferredLeader: "n1", Replicas: reps(v, v, v)},
			{ID: 1, Kind: api.GroupData, Leader: "n2", PreferredLeader: "n2", Replicas: reps(v, v, v), Slots: []api.SlotRange{{From: 0, To: 512}}},
			{ID: 2, Kind: api.GroupData, Leader: "n3", PreferredLeader: "n3", Replicas: reps(v, v, v), Slots: []api.SlotRange{{From: 512, To: api.SlotCount}}},
		}
		if change != nil {
			change(gs)
		}
		return gs
	}
	view := func(change func([]api.Group)) *api.Cluster {
		return &api.Cluster{Leader: "n1", Nodes: nodes, PlacementVersion: 7, Groups: groups(change)}
	}
	for _, tc := range []struct {
		name string
		view *api.Cluster
		want string // "" : ready
	}{
		{"settled", view(nil), ""},
		{"single group: the members are enough", &api.Cluster{Leader: "n1", Nodes: nodes, Groups: []api.Group{{ID: 1, Kind: api.GroupData, Leader: "n1", Replicas: reps(v)}}}, ""},
		{"a group the answering node does not host shows no leader", view(func(gs []api.Group) { gs[2].Leader = "" }), ""},
		{"a replica catching up", view(func(gs []api.Group) { gs[1].Replicas = reps(v, v, nv) }), "still moving: next group 1: promote n3"},
		{"a group short of a voter", view(func(gs []api.Group) { gs[1].Replicas = reps(v, v) }), "still moving: next group 1: add_nonvoter n3"},
		{"a leader not yet where it is steered", view(func(gs []api.Group) { gs[2].Leader = "n1" }), "still moving: next group 2: transfer_leader n3"},
		{"leaders not spread yet", view(func(gs []api.Group) { gs[1].PreferredLeader, gs[1].Leader = "n1", "n1" }), "still moving"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Ready(tc.view, 3)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("not ready: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Ready = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestCheckReady_EveryGroupLedSomewhere: a node shows the leader only of the groups it
// hosts, so CheckReady asks every node and needs each group's leader in some view.
func TestCheckReady_EveryGroupLedSomewhere(t *testing.T) {
	v := api.Voter
	reps := []api.Replica{{Node: "n1", Role: v}, {Node: "n2", Role: v}, {Node: "n3", Role: v}}
	nodes := []api.Node{
		{ID: "n1", Role: api.RoleLeader, HTTPAddr: "a", RaftAddr: "ra"},
		{ID: "n2", Role: api.RoleFollower, HTTPAddr: "b", RaftAddr: "rb"},
		{ID: "n3", Role: api.RoleFollower, HTTPAddr: "c", RaftAddr: "rc"},
	}
	view := func(leader1, leader2 string) api.Cluster {
		return api.Cluster{Leader: "n1", Nodes: nodes, PlacementVersion: 3, Groups: []api.Group{
			{ID: 0, Kind: api.GroupMeta, Leader: "n1", PreferredLeader: "n1", Replicas: reps},
			{ID: 1, Kind: api.GroupData, Leader: leader1, PreferredLeader: "n2", Replicas: reps, Slots: []api.SlotRange{{From: 0, To: 512}}},
			{ID: 2, Kind: api.GroupData, Leader: leader2, PreferredLeader: "n3", Replicas: reps, Slots: []api.SlotRange{{From: 512, To: api.SlotCount}}},
		}}
	}
	serve := func(c api.Cluster) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(c) }))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	// Each node knows one group's leader: together they know both.
	addrs := []string{serve(view("n2", "")), serve(view("", "n3")), serve(view("n2", "n3"))}
	if _, err := CheckReady(context.Background(), http.DefaultClient, addrs); err != nil {
		t.Fatalf("every group led in some view: %v", err)
	}
	addrs = []string{serve(view("n2", "")), serve(view("n2", "")), serve(view("", ""))}
	if _, err := CheckReady(context.Background(), http.DefaultClient, addrs); err == nil || !strings.Contains(err.Error(), "group 2 has no leader") {
		t.Fatalf("group 2 led nowhere: %v, want not ready", err)
	}
}
