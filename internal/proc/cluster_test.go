package proc

import (
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// TestReady_WaitsForAMultiGroupPlacementToSettle: a multi-group cluster is ready only once
// every group has a leader and its final replicas, so a bench or a fault does not start
// while replicas are still moving onto the nodes that joined.
func TestReady_WaitsForAMultiGroupPlacementToSettle(t *testing.T) {
	nodes := []api.Node{
		{ID: "n1", Role: api.RoleLeader, HTTPAddr: "a"},
		{ID: "n2", Role: api.RoleFollower, HTTPAddr: "b"},
		{ID: "n3", Role: api.RoleFollower, HTTPAddr: "c"},
	}
	reps := func(roles ...string) []api.Replica {
		out := make([]api.Replica, len(roles))
		for i, r := range roles {
			out[i] = api.Replica{Node: "n" + string(rune('1'+i)), Role: r}
		}
		return out
	}
	v, nv := api.Voter, api.Nonvoter
	view := func(groups ...api.Group) *api.Cluster {
		return &api.Cluster{Leader: "n1", Nodes: nodes, PlacementVersion: 7, Groups: groups}
	}
	meta := api.Group{ID: 0, Kind: api.GroupMeta, Leader: "n1", Replicas: reps(v, v, v)}
	data := func(id uint64, leader string, r []api.Replica) api.Group {
		return api.Group{ID: id, Kind: api.GroupData, Leader: leader, Replicas: r}
	}
	for _, tc := range []struct {
		name string
		view *api.Cluster
		want string // "" : ready
	}{
		{"settled", view(meta, data(1, "n1", reps(v, v, v)), data(2, "n2", reps(v, v, v))), ""},
		{"single group: the members are enough", &api.Cluster{Leader: "n1", Nodes: nodes, Groups: []api.Group{data(1, "n1", reps(v))}}, ""},
		{"a group without a leader", view(meta, data(1, "n1", reps(v, v, v)), data(2, "", reps(v, v, v))), "group 2 has no leader"},
		{"a replica catching up", view(meta, data(1, "n1", reps(v, v, nv))), "group 1: n3 is still a nonvoter"},
		{"a group short of voters", view(meta, data(1, "n1", reps(v, v))), "group 1 has 2 voters, want 3"},
		{"the meta group not on every node", view(api.Group{ID: 0, Kind: api.GroupMeta, Leader: "n1", Replicas: reps(v, v)}, data(1, "n1", reps(v, v, v))), "meta group is on 2 of 3"},
		{"the meta group's nonvoters are by design", view(api.Group{ID: 0, Kind: api.GroupMeta, Leader: "n1", Replicas: reps(v, nv, nv)}, data(1, "n1", reps(v, v, v))), ""},
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
