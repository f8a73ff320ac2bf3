// Package node is one flashstock cluster member: it wires hashicorp/raft (raft-boltdb/v2
// log and stable store with fsync on, a file snapshot store, the fsm as a BatchingFSM) to
// the HTTP API of DESIGN.md.
//
// What it owns:
//   - bootstrap exactly once, join through any member, leave, graceful shutdown that hands
//     leadership over first;
//   - mutations: validated, admitted under a bound of in-flight proposals, stamped with the
//     leader's clock, proposed, and answered only after commit and apply — or forwarded to
//     the leader when this node is a follower;
//   - reads: strong (linearizable, ReadIndex-style: one VerifyLeader round shared by the
//     reads waiting for it) or stale (local, saying how stale);
//   - the leader's timers: hold expiry (which also moves the log clock that ages the
//     exactly-once table).
//
// What it must never do: decide stock outside the fsm (the handler only validates and
// proposes; "is there stock?" is answered in apply), read its own clock inside apply, or
// keep package-level state (several nodes, and later several raft groups, live in one
// process).
package node
