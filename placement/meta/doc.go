// Package meta is the state machine of the meta group (raft group 0, every node a member):
// it holds the placement document (api.Placement) and changes it only through commands in
// the group's log. node/ wraps a Machine in a raft.FSM; the placement controller on the
// meta group's leader proposes the commands; every node reads the placement locally and
// waits for new versions with WaitVersion.
//
// It is deterministic: Apply reads nothing but the machine and the entry (no clock, no
// randomness, no map iteration), so the same log gives byte-identical snapshots on every
// replica. Every rule of the document is package placement's (Bootstrap, AddNode,
// SetNodeState, RemoveNode, Apply, MoveReplica, PinLeader, Unpin, Validate); this package
// adds the log's rules: the encoding of commands, the version guard, snapshots and
// waiting. It is a package of its
// own, beside placement, because it holds state behind a lock and wakes waiters, while
// placement stays pure functions over values; it imports only api and placement.
//
// # The version guard
//
// Every command names the placement version it was planned from (Command.From; 0 for
// Bootstrap, which plans from no placement). A command whose From is not the version it
// meets is refused with placement.ErrStale and changes nothing, so two controllers racing
// after a leader change cannot both apply a plan: the first to commit moves the version
// and the other's command is stale. A controller that records several steps of one plan
// chains them, each From being the version the previous one produced; a stale refusal
// means someone else changed the placement, and it plans again.
//
// # Unknown entries stop the replica
//
// Encode writes exactly one byte string per command (canonical JSON, format version 1) and
// Decode accepts exactly those. An entry this build cannot read (another format version, a
// command kind, step kind or node state it does not know, a field it would drop) is
// refused with placement.ErrUnknownCommand and poisons the Machine: a newer build may
// apply the entry, and a replica that skipped it would serve a diverging placement. So
// the node stops the meta group on this replica, as it does for fsm's unknown apply
// levels. A new kind, field or value needs a new command kind or format version, and is
// proposed only once every member's build knows it: the kind is tied to a meta apply
// level (level.go), which the log raises with a set_level entry once every member reports
// its build knows it, and below which the node refuses to propose the kind and the
// machine refuses it, changing nothing, if it reaches the log anyway. A well-formed command that breaks a
// rule of the placement (stale, unknown node, a step that does not apply) is refused the
// same way on every replica and changes nothing.
package meta
