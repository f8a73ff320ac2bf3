// Package node is one flashstock cluster member: it wires hashicorp/raft (raft-boltdb/v2
// log and stable store with fsync on, a file snapshot store, the fsm as a BatchingFSM) to
// the HTTP API of DESIGN.md.
//
// A Node is the process: HTTP server and routes, auth, rate limits, the forwarding client,
// the metrics registry, and one raft listener (transport.Mux) for every raft group it
// hosts. A Group is one replica of one raft group, with its stores, fsm, coalescer, read
// index, watch hub, cluster clock and loops under its own data dir (groupDir: group 1, a
// single-group cluster's, at the data dir's root and header-less on the wire, as before
// groups existed). Routes find their group in groupFor (groups.go): group 1 in a
// single-group cluster, else the group owning the SKU's slot in the placement the meta
// group (0, a Group whose state machine is placement/meta's, metagroup.go) holds. The
// cluster's own business (membership, the cluster view, readiness, leadership transfer,
// removal) is clusterGroup's: group 1 of a single-group cluster, the meta group of a
// multi-group one, whose nodes host exactly the data groups the placement gives them,
// group 1 included, and delete a replica the placement took away (removal.go); a node is
// removed from a multi-group cluster by draining it (drain.go). The
// handlers see a group only as a groupStore (groupstore.go), the little they need of it:
// *Group is the one a process serves with; the unit tier serves the same routes from fsm
// machines applied directly, without raft (unit_test.go). A group that fails stops alone
// unless it is the process's only one (Node.groupFailed).
//
// What it owns:
//   - bootstrap exactly once, join through any member (a new node first learns whether the
//     cluster has one group or several, waiting for it rather than guessing, join.go),
//     leave (a leader asked to remove itself and graceful shutdown both hand leadership
//     over first);
//   - in a multi-group cluster, the placement controller on the meta group's leader
//     (controller.go): it lists joining nodes in the placement, plans with placement.Plan
//     over the nodes that answer, carries each step out on its group's leader and records
//     it in the meta log; every node starts the replicas the placement gives it;
//   - mutations: validated, admitted under a bound of in-flight proposals, stamped with
//     cluster time (clusterclock.go: never a leader's wall clock as it is), proposed, and
//     answered only after commit and apply — or forwarded to the leader when this node is
//     a follower, waiting for the next leader during an election (leaderwait.go);
//   - reads: strong (linearizable, ReadIndex-style: one heartbeat round shared by the reads
//     waiting for it, confirmed only by answers to requests sent after it began, acks.go)
//     or stale (local, saying how stale);
//   - the leader's timers: hold expiry (which also moves cluster time in the log, which ages
//     the exactly-once table).
//   - protection of the API: bearer tokens with roles (auth.go), a per-client token bucket
//     (ratelimit.go), HTTPS with optional client certificates, also between members
//     (tlsconfig.go), and refusing a member removal that would leave no working quorum
//     (leave.go);
//   - observation: a Prometheus registry per node (per-group series labelled group),
//     raft's own go-metrics fed into it
//     (metrics.go, raftmetrics.go: the one process-wide piece, explained there), pprof;
//   - recovery: seeding a new cluster from a backup, one group's or a multi-group
//     cluster's (groupbackup.go), and rewriting a stopped node's membership after a lost
//     quorum (recover.go), and the disk watchdog that takes a
//     leader with a hung log write out of raft until the write returns (watchdog.go);
//   - durability: the raft log and snapshots are fsynced; the state file is not, and is
//     rebuilt from them after a machine crash (statefile.go);
//   - four hashicorp/raft v1.7.3 defects worked around: GetConfiguration().Index() is always
//     0, so membership changes find the real index in the log (cluster.go); heartbeats run
//     concurrently with the main loop and can make a deposed leader write entries under the
//     new term (hashicorp/raft#695), so they go through the main loop (transport.go);
//     VerifyLeader counts answers sent before the leader was paused or cut off, so read
//     rounds count their own answers (acks.go); a replication pipeline whose decoder
//     stopped at a Success=false answer can park the follower's replication for good, so
//     its answers go through a relay that always takes them (pipelines.go).
//
// What it must never do: decide stock outside the fsm (the handler only validates and
// proposes; "is there stock?" is answered in apply), read its own clock inside apply, or
// keep package-level state (several nodes, and several raft groups, live in one process; the single exception mirrors go-metrics' own process-wide sink). Auth is
// checked before anything is proposed, never inside apply.
package node
