package node

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A heartbeat must reach raft's main loop through the consumer channel, never the fast-path
// handler raft registers (see serialTransport).
func TestSerialTransport_HeartbeatsGoThroughTheMainLoop(t *testing.T) {
	recv, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	st := serialTransport{recv, newAcks()}
	defer st.Close()
	called := make(chan struct{}, 1)
	st.SetHeartbeatHandler(func(rpc raft.RPC) {
		called <- struct{}{}
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	})
	send, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()

	heartbeat := raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n2"), Addr: []byte(send.LocalAddr())},
		Term:      8,
	}
	done := make(chan error, 1)
	go func() {
		var resp raft.AppendEntriesResponse
		done <- send.AppendEntries("n1", st.LocalAddr(), &heartbeat, &resp)
	}()
	select {
	case rpc := <-st.Consumer():
		if req, ok := rpc.Command.(*raft.AppendEntriesRequest); !ok || req.Term != 8 || len(req.Entries) != 0 {
			t.Fatalf("consumer got %#v", rpc.Command)
		}
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	case <-called:
		t.Fatal("the heartbeat went to the fast-path handler")
	case <-time.After(5 * time.Second):
		t.Fatal("the heartbeat never arrived")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case <-called:
		t.Fatal("the fast-path handler ran too")
	default:
	}
}
