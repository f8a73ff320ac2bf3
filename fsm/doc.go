// Package fsm is flashstock's inventory state machine: SKUs, orders with holds, per-user
// limits, an exactly-once table and a movement ledger, kept in one bbolt file.
//
// Every replica applies the same log of encoded commands through ApplyBatch and must end in
// the same state, byte for byte. So apply never reads the clock, a random source or map
// iteration order: time comes in each command, stamped by the proposer (Command.Time), and
// every limit that prunes state (exactly-once window, ledger retention) is fixed when the
// state file is created and travels inside snapshots.
//
// The package knows nothing of raft, Paxos or HTTP. node/ adapts a Machine to
// raft.BatchingFSM; paxos/ drives the same Machine from decided slots. Each declares the
// small interface it needs of it (node's replica); the contract of each method is on the
// method.
//
// Durability: the last applied log index is written in the same bbolt transaction as the
// effects of the entries up to it, and a batch of entries is one transaction (one fsync).
// Entries at or below the applied index are skipped, so a log replayed after a restart
// changes nothing. A storage failure inside ApplyBatch is returned as an error and poisons
// the Machine: the caller must stop the process, because skipping an entry the other
// replicas applied would make this replica diverge silently.
package fsm
