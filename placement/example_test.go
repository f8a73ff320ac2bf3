package placement_test

import (
	"fmt"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
)

// A three-node cluster with two data groups replaces n1 by n4: the node that runs the
// planner carries out each step on its group's raft, records it, and plans again. n4
// joins the meta group before any data group, and takes n1's vote in it; n1 leaves the
// meta group last.
func ExamplePlan() {
	var nodes []api.PlacementNode
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, api.PlacementNode{ID: id, RaftAddr: id + ":7000", HTTPAddr: id + ":8000"})
	}
	p, err := placement.Bootstrap(nodes, 2)
	if err != nil {
		panic(err)
	}
	fmt.Println("SKU-000042 lives in group", p.GroupOf("SKU-000042").ID)

	p, _ = placement.AddNode(p, api.PlacementNode{ID: "n4", RaftAddr: "n4:7000", HTTPAddr: "n4:8000"})
	p, _ = placement.SetNodeState(p, "n1", api.NodeDraining)
	live := []string{"n1", "n2", "n3", "n4"}
	for {
		steps, err := placement.Plan(p, live)
		if err != nil || len(steps) == 0 {
			break
		}
		for _, s := range steps {
			// Here node/ would run the raft operation on group s.Group, then commit the
			// new placement through the meta group.
			if p, err = placement.Apply(p, s); err != nil {
				panic(err)
			}
			fmt.Println(s)
		}
	}
	fmt.Println("SKU-000042 lives in group", p.GroupOf("SKU-000042").ID, "at version", p.Version)
	// Output:
	// SKU-000042 lives in group 2
	// group 0: add_nonvoter n4
	// group 0: promote n4
	// group 1: add_nonvoter n4
	// group 2: add_nonvoter n4
	// group 0: demote n1
	// group 1: promote n4
	// group 2: promote n4
	// group 1: transfer_leader n4
	// group 2: remove n1
	// group 1: remove n1
	// group 0: remove n1
	// SKU-000042 lives in group 2 at version 14
}
