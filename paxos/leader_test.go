package paxos

import "testing"

func accepts(out Output) map[uint64]Message {
	got := map[uint64]Message{}
	for _, m := range out.Msgs {
		if m.Type == MsgAccept {
			got[m.Slot] = m
		}
	}
	return got
}

// campaignToLeader makes replica 1 (of 3) campaign and receive one promise carrying votes.
func campaignToLeader(t *testing.T, own map[uint64]Accepted, reported []Accepted) (*Replica, Output) {
	t.Helper()
	r := NewReplica(Config{ID: 1, Peers: []NodeID{1, 2, 3}, CanLead: true, ElectionTicks: 1},
		Durable{Accepted: own}, 0)
	for i := 0; i < 10 && r.role != candidate; i++ {
		r.Tick()
	}
	if r.role != candidate {
		t.Fatal("replica never campaigned")
	}
	out := r.Step(Message{Type: MsgPromise, From: 2, To: 1, Ballot: r.ballot, Slot: 1, Entries: reported})
	if !r.IsLeader() {
		t.Fatal("a majority of promises did not make a leader")
	}
	return r, out
}

func TestLeader_TakeOverReproposesHighestBallotAndFillsHoles(t *testing.T) {
	own := map[uint64]Accepted{
		2: {Slot: 2, Ballot: Ballot{1, 3}, Value: "old"},
	}
	reported := []Accepted{
		{Slot: 2, Ballot: Ballot{2, 2}, Value: "newer"}, // higher ballot wins slot 2 (P2c)
		{Slot: 4, Ballot: Ballot{1, 3}, Value: "x"},
	}
	r, out := campaignToLeader(t, own, reported)
	got := accepts(out)
	want := map[uint64]Value{1: Noop, 2: "newer", 3: Noop, 4: "x"}
	for s, v := range want {
		m, ok := got[s]
		if !ok || m.Value != v || m.Ballot != r.ballot {
			t.Errorf("slot %d: got %+v, want accept %q under %s", s, m, v, r.ballot)
		}
	}
	if len(got) != len(want) {
		t.Errorf("accepts for %d slots, want %d", len(got), len(want))
	}
	// New commands go after the recovered range, without another phase 1.
	out = r.Propose("cmd")
	for _, m := range out.Msgs {
		if m.Type == MsgPrepare {
			t.Fatal("a stable leader ran phase 1 again")
		}
	}
	if m, ok := accepts(out)[5]; !ok || m.Value != "cmd" {
		t.Errorf("new command not proposed in slot 5: %+v", out.Msgs)
	}
}

func TestLeader_WindowBoundsOpenSlots(t *testing.T) {
	r, _ := campaignToLeader(t, nil, nil)
	r.cfg.Window = 3
	var opened int
	for i := range 10 {
		for _, m := range r.Propose(Value(rune('a' + i))).Msgs {
			if m.Type == MsgAccept {
				opened++
			}
		}
	}
	if opened != 3*2 { // 3 slots, each sent to 2 peers
		t.Fatalf("%d accepts sent with a window of 3, want 6", opened)
	}
	// A vote from n2 chooses slot 1 and frees room for exactly one more slot.
	out := r.Step(Message{Type: MsgAccepted, From: 2, To: 1, Ballot: r.ballot, Slot: 1, Value: "a"})
	if len(out.Apply) != 1 || out.Apply[0].Slot != 1 {
		t.Fatalf("slot 1 not applied after a majority: %+v", out.Apply)
	}
	if got := accepts(out); len(got) != 1 || got[4].Value != "d" {
		t.Fatalf("window did not slide by one: %+v", got)
	}
}

func TestReplica_PromiseSurvivesRestart(t *testing.T) {
	r := NewReplica(Config{ID: 2, Peers: []NodeID{1, 2, 3}}, Durable{}, 0)
	out := r.Step(Message{Type: MsgPrepare, From: 1, To: 2, Ballot: Ballot{5, 1}, Slot: 1})
	if out.HardState == nil || out.HardState.Promised != (Ballot{5, 1}) {
		t.Fatalf("promise not persisted before the reply: %+v", out.HardState)
	}
	again := NewReplica(Config{ID: 2, Peers: []NodeID{1, 2, 3}}, Durable{HardState: *out.HardState}, 0)
	out = again.Step(Message{Type: MsgAccept, From: 3, To: 2, Ballot: Ballot{4, 3}, Slot: 1, Value: "v"})
	if len(out.Msgs) != 1 || out.Msgs[0].Type != MsgNack || len(out.Accepted) != 0 {
		t.Fatalf("restarted acceptor accepted below its promise: %+v", out)
	}
}
