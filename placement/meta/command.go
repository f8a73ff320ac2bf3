package meta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
)

// formatVersion is the version of the command encoding this build writes and reads.
const formatVersion = 1

// Kind names a command.
type Kind string

// The commands. Each is one of package placement's changes, applied to the placement the
// machine holds.
const (
	// Bootstrap creates the first placement (placement.Bootstrap of Nodes and DataGroups).
	Bootstrap Kind = "bootstrap"
	// AddNode lists Node as an active node (placement.AddNode).
	AddNode Kind = "add_node"
	// SetNodeState drains (api.NodeDraining) or undrains (api.NodeActive) NodeID
	// (placement.SetNodeState).
	SetNodeState Kind = "set_node_state"
	// RemoveNode unlists NodeID, which hosts no replica any more (placement.RemoveNode).
	RemoveNode Kind = "remove_node"
	// RecordStep records Step, which the controller carried out on its group's raft
	// (placement.Apply).
	RecordStep Kind = "step"
	// MoveReplica records an operator's move of a data group's replica (Move): the group
	// is pinned to its voters with Move.From replaced by Move.To (placement.MoveReplica),
	// and the planner carries it out.
	MoveReplica Kind = "move_replica"
	// PinLeader records an operator's choice of a data group's leader (Lead): the group's
	// leadership and voters are pinned (placement.PinLeader).
	PinLeader Kind = "pin_leader"
	// Unpin clears every pin (placement.Unpin): the planner balances every group again.
	Unpin Kind = "unpin"
	// SetLevel raises the meta apply level to Level (level.go). It changes no placement,
	// so it takes no From (0) and no version guard: raising twice is harmless.
	SetLevel Kind = "set_level"
)

// Move is an operator's move of one replica of data group Group from node From to node To.
type Move struct {
	Group uint64 `json:"group"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// Lead is an operator's choice of node Node to lead data group Group.
type Lead struct {
	Group uint64 `json:"group"`
	Node  string `json:"node"`
}

// Command is one entry of the meta group's log. Each kind takes the fields its comment
// names, and no other.
type Command struct {
	Kind Kind `json:"kind"`
	// From is the placement version the proposer planned from: 0 for Bootstrap, at least
	// 1 for every other kind.
	From uint64 `json:"from"`
	// Nodes and DataGroups: Bootstrap. The placement sets the nodes' State.
	Nodes      []api.PlacementNode `json:"nodes,omitempty"`
	DataGroups int                 `json:"data_groups,omitempty"`
	// Node: AddNode. The placement sets its State.
	Node *api.PlacementNode `json:"node,omitempty"`
	// NodeID: SetNodeState, RemoveNode. State: SetNodeState.
	NodeID string `json:"node_id,omitempty"`
	State  string `json:"state,omitempty"`
	// Step: RecordStep.
	Step *placement.Step `json:"step,omitempty"`
	// Move: MoveReplica.
	Move *Move `json:"move,omitempty"`
	// Lead: PinLeader.
	Lead *Lead `json:"lead,omitempty"`
	// Level: SetLevel.
	Level uint64 `json:"level,omitempty"`
}

// wire is a command as it is written: the format version first, so that a reader can tell
// an encoding it does not know from a malformed one.
type wire struct {
	V int `json:"v"`
	Command
}

// The fields a command may carry, for the shape of each kind.
const (
	fNodes = 1 << iota
	fDataGroups
	fNode
	fNodeID
	fState
	fStep
	fMove
	fLead
	fLevel
)

var shapes = map[Kind]int{
	Bootstrap:    fNodes | fDataGroups,
	AddNode:      fNode,
	SetNodeState: fNodeID | fState,
	RemoveNode:   fNodeID,
	RecordStep:   fStep,
	MoveReplica:  fMove,
	PinLeader:    fLead,
	Unpin:        0,
	SetLevel:     fLevel,
}

var stepKinds = []placement.StepKind{placement.AddNonvoter, placement.Promote, placement.TransferLeader, placement.Demote, placement.Remove}

// Encode returns the one encoding of c, or an error (placement.ErrCommand) if c is not
// well formed: an unknown kind, step kind or node state, a field its kind does not take
// or lacks, a From that does not fit its kind.
func Encode(c Command) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, &placement.Error{Rule: placement.ErrCommand, Detail: err.Error()}
	}
	return encode(c), nil
}

func encode(c Command) []byte {
	b, err := json.Marshal(wire{V: formatVersion, Command: c})
	if err != nil {
		panic(fmt.Sprintf("meta: marshal a checked command: %v", err)) // plain structs of strings and numbers always marshal
	}
	return b
}

// Decode reads a log entry. It accepts exactly what Encode writes; anything else is an
// error wrapping placement.ErrUnknownCommand, never a panic.
func Decode(b []byte) (Command, error) {
	unknown := func(format string, args ...any) (Command, error) {
		return Command{}, &placement.Error{Rule: placement.ErrUnknownCommand, Detail: fmt.Sprintf(format, args...)}
	}
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return unknown("not a command of format %d: %v", formatVersion, err)
	}
	if w.V != formatVersion {
		return unknown("format version %d, this build reads %d", w.V, formatVersion)
	}
	if err := w.check(); err != nil {
		return unknown("%v", err)
	}
	if !bytes.Equal(encode(w.Command), b) {
		// A field this build does not know, or an encoding no build writes.
		return unknown("not the encoding of the %s command it decodes to", w.Kind)
	}
	return w.Command, nil
}

// check reports what makes c ill formed, the same in Encode and Decode.
func (c Command) check() error {
	want, ok := shapes[c.Kind]
	if !ok {
		return fmt.Errorf("unknown command kind %q", c.Kind)
	}
	has := 0
	for i, set := range []bool{len(c.Nodes) > 0, c.DataGroups != 0, c.Node != nil, c.NodeID != "", c.State != "", c.Step != nil, c.Move != nil, c.Lead != nil, c.Level != 0} {
		if set {
			has |= 1 << i // the order of the f* constants
		}
	}
	if has != want {
		return fmt.Errorf("%s takes the fields %s, not %s", c.Kind, fieldNames(want), fieldNames(has))
	}
	switch {
	case (c.Kind == Bootstrap || c.Kind == SetLevel) && c.From != 0:
		return fmt.Errorf("%s plans from no placement (version 0), not version %d", c.Kind, c.From)
	case c.Kind != Bootstrap && c.Kind != SetLevel && c.From == 0:
		return fmt.Errorf("%s needs the placement version it was planned from", c.Kind)
	case c.Node != nil && c.Node.State != "" || slices.ContainsFunc(c.Nodes, func(n api.PlacementNode) bool { return n.State != "" }):
		return fmt.Errorf("%s: a new node's state is the placement's to set", c.Kind)
	case c.Kind == SetNodeState && c.State != api.NodeActive && c.State != api.NodeDraining:
		return fmt.Errorf("unknown node state %q", c.State)
	case c.Step != nil && !slices.Contains(stepKinds, c.Step.Kind):
		return fmt.Errorf("unknown step kind %q", c.Step.Kind)
	case c.Move != nil && (c.Move.From == "" || c.Move.To == "" || c.Move.From == c.Move.To):
		return fmt.Errorf("a move names two different nodes, not %q and %q", c.Move.From, c.Move.To)
	case c.Lead != nil && c.Lead.Node == "":
		return fmt.Errorf("a leader pin names a node")
	}
	return nil
}

func fieldNames(set int) string {
	var names []string
	for i, name := range []string{"nodes", "data_groups", "node", "node_id", "state", "step", "move", "lead", "level"} {
		if set&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
