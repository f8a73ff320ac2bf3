package transport

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestLayer_DialAcceptRoundTrip(t *testing.T) {
	a := listen(t, Config{})
	b := listen(t, Config{})
	dialed, accepted := connect(t, a, b)
	send(t, dialed, accepted, "append entries")
	send(t, accepted, dialed, "ok")
	if _, ok := dialed.(*net.TCPConn); !ok {
		t.Errorf("plain dial returned %T, want *net.TCPConn", dialed)
	}
}

func TestLayer_AddrReportsAdvertiseAddr(t *testing.T) {
	l := listen(t, Config{BindAddr: "127.0.0.1:0", AdvertiseAddr: "node1.example:5001"})
	if got := l.Addr().String(); got != "node1.example:5001" {
		t.Errorf("Addr() = %q, want the advertise address", got)
	}
	if got := l.Addr().Network(); got != "tcp" {
		t.Errorf("Addr().Network() = %q, want tcp", got)
	}

	bound := listen(t, Config{BindAddr: "127.0.0.1:0"})
	if host, port, _ := net.SplitHostPort(bound.Addr().String()); host != "127.0.0.1" || port == "0" {
		t.Errorf("Addr() without AdvertiseAddr = %q, want the bound 127.0.0.1:port", bound.Addr())
	}
}

func TestListen_RejectsUnadvertisableAddress(t *testing.T) {
	for _, cfg := range []Config{
		{BindAddr: "127.0.0.1:0", AdvertiseAddr: "0.0.0.0:5000"},
		{BindAddr: "127.0.0.1:0", AdvertiseAddr: "127.0.0.1"},
		{BindAddr: "0.0.0.0:0"}, // the bound address itself is unspecified
	} {
		l, err := Listen(cfg)
		if err == nil {
			l.Close()
			t.Errorf("Listen(%+v) succeeded, want an error", cfg)
			continue
		}
		if !strings.Contains(err.Error(), "dvertise") {
			t.Errorf("Listen(%+v) = %v, want an error naming the advertise address", cfg, err)
		}
	}
}

func TestLayer_CloseIsIdempotentAndStopsAccept(t *testing.T) {
	l, err := Listen(Config{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	closeAndCheckClosed(t, l, raft.ServerAddress(l.Addr().String()))
}

// closeAndCheckClosed closes l twice while an Accept waits, and checks that the waiter,
// a later Accept and a Dial to dialTo all end with net.ErrClosed.
func closeAndCheckClosed(t *testing.T, l raft.StreamLayer, dialTo raft.ServerAddress) {
	t.Helper()
	accepted := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepted <- err
	}()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("pending Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pending Accept did not return after Close")
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
	if _, err := l.Dial(dialTo, time.Second); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close = %v, want net.ErrClosed", err)
	}
}

func TestLayer_AcceptAfterCloseWithWrappedListener(t *testing.T) {
	f := NewFaults(nil)
	t.Cleanup(func() { f.Close() })
	l := listen(t, Config{WrapListener: f.WrapListener})
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
}

func TestLayer_DialRefusedPeerFails(t *testing.T) {
	gone := listen(t, Config{})
	addr := gone.Addr().String()
	gone.Close()
	a := listen(t, Config{})
	if _, err := a.Dial(raft.ServerAddress(addr), time.Second); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
}
