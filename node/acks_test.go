package node

import (
	"testing"

	"github.com/hashicorp/raft"
)

func TestAcks_OnlyAnswersToRequestsSentAfterTheMarkCount(t *testing.T) {
	voters := []raft.ServerID{"n2", "n3"}
	req := func(term uint64) *raft.AppendEntriesRequest { return &raft.AppendEntriesRequest{Term: term} }
	ok := func(term uint64) *raft.AppendEntriesResponse {
		return &raft.AppendEntriesResponse{Term: term, Success: true}
	}
	a := newAcks()
	early := a.sending() // sent before the round, answered after it began
	start := a.mark()
	a.answered("n2", early, req(3), ok(3))
	if n, deposed, _ := a.since(start, 3, voters); n != 0 || deposed {
		t.Fatalf("an answer to a request sent before the round counted: %d, deposed %v", n, deposed)
	}

	late := a.sending()
	a.answered("n3", late, req(3), &raft.AppendEntriesResponse{Term: 3}) // a failed append
	a.answered("n4", late, req(3), ok(3))                                // not a voter
	if n, _, _ := a.since(start, 3, voters); n != 0 {
		t.Fatalf("a failure or a non-voter counted: %d", n)
	}
	_, _, changed := a.since(start, 3, voters)
	a.answered("n2", late, req(3), ok(3))
	select {
	case <-changed:
	default:
		t.Fatal("a recorded answer did not wake the waiter")
	}
	if n, _, _ := a.since(start, 3, voters); n != 1 {
		t.Fatalf("answers after the mark: %d, want 1", n)
	}
	if n, _, _ := a.since(start, 4, voters); n != 0 {
		t.Fatalf("an answer in term 3 confirmed term 4: %d", n)
	}
	a.answered("n2", early, req(3), ok(3)) // an older request answered last
	if n, _, _ := a.since(start, 3, voters); n != 1 {
		t.Fatalf("a late answer to an older request undid a newer one: %d", n)
	}

	a.answered("n3", a.sending(), req(3), &raft.AppendEntriesResponse{Term: 5})
	if _, deposed, _ := a.since(start, 3, voters); !deposed {
		t.Fatal("an answer with a newer term did not depose term 3")
	}
	if _, deposed, _ := a.since(a.mark(), 6, voters); deposed {
		t.Fatal("term 5 deposed a later term 6")
	}
}
