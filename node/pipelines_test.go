package node

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestPipeline_ARefusedAppendDoesNotParkTheSender is hashicorp/raft's replication
// deadlock, made deterministic: a follower refuses every append, raft's decoder reads the
// first answer and stops (as pipelineDecode does at a refusal), and the sender goes on
// sending before it notices. Through NetworkTransport's own pipeline (2 in flight, its
// queues unbuffered) the third send blocks for good; through the relay every send
// returns, and Close ends the relay.
func TestPipeline_ARefusedAppendDoesNotParkTheSender(t *testing.T) {
	follower, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follower.Close() })
	go func() {
		for rpc := range follower.Consumer() {
			rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: false}, nil)
		}
	}()
	leader, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leader.Close() })
	tr := newClosingTransport(serialTransport{leader, newAcks()})
	p, err := tr.AppendEntriesPipeline("f", follower.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}

	decoded := make(chan struct{})
	go func() { // raft's decoder: one answer, a refusal, and it is gone
		<-p.Consumer()
		close(decoded)
	}()
	sent := make(chan error, 1)
	go func() {
		for i := range 10 {
			req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("l"), Addr: []byte(leader.LocalAddr())}, Term: 1, PrevLogEntry: uint64(i)}
			if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("a send failed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sender is parked: 10 appends to a follower that refuses them did not return")
	}
	<-decoded
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	tp := p.(*trackedPipeline)
	select {
	case <-tp.stop:
	default:
		t.Fatal("Close did not end the relay")
	}
	if len(tr.pipes.open) != 0 {
		t.Fatalf("%d pipelines still tracked after Close", len(tr.pipes.open))
	}
}
