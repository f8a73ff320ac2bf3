package placement

import (
	"fmt"

	"github.com/flashstock/flashstock/api"
)

// Rule names a rule of the placement that a document or a change broke. Rules are stable:
// callers match them with errors.Is (errors.Is(err, placement.ErrSlotUnowned)), never by
// message text.
type Rule string

// The rules of a placement document, checked by Validate (api code invalid_argument).
const (
	ErrVersion        Rule = "version"          // Version is 0
	ErrSlotCount      Rule = "slot_count"       // SlotCount is not api.SlotCount
	ErrNodeID         Rule = "node_id"          // a node without an id
	ErrNodeAddr       Rule = "node_addr"        // a node without its raft or HTTP address
	ErrNodeState      Rule = "node_state"       // a node state other than active or draining
	ErrNodeTwice      Rule = "node_twice"       // two nodes with one id
	ErrGroupTwice     Rule = "group_twice"      // two groups with one id
	ErrGroupKind      Rule = "group_kind"       // a kind other than data or meta, or a meta group whose id is not api.MetaGroupID
	ErrMetaGroup      Rule = "meta_group"       // not exactly one meta group
	ErrNoDataGroup    Rule = "no_data_group"    // no data group
	ErrReplicaNode    Rule = "replica_node"     // a replica on a node the placement does not list
	ErrReplicaTwice   Rule = "replica_twice"    // one node twice in a group
	ErrReplicaRole    Rule = "replica_role"     // a role other than voter or nonvoter
	ErrNoVoter        Rule = "no_voter"         // a group without a voter
	ErrTwoMoves       Rule = "two_moves"        // more than one nonvoter in a data group: one move at a time
	ErrMetaVoters     Rule = "meta_voters"      // more than MetaVoters+1 voters in the meta group (one promoted before another is demoted)
	ErrPreferred      Rule = "preferred_leader" // a preferred leader that is not a voter of its group
	ErrSlotRange      Rule = "slot_range"       // a range outside 0..SlotCount or empty
	ErrMetaSlots      Rule = "meta_slots"       // the meta group owns slots
	ErrSlotUnowned    Rule = "slot_unowned"     // a slot no data group owns
	ErrSlotOwnedTwice Rule = "slot_owned_twice" // a slot two ranges own
	ErrPin            Rule = "pin"              // a pin on the meta group, naming an unknown node or one twice, or a pinned leader outside the pinned replicas
)

// The rules of a change to a valid placement (Apply, AddNode, SetNodeState, RemoveNode,
// Bootstrap), which depend on the placement it is applied to.
const (
	ErrUnknownNode  Rule = "unknown_node"  // not_found: the change names a node the placement does not list
	ErrUnknownGroup Rule = "unknown_group" // not_found: the change names a group the placement does not have
	ErrNodeExists   Rule = "node_exists"   // already_exists: AddNode of a listed id
	ErrNodeInUse    Rule = "node_in_use"   // failed_precondition: RemoveNode of a node that still hosts replicas
	ErrStep         Rule = "step"          // failed_precondition: the step does not apply to this placement
	ErrBootstrap    Rule = "bootstrap"     // invalid_argument: no nodes, or a group count outside 1..api.SlotCount
)

// The rules of an operator's move (MoveReplica, PinLeader, CheckLive): each refusal says
// what the operator asked that cannot be, so that a script can tell them apart.
const (
	// ErrMetaPin (invalid_argument): a move or leader pin on the meta group, whose replicas
	// are on every node and whose voters and leader the planner places (see the doc).
	ErrMetaPin Rule = "meta_group_pin"
	// ErrAlreadyReplica (failed_precondition): the destination of a move is one of the
	// voters the group is steered to already.
	ErrAlreadyReplica Rule = "already_replica"
	// ErrNotReplica (failed_precondition): the source of a move, or a leader asked for,
	// is not one of the voters the group is steered to.
	ErrNotReplica Rule = "not_replica"
	// ErrNodeDraining (failed_precondition): the destination of a move or a leader asked
	// for is draining: it gets no new replicas or leaderships.
	ErrNodeDraining Rule = "node_draining"
	// ErrGroupMoving (failed_precondition): a group that is not pinned is in the middle
	// of a move of the planner's, so the voters it is steered to are not settled; ask
	// again once the move is done.
	ErrGroupMoving Rule = "group_moving"
	// ErrPinnedLeader (failed_precondition): a move off the node the group's leadership is
	// pinned to; pin it elsewhere first.
	ErrPinnedLeader Rule = "pinned_leader"
	// ErrNodeDown (failed_precondition): the destination of a move or a leader asked for
	// does not answer now. Ask again once it does.
	ErrNodeDown Rule = "node_down"
	// ErrNoQuorum (failed_precondition): the group's live voters, now or once the move is done,
	// are not a majority: no configuration change can commit in it.
	ErrNoQuorum Rule = "no_quorum"
)

// The rules of the meta group's log and snapshots (package placement/meta).
const (
	// ErrStale (failed_precondition): the command was planned from a placement version
	// other than the one it would apply to; it changed nothing. Plan again from the
	// placement as it is now.
	ErrStale Rule = "stale_placement"
	// ErrCommand (invalid_argument): a command that is not well formed, refused before it
	// is proposed.
	ErrCommand Rule = "command"
	// ErrUnknownCommand (internal): a log entry this build cannot read: an unknown format
	// version, command kind or value, or bytes other than what Encode writes. A newer
	// build may apply it, so a replica that skipped it could diverge: it must stop.
	ErrUnknownCommand Rule = "unknown_command"
	// ErrSnapshot (internal): a snapshot that is corrupt, of an unknown format, or holds
	// an invalid placement; nothing was restored.
	ErrSnapshot Rule = "snapshot"
)

func (r Rule) Error() string { return "placement: " + string(r) }

// Code is the api code an error of rule r travels as.
func (r Rule) Code() api.Code {
	switch r {
	case ErrUnknownNode, ErrUnknownGroup:
		return api.NotFound
	case ErrNodeExists:
		return api.AlreadyExists
	case ErrNodeInUse, ErrStep, ErrStale, ErrAlreadyReplica, ErrNotReplica, ErrNodeDraining, ErrGroupMoving, ErrPinnedLeader,
		ErrNodeDown, ErrNoQuorum:
		return api.FailedPrecondition
	case ErrUnknownCommand, ErrSnapshot:
		return api.Internal
	}
	return api.InvalidArgument
}

// Error is a broken rule with what broke it. errors.Is matches it against its Rule and
// errors.As finds the *api.Error it travels as, so node/ maps it to the wire with no
// table of its own.
type Error struct {
	Rule   Rule
	Detail string
}

func (e *Error) Error() string { return "placement: " + string(e.Rule) + ": " + e.Detail }

// Unwrap exposes the rule and the wire error.
func (e *Error) Unwrap() []error {
	return []error{e.Rule, &api.Error{Code: e.Rule.Code(), Message: e.Error()}}
}

func broken(r Rule, format string, args ...any) *Error {
	return &Error{Rule: r, Detail: fmt.Sprintf(format, args...)}
}
