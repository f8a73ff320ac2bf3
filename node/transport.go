package node

import "github.com/hashicorp/raft"

// serialTransport is raft's NetworkTransport without the heartbeat fast path.
//
// hashicorp/raft v1.7.3 hands heartbeats to a handler that runs appendEntries on the
// connection's goroutine, concurrently with raft's main loop (hashicorp/raft#695, still
// open). A heartbeat from a newer leader then bumps currentTerm while a deposed leader's
// loop sits between reading the term and writing client entries: it writes them under the
// new term, at indexes where the real leader writes others. Same index and same term look
// like the same entry to the log-matching check, so the new leader's later entries append
// after them without a conflict, the deposed leader applies its own entries and every
// other replica the leader's: the replicas diverge, silently. The chaos suite caught it
// (TestLeaderPaused: a SIGSTOPped leader resumes with proposals and a newer leader's
// heartbeats queued at once; same applied index, different state hash, the deposed
// leader's pinned clients' deductions applied only on it).
//
// Without a handler the transport queues heartbeats on the consumer channel like every
// other RPC, and the main loop handles them in order with everything else. The price is
// the one the fast path avoided: a follower whose loop is busy (a slow log write, an fsm
// that fell behind) answers heartbeats late, and past the election timeout the cluster
// holds an election. Timeouts are far longer than a log write, and a disk that stalls for
// that long is better out of the quorum anyway (see the disk watchdog).
//
// It also numbers the AppendEntries requests it sends and records which followers answered
// them, for read rounds (acks.go).
type serialTransport struct {
	*raft.NetworkTransport
	acks *acks
}

// SetHeartbeatHandler ignores the handler raft registers.
func (serialTransport) SetHeartbeatHandler(func(raft.RPC)) {}

// AppendEntries sends one request and records its answer.
func (t serialTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	seq := t.acks.sending()
	err := t.NetworkTransport.AppendEntries(id, target, req, resp)
	if err == nil {
		t.acks.answered(id, seq, req, resp)
	}
	return err
}
