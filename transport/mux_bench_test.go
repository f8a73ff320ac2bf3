package transport

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// BenchmarkStreamOpen measures what a new stream costs, from Dial to the
// first answer: raft opens one per pooled connection, pipeline and snapshot.
// The plain Layer is the baseline; a Mux adds the header read in its own
// goroutine and the hand-off to the group, and for groups other than
// LegacyGroup the header on the wire.
func BenchmarkStreamOpen(b *testing.B) {
	for _, security := range []string{"plain", "mTLS"} {
		var ca *testCA
		if security == "mTLS" {
			ca = newTestCA(b, "cluster CA")
		}
		config := func(name string) Config {
			cfg := Config{BindAddr: "127.0.0.1:0"}
			if ca != nil {
				cfg.TLS, cfg.ClientTLS = ca.mutualTLS(b, name)
			}
			return cfg
		}
		b.Run(security+"/Layer", func(b *testing.B) {
			client, err := Listen(config("client"))
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close()
			server, err := Listen(config("server"))
			if err != nil {
				b.Fatal(err)
			}
			defer server.Close()
			benchStreams(b, client, server)
		})
		for _, group := range []uint64{LegacyGroup, 2} {
			name := "Mux/LegacyGroup"
			if group != LegacyGroup {
				name = "Mux/headed"
			}
			b.Run(security+"/"+name, func(b *testing.B) {
				client := listenMux(b, MuxConfig{Config: config("client")})
				server := listenMux(b, MuxConfig{Config: config("server")})
				benchStreams(b, openLayer(b, client, group), openLayer(b, server, group))
			})
		}
	}
}

// benchStreams opens b.N streams from client to server, each carrying one
// byte there and one back.
func benchStreams(b *testing.B, client, server raft.StreamLayer) {
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			c, err := server.Accept()
			if err != nil {
				return
			}
			var one [1]byte
			if _, err := io.ReadFull(c, one[:]); err == nil {
				c.Write(one[:])
			}
			c.Close()
		}
	}()
	defer func() {
		server.Close()
		<-served
	}()
	addr := raft.ServerAddress(server.Addr().String())
	b.ReportAllocs()
	for b.Loop() {
		c, err := client.Dial(addr, 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if err := roundTrip(c); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func roundTrip(c net.Conn) error {
	one := []byte{0}
	if _, err := c.Write(one); err != nil {
		return err
	}
	_, err := io.ReadFull(c, one)
	return err
}
