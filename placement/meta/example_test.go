package meta_test

import (
	"errors"
	"fmt"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

// The meta group's log, played by hand: bootstrap, a node joins, and the controller
// records the planner's steps, each planned from the version the one before made. A
// controller that planned from an older version is refused and changes nothing.
func ExampleMachine() {
	m := meta.New()
	var index uint64
	propose := func(c meta.Command) meta.Result {
		b, err := meta.Encode(c)
		if err != nil {
			panic(err)
		}
		index++
		return m.Apply(index, b) // what every replica does when the entry commits
	}
	var nodes []api.PlacementNode
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, api.PlacementNode{ID: id, RaftAddr: id + ":7000", HTTPAddr: id + ":8000"})
	}
	propose(meta.Command{Kind: meta.Bootstrap, Nodes: nodes, DataGroups: 2})
	propose(meta.Command{Kind: meta.AddNode, From: 1, Node: &api.PlacementNode{ID: "n4", RaftAddr: "n4:7000", HTTPAddr: "n4:8000"}})

	p := m.Placement()
	first := p.Version
	for range 2 { // n4 joins the meta group first, then a data group
		steps, _ := placement.Plan(&p, []string{"n1", "n2", "n3", "n4"})
		from := p.Version
		for _, s := range steps {
			res := propose(meta.Command{Kind: meta.RecordStep, From: from, Step: &s})
			fmt.Printf("%s: version %d, %v\n", s, res.Version, res.Err)
			from = res.Version
		}
		p = m.Placement()
	}
	late := propose(meta.Command{Kind: meta.SetNodeState, From: first, NodeID: "n4", State: api.NodeDraining})
	fmt.Println("late controller:", errors.Is(late.Err, placement.ErrStale), "at version", late.Version)
	// Output:
	// group 0: add_nonvoter n4: version 3, <nil>
	// group 2: add_nonvoter n4: version 4, <nil>
	// late controller: true at version 4
}
