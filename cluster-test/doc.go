// Package clustertest is flashstock's process-level chaos suite (DESIGN.md, "Tests, in
// tiers", tier 3).
//
// It starts real stockd processes on loopback, drives concurrent clients through the Go
// client, injects faults, records every operation, and checks the history. It owns nothing
// the product uses: it is only tests and their harness, and it talks to nodes only through
// their HTTP contract and their command line.
//
// The pieces, one file each:
//
//   - harness.go: builds stockd once, starts members with their own data dirs and ports,
//     and SIGKILLs, SIGSTOPs/SIGCONTs, SIGTERMs, wipes and restarts them by PID with the
//     same command line.
//   - proxy.go: a TCP proxy on every directed raft link (node i reaches node j only through
//     proxy P(i→j), by stockd's --raft-dial-rewrite), able to stall (blackhole), delay,
//     and reset each direction of its connections.
//   - net.go: partitions of any shape built from those proxies (cut, isolate, 3|2, bridge,
//     one-way), and link-wide delay and flakiness.
//   - workload.go, history.go: clients that record each logical operation with monotonic
//     call and return times; an operation whose outcome stays unknown is recorded as such
//     and checked as "may have happened" (porcupine's return at infinity).
//   - model.go, check.go: the porcupine inventory model partitioned by SKU, and the
//     checkers: linearizability, no oversell, exactly-once effects against every node's
//     ledger, convergence to one state hash, the fsm's invariants on every node, and at
//     most one leader per term.
//   - scenarios_test.go: the scenarios of issue 5, each in a short form (go test) and a
//     long one (-chaos.long or CHAOS_LONG=1, make chaos); clock_test.go (clock bumps of
//     hours through stockd's faults build, with a probe of short holds, holds.go),
//     powerloss_test.go (disks that drop unsynced writes, new boot ids), staleacks_test.go
//     (a leader that gets its followers' answers only after another leader sold).
//   - groups.go, multigroup_test.go: multi-group clusters (ClusterConfig.Groups: the first
//     member bootstraps with --groups G, the others join and take replicas from the
//     placement). Cluster.Settled waits for the placement to settle (every group at its
//     voter count, one leader each) and reads who leads which group; the workload's SKUs
//     are picked so that every group owns several; the end checks run per group
//     (convergence by GET /v1/debug/state?group=N on the group's replicas, ledgers and
//     stock on the SKU's replicas, one leader per group and term). TestChaos_MultiGroup's
//     list (multiGroupScenarios) runs them on 3 and 5 nodes; moves_test.go has the
//     operator's moves under load: a replica moved, a leadership pinned, a node drained
//     (its exit code 3 is the expected end there, and its groups' files must be gone).
//   - summary.go: the table printed at the end, and the results directory of a failed
//     run (seed, history, porcupine visualization, node logs).
//   - powerloss.go, orderload.go: members with a simulated machine each (ClusterConfig.Machines):
//     the data dir on a disk that drops un-fsynced writes (internal/lazyfs, served by the
//     test process), a boot id of its own shown to stockd through a private mount
//     namespace (the test binary relaunches itself as a small launcher), and a load of
//     reservations confirmed or cancelled, checked against the orders and stock at the end.
//     Needs root and /dev/fuse; TestPowerLoss skips, saying so, without them.
//
// How a link is cut. Raft connections are bidirectional TCP: when i sends an RPC to j it
// dials j (through P(i→j)) and j's answer comes back on that connection. So "messages from
// i to j are lost" stalls two things: the forward direction (dialer to listener) of
// P(i→j)'s connections, which carries i's requests to j, and the backward direction of
// P(j→i)'s connections, which carries i's answers to j's requests. A stalled direction
// stops forwarding bytes on established connections (they are held, as TCP would hold
// unacknowledged segments, and delivered when the link heals unless the connection was
// closed meanwhile) and new connections are accepted but stall the same way. Only raft
// traffic goes through the proxies: clients and the nodes' HTTP forwarding talk directly,
// so a node cut off from its peers is still reachable by clients.
//
// Every scenario logs its seed first; -chaos.seed=N reruns it with the same workload and
// fault schedule (process timing still varies). Nodes use stockd's default raft log store
// (raft-boltdb); -chaos.log-store=wal (or CHAOS_LOG_STORE=wal) runs every scenario with
// raft-wal, and the default run has TestWAL (a killed leader, the whole cluster killed, an
// isolated leader, a snapshot catch-up) and TestPowerLoss_WAL with it.
package clustertest
