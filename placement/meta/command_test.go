package meta_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

func wellFormed() []meta.Command {
	return []meta.Command{
		{Kind: meta.Bootstrap, Nodes: nodes("n1", "n2", "n3"), DataGroups: 6},
		{Kind: meta.AddNode, From: 7, Node: &api.PlacementNode{ID: "n4", RaftAddr: "127.0.0.4:7000", HTTPAddr: "127.0.0.4:8000"}},
		{Kind: meta.SetNodeState, From: 8, NodeID: "n1", State: api.NodeDraining},
		{Kind: meta.SetNodeState, From: 9, NodeID: "n1", State: api.NodeActive},
		{Kind: meta.RemoveNode, From: 10, NodeID: "n1"},
		step(11, 3, placement.AddNonvoter, "n4"),
		step(12, 3, placement.Promote, "n4"),
		step(13, 3, placement.TransferLeader, "n4"),
		step(14, 3, placement.Remove, "n1"),
		{Kind: meta.MoveReplica, From: 15, Move: &meta.Move{Group: 2, From: "n1", To: "n4"}},
		{Kind: meta.PinLeader, From: 16, Lead: &meta.Lead{Group: 2, Node: "n4"}},
		{Kind: meta.Unpin, From: 17},
		{Kind: meta.SetLevel, Level: 1},
	}
}

// Every well-formed command decodes to itself, from one encoding, which names its format.
func TestEncode_RoundTrips(t *testing.T) {
	for _, c := range wellFormed() {
		b := encode(t, c)
		if !strings.HasPrefix(string(b), `{"v":1,"kind":"`+string(c.Kind)+`"`) {
			t.Errorf("%s encodes as %s: want the format version and kind first", c.Kind, b)
		}
		got, err := meta.Decode(b)
		if err != nil {
			t.Errorf("decode %s: %v", b, err)
			continue
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("decode %s = %+v, want %+v", b, got, c)
		}
		if again := encode(t, got); string(again) != string(b) {
			t.Errorf("re-encoding gives %s, want %s", again, b)
		}
	}
}

// Encode refuses what is not well formed, before it can reach the log.
func TestEncode_RefusesIllFormedCommands(t *testing.T) {
	n := node("n4")
	drained := node("n5")
	drained.State = api.NodeDraining
	tests := []struct {
		name string
		cmd  meta.Command
	}{
		{"no kind", meta.Command{From: 1}},
		{"unknown kind", meta.Command{Kind: "split", From: 1}},
		{"bootstrap without data groups", meta.Command{Kind: meta.Bootstrap, Nodes: nodes("n1")}},
		{"bootstrap without nodes", meta.Command{Kind: meta.Bootstrap, DataGroups: 1}},
		{"bootstrap planned from a version", meta.Command{Kind: meta.Bootstrap, From: 1, Nodes: nodes("n1"), DataGroups: 1}},
		{"bootstrap of a draining node", meta.Command{Kind: meta.Bootstrap, Nodes: []api.PlacementNode{drained}, DataGroups: 1}},
		{"add node without node", meta.Command{Kind: meta.AddNode, From: 1}},
		{"add node planned from nothing", meta.Command{Kind: meta.AddNode, Node: &n}},
		{"add node with its state", meta.Command{Kind: meta.AddNode, From: 1, Node: &drained}},
		{"add node with a node id too", meta.Command{Kind: meta.AddNode, From: 1, Node: &n, NodeID: "n4"}},
		{"set state without state", meta.Command{Kind: meta.SetNodeState, From: 1, NodeID: "n1"}},
		{"set an unknown state", meta.Command{Kind: meta.SetNodeState, From: 1, NodeID: "n1", State: "retired"}},
		{"remove node with a state", meta.Command{Kind: meta.RemoveNode, From: 1, NodeID: "n1", State: api.NodeDraining}},
		{"step without step", meta.Command{Kind: meta.RecordStep, From: 1}},
		{"step of an unknown kind", step(1, 1, "split", "n1")},
		{"move without move", meta.Command{Kind: meta.MoveReplica, From: 1}},
		{"move onto its source", meta.Command{Kind: meta.MoveReplica, From: 1, Move: &meta.Move{Group: 1, From: "n1", To: "n1"}}},
		{"move without a destination", meta.Command{Kind: meta.MoveReplica, From: 1, Move: &meta.Move{Group: 1, From: "n1"}}},
		{"move with a leader", meta.Command{Kind: meta.MoveReplica, From: 1, Move: &meta.Move{Group: 1, From: "n1", To: "n2"}, Lead: &meta.Lead{Group: 1, Node: "n2"}}},
		{"leader without a node", meta.Command{Kind: meta.PinLeader, From: 1, Lead: &meta.Lead{Group: 1}}},
		{"unpin with a node", meta.Command{Kind: meta.Unpin, From: 1, NodeID: "n1"}},
		{"unpin planned from nothing", meta.Command{Kind: meta.Unpin}},
		{"set level without a level", meta.Command{Kind: meta.SetLevel}},
		{"set level planned from a version", meta.Command{Kind: meta.SetLevel, From: 1, Level: 1}},
		{"step with a node", meta.Command{Kind: meta.RecordStep, From: 1, Step: &placement.Step{Group: 1, Kind: placement.Promote, Node: "n1"}, Node: &n}},
	}
	for _, tc := range tests {
		b, err := meta.Encode(tc.cmd)
		if !errors.Is(err, placement.ErrCommand) || !errors.Is(err, &api.Error{Code: api.InvalidArgument}) {
			t.Errorf("%s: encode = %s, %v: want command (invalid_argument)", tc.name, b, err)
		}
	}
}

// Decode accepts exactly what Encode writes. Whatever else is in the log (a newer
// format, kind, value or field, or bytes no build writes) is an entry this build cannot
// read.
func TestDecode_RefusesWhatThisBuildCannotRead(t *testing.T) {
	tests := []struct{ name, entry string }{
		{"empty", ``},
		{"not json", `step 3 promote n4`},
		{"not an object", `[1,"step"]`},
		{"no format version", `{"kind":"remove_node","from":1,"node_id":"n1"}`},
		{"a newer format", `{"v":2,"kind":"remove_node","from":1,"node_id":"n1"}`},
		{"an unknown kind", `{"v":1,"kind":"split_group","from":1}`},
		{"an unknown step kind", `{"v":1,"kind":"step","from":1,"step":{"group":1,"kind":"split","node":"n1"}}`},
		{"an unknown node state", `{"v":1,"kind":"set_node_state","from":1,"node_id":"n1","state":"retired"}`},
		{"an unknown field", `{"v":1,"kind":"remove_node","from":1,"node_id":"n1","force":true}`},
		{"an unknown nested field", `{"v":1,"kind":"step","from":1,"step":{"group":1,"kind":"remove","node":"n1","force":true}}`},
		{"a field of another kind", `{"v":1,"kind":"remove_node","from":1,"node_id":"n1","state":"draining"}`},
		{"fields out of order", `{"kind":"remove_node","v":1,"from":1,"node_id":"n1"}`},
		{"spaces", `{"v":1, "kind":"remove_node","from":1,"node_id":"n1"}`},
		{"trailing bytes", `{"v":1,"kind":"remove_node","from":1,"node_id":"n1"}x`},
		{"an unknown move field", `{"v":1,"kind":"move_replica","from":1,"move":{"group":1,"from":"n1","to":"n2","force":true}}`},
		{"a field twice", `{"v":1,"kind":"remove_node","from":1,"node_id":"n2","node_id":"n1"}`},
	}
	for _, tc := range tests {
		c, err := meta.Decode([]byte(tc.entry))
		if !errors.Is(err, placement.ErrUnknownCommand) {
			t.Errorf("%s: decode %q = %+v, %v: want unknown_command", tc.name, tc.entry, c, err)
		}
	}
	// The well-formed form of the entries above decodes.
	if _, err := meta.Decode([]byte(`{"v":1,"kind":"remove_node","from":1,"node_id":"n1"}`)); err != nil {
		t.Errorf("the canonical remove_node: %v", err)
	}
}
