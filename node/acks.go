package node

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// acks tells a read round which followers answered the leader after the round began. It is
// the node's answer to etcd's ReadIndex context: etcd counts only heartbeat answers that
// echo the read's own context, while hashicorp/raft's VerifyLeader counts any successful
// AppendEntries answer it processes, also one a follower sent before the leader was paused
// or cut off and the followers elected someone else (docs/RAFT-NOTES.md, "Reads after a
// pause").
//
// The transport numbers every AppendEntries request it sends, heartbeats included, before
// sending it, and records per follower the newest number answered with success in the
// request's term. A round takes the current number when it begins; an answer to a request
// with a higher number was given after that, so a quorum of them proves that at some moment
// inside the round a majority still followed this leader in this term, and no other leader
// can have committed anything the round's commit index misses.
//
// Answers that come through raft's append pipeline are not seen (observing them would take a
// goroutine per pipeline); VerifyLeader's heartbeats, which every round starts, are enough.
type acks struct {
	sent atomic.Uint64 // numbers given to requests so far

	mu        sync.Mutex
	newest    map[raft.ServerID]ack
	newerTerm uint64        // the highest term a follower answered with above the request's
	changed   chan struct{} // closed at the next answer recorded; nil until someone waits
}

type ack struct{ seq, term uint64 }

func newAcks() *acks { return &acks{newest: make(map[raft.ServerID]ack)} }

// mark is the number a round begins at: answers to requests numbered above it count.
func (a *acks) mark() uint64 { return a.sent.Load() }

// sending numbers a request about to be sent.
func (a *acks) sending() uint64 { return a.sent.Add(1) }

// answered records the answer of follower id to request seq.
func (a *acks) answered(id raft.ServerID, seq uint64, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case resp.Term > req.Term:
		a.newerTerm = max(a.newerTerm, resp.Term)
	case resp.Success && resp.Term == req.Term:
		if seq <= a.newest[id].seq {
			return
		}
		a.newest[id] = ack{seq, req.Term}
	default:
		return
	}
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
}

// since counts the voters that answered a request of term numbered after start, and says
// whether any follower answered with a term above it. changed is closed at the next
// recorded answer.
func (a *acks) since(start, term uint64, voters []raft.ServerID) (n int, deposed bool, changed <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range voters {
		if x := a.newest[id]; x.seq > start && x.term == term {
			n++
		}
	}
	if a.changed == nil {
		a.changed = make(chan struct{})
	}
	return n, a.newerTerm > term, a.changed
}
