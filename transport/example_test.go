package transport_test

import (
	"log"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/transport"
)

// A node process hosting several raft groups binds one Mux and builds each
// group's NetworkTransport on that group's layer. Peers reach every group at
// the same address.
func ExampleMux() {
	mux, err := transport.ListenMux(transport.MuxConfig{Config: transport.Config{BindAddr: "127.0.0.1:0"}})
	if err != nil {
		log.Fatal(err)
	}
	defer mux.Close() // after every group's transport

	for _, group := range []uint64{transport.LegacyGroup, 2, 3} {
		layer, err := mux.Layer(group)
		if err != nil {
			log.Fatal(err)
		}
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: layer, MaxPool: 3, Timeout: 10 * time.Second,
		})
		// raft.NewRaft(config, fsm, logs, stable, snapshots, trans) for the
		// group; closing trans drops the group from the Mux.
		defer trans.Close()
	}
}
