// Package paxos is where flashstock teaches Paxos — single-decree and Multi-Paxos — and
// shows it driving the same inventory state machine (fsm) that production runs on Raft.
// It is checked, not hoped: an exhaustive model checker and a seeded simulator with an
// invariant observer run over the very step functions documented here.
//
// # What it owns, and what it must never do
//
// It owns the protocol roles as deterministic step machines, a simulated network, the
// checkers and the demo behind `stockctl paxos demo`. It must never do I/O in the roles,
// read a clock or use randomness other than the simulator's seeded generator, and never
// import node/: production replication is Raft's job.
//
// # The roles are step machines
//
// Every role (Acceptor, Proposer, Learner, Replica) is fed one message or one tick and
// answers with an Output, in the style of etcd-io/raft's RawNode: the durable state to
// write, the votes and learned values to persist, the decided slots to apply, and the
// messages to send — in that order. The role has done none of it; the host does. That is
// what makes every run reproducible and every bug a seed.
//
// # Single-decree Paxos in two phases
//
// A ballot is (round, node): totally ordered and never shared by two proposers.
//
// Phase 1. A proposer picks a ballot b above any it has used or seen and sends prepare(b).
// An acceptor that has promised nothing higher promises b — it will accept nothing below b
// from now on — and reports the last value it accepted, if any, with its ballot (P1b). The
// promise is written to disk before the reply leaves: an acceptor that forgets it after a
// restart could accept what it promised to refuse.
//
// Phase 2. With promises from a majority, the proposer must propose the value of the
// highest-ballot vote those promises report, or its own value if they report none (P2c).
// It sends accept(b, v). An acceptor accepts unless it has promised a higher ballot (P1a)
// and tells the proposer and the learners. A value is chosen once a majority accepted it
// under one ballot; a learner learns it by counting those votes, or from the proposer that
// counted them (which repeats itself, since every vote to a learner may be lost).
//
// Why majorities: any two majorities of the same acceptors share at least one member. If v
// was chosen under ballot b, a majority accepted it; any later proposer's majority of
// promises includes one of them, who reports v (or a later vote, which by induction is also
// v), so P2c forces the later proposer to propose v again. That is P2: once chosen, every
// higher ballot that is chosen carries the same value. Paxos is safe whatever the network
// does — loss, duplication, reordering, partitions — and whichever nodes crash, as long as
// durable state survives. It is live only when one proposer runs long enough undisturbed:
// two proposers can pre-empt each other forever (try `stockctl paxos demo --proposers 3`),
// which randomised timeouts make unlikely, never impossible (FLP).
//
// # Multi-Paxos: a log of slots
//
// A replicated log is one Paxos instance per slot. Replica adds what makes that practical:
//   - A leader runs phase 1 once, for every slot from its first unlearned one on; a promise
//     covers all of them. Then each new command costs only phase 2, until a higher ballot
//     pre-empts the leader (a nack, or a prepare/accept/heartbeat carrying it).
//   - On take-over the new leader collects, per slot, the highest-ballot vote from a
//     majority, and re-proposes it under its own ballot (P2c, slot by slot). A slot nobody
//     in the majority voted for was not chosen; it gets a no-op so the slots after it can
//     be applied.
//   - At most Window slots are open at once, bounding what a take-over must redo.
//   - Learned slots are applied strictly in order. A replica that is behind — lagging or
//     just restarted with its disk — sees the leader's commit point in heartbeats and asks
//     any replica for the chosen slots it misses.
//   - Clients retry through whichever replica leads, with the same request id. A command may
//     therefore be decided in two slots; the fsm's exactly-once table applies it once.
//
// The fsm runs on it unchanged: decided slot s is fsm log index s, a no-op is an empty
// entry, and each replica owns its own state file.
//
// # Checked, not hoped
//
// The model checker (model.go) enumerates every state of single-decree Paxos with 3
// acceptors, 2 proposers and a learner over a bounded set of ballots, on a network that may
// lose, duplicate and reorder anything and acceptors that may restart, and checks that at
// most one value is chosen, only chosen values are learned, a learned value never changes
// and no promise decreases. Four deliberately broken variants (a quorum of one, ignoring the
// values in promises, accepting below a promise, forgetting promises on restart) are each
// caught with a short counterexample — proof that the checker can fail.
//
// The simulator (sim.go) runs both protocols on one seeded generator and a virtual clock:
// per-message drop, duplicate and delay, directed partitions, crashes that keep only what
// was persisted. The observer (check.go) checks after every step: at most one value chosen
// per slot and a chosen value never changes, nothing learned or applied that was not
// chosen, promises never decrease (across restarts too), replicas' applied prefixes agree,
// and the fsm's own invariants. Tests also demand liveness once the network heals.
//
// # What the demo shows
//
// `stockctl paxos demo` prints a run step by step: every delivered or lost message, and
// under it what the receiver did and the rule that made it (P1a, P1b, P2c, chosen, ...). In
// single mode proposers compete for one value; in multi mode replicas run a small flash sale
// on the real fsm and end with the decided log, each buyer's answer, and equal state hashes.
// `--format mermaid` prints the same run as a sequence diagram. The same flags and seed
// always print the same bytes.
//
// # Paxos next to Raft
//
//	Paxos (this package)                    Raft (node/, hashicorp/raft)
//	ballot (round, node)                    term; one leader per term by election
//	phase 1 for all slots = election        RequestVote; vote only for an up-to-date log
//	slot: decided independently, any order  index: log matches up to it (log matching)
//	holes filled with no-ops on take-over   no holes: the log is contiguous by construction
//	new leader re-proposes old votes (P2c)  new leader's log is already complete; it
//	                                        overwrites followers' conflicting suffixes
//	chosen = majority accepted one ballot   committed = majority stored, current term
//	catch-up asks for chosen slots          AppendEntries backs up nextIndex, snapshots
//
// flashstock runs Raft in production because Raft pins down everything Paxos leaves open —
// leader election, log repair, membership changes, snapshots — in one specified design with
// a mature, well-tested implementation; a contiguous log also makes batching, linearizable
// reads and snapshot install straightforward. Paxos is the better teacher: its safety
// argument is two rules and an intersecting quorum, and Raft is easiest to understand as
// one particular answer to the questions Multi-Paxos raises here.
//
// # Not here (yet)
//
// Log compaction and snapshot-based catch-up, membership changes, and leader leases for
// local reads. A replica keeps every vote and learned slot on its (simulated) disk.
package paxos
