package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// listenMux starts a Mux that is closed when the test ends.
func listenMux(t testing.TB, cfg MuxConfig) *Mux {
	t.Helper()
	if cfg.BindAddr == "" {
		cfg.BindAddr = "127.0.0.1:0"
	}
	m, err := ListenMux(cfg)
	if err != nil {
		t.Fatalf("ListenMux: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// openLayer opens group id's layer on m.
func openLayer(t testing.TB, m *Mux, id uint64) *GroupLayer {
	t.Helper()
	g, err := m.Layer(id)
	if err != nil {
		t.Fatalf("Layer(%d): %v", id, err)
	}
	return g
}

// openStream dials server from client, writes hello as raft would its first
// rpc (a Mux routes a header-less stream only once its first byte arrives),
// accepts it on server and reads hello there. Both ends are closed when the
// test ends.
func openStream(t *testing.T, client, server raft.StreamLayer, hello string) (dialed, accepted net.Conn) {
	t.Helper()
	dialed, err := client.Dial(raft.ServerAddress(server.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { dialed.Close() })
	if err := write(dialed, hello); err != nil {
		t.Fatalf("write %q: %v", hello, err)
	}
	accepted = acceptWithin(t, server, 5*time.Second)
	t.Cleanup(func() { accepted.Close() })
	if got, err := read(accepted, len(hello), 5*time.Second); err != nil || got != hello {
		t.Fatalf("accepted stream read = %q, %v; want %q", got, err, hello)
	}
	return dialed, accepted
}

// acceptWithin accepts one stream on l, failing the test if none comes in d.
func acceptWithin(t *testing.T, l raft.StreamLayer, d time.Duration) net.Conn {
	t.Helper()
	type result struct {
		conn net.Conn
		err  error
	}
	acc := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		acc <- result{c, err}
	}()
	select {
	case r := <-acc:
		if r.err != nil {
			t.Fatalf("Accept: %v", r.err)
		}
		return r.conn
	case <-time.After(d):
		l.Close() // releases the Accept above
		t.Fatalf("no stream accepted within %v", d)
		return nil
	}
}

// waitRefused waits until the server end closes c: a read returns EOF or a
// reset instead of data.
func waitRefused(t *testing.T, c net.Conn) {
	t.Helper()
	got, err := read(c, 1, 10*time.Second)
	if err == nil {
		t.Fatalf("read on a refused stream returned %q, want it closed", got)
	}
	if errors.Is(err, net.ErrClosed) || isTimeout(err) {
		t.Fatalf("read on a refused stream = %v, want EOF or reset from the server", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// waitStats waits until cond holds for m's counters.
func waitStats(t *testing.T, m *Mux, what string, cond func(MuxStats) bool) {
	t.Helper()
	waitFor(t, what, func() error {
		if s := m.Stats(); !cond(s) {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
}

func TestMux_RoutesStreamsByGroup(t *testing.T) {
	a := listenMux(t, MuxConfig{})
	b := listenMux(t, MuxConfig{})
	for _, id := range []uint64{LegacyGroup, 2, 1 << 40} {
		from, to := openLayer(t, a, id), openLayer(t, b, id)
		if _, err := b.Layer(id); !errors.Is(err, ErrDuplicateGroup) {
			t.Fatalf("second Layer(%d) = %v, want ErrDuplicateGroup", id, err)
		}
		msg := fmt.Sprintf("rpc of group %d", id)
		dialed, accepted := openStream(t, from, to, msg)
		send(t, accepted, dialed, "answer")
	}
	waitStats(t, b, "3 streams routed, 1 of them header-less", func(s MuxStats) bool { return s == MuxStats{Routed: 3, Legacy: 1} })
}

func TestMux_LayerRefusesClosedMux(t *testing.T) {
	m := listenMux(t, MuxConfig{})
	m.Close()
	if _, err := m.Layer(2); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Layer after Close = %v, want net.ErrClosed", err)
	}
}

// The streams of LegacyGroup are the wire of a single-group node: a plain
// Layer (the version before the Mux) and a Mux talk in both directions.
func TestMux_LegacyGroupSpeaksThePlainLayerWire(t *testing.T) {
	old := listen(t, Config{})
	m := listenMux(t, MuxConfig{})
	legacy := openLayer(t, m, LegacyGroup)

	dialed, accepted := openStream(t, old, legacy, "\x00append entries")
	send(t, accepted, dialed, "ok")

	// What the old node reads is raft's first byte, not a header.
	dialed, accepted = openStream(t, legacy, old, "\x01request vote")
	send(t, accepted, dialed, "granted")

	// Another group's stream opens with the header, which an old node's
	// raft reads as rpc type 0xF5 and refuses.
	other := openLayer(t, m, 7)
	conn, err := other.Dial(raft.ServerAddress(old.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	c := acceptWithin(t, old, 5*time.Second)
	defer c.Close()
	got, err := read(c, headerLen, 5*time.Second)
	if want := string(appendHeader(nil, 7)); err != nil || got != want || got[0] != 0xF5 {
		t.Errorf("old node read %x, %v; want the header %x", got, err, want)
	}
}

func TestMux_RefusesUnknownGroupAndKeepsRoutingOthers(t *testing.T) {
	a := listenMux(t, MuxConfig{})
	b := listenMux(t, MuxConfig{})
	known := openLayer(t, b, 2)
	conn, err := openLayer(t, a, 9).Dial(raft.ServerAddress(b.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	write(conn, "vote for me")
	waitRefused(t, conn)
	waitStats(t, b, "the refusal counted", func(s MuxStats) bool { return s.UnknownGroup == 1 })

	dialed, accepted := openStream(t, openLayer(t, a, 2), known, "still here")
	send(t, accepted, dialed, "ok")
}

// A Mux without LegacyGroup refuses header-less streams as for any other
// group it does not host.
func TestMux_RefusesHeaderlessStreamWithoutLegacyGroup(t *testing.T) {
	old := listen(t, Config{})
	m := listenMux(t, MuxConfig{})
	openLayer(t, m, 2)
	conn, err := old.Dial(raft.ServerAddress(m.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	write(conn, "\x00append entries")
	waitRefused(t, conn)
	waitStats(t, m, "the refusal counted", func(s MuxStats) bool { return s.UnknownGroup == 1 && s.Routed == 0 })
}

func TestMux_RefusesBadHeader(t *testing.T) {
	head := appendHeader(nil, 2)
	tests := []struct {
		name   string
		header []byte
	}{
		{"wrong magic", append([]byte{0xF5, 'x'}, head[2:]...)},
		{"unknown version", append(append(bytes.Clone(head[:4]), 2), head[5:]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := listenMux(t, MuxConfig{})
			openLayer(t, m, LegacyGroup)
			openLayer(t, m, 2)
			conn := dialRaw(t, m)
			if _, err := conn.Write(tt.header); err != nil {
				t.Fatal(err)
			}
			waitRefused(t, conn)
			waitStats(t, m, "the refusal counted", func(s MuxStats) bool { return s == MuxStats{BadHeader: 1} })
		})
	}
}

// dialRaw opens a TCP connection to m that sends nothing until told.
func dialRaw(t *testing.T, m *Mux) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", m.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// silentClients opens connections to m that send nothing, or stop in the
// middle of their header.
func silentClients(t *testing.T, m *Mux) []net.Conn {
	t.Helper()
	partial := dialRaw(t, m)
	if _, err := partial.Write(headerMagic[:]); err != nil {
		t.Fatal(err)
	}
	return []net.Conn{dialRaw(t, m), dialRaw(t, m), dialRaw(t, m), partial}
}

func TestMux_SilentClientsDoNotHoldUpOtherStreams(t *testing.T) {
	a := listenMux(t, MuxConfig{})
	b := listenMux(t, MuxConfig{HeaderTimeout: time.Minute})
	silentClients(t, b)
	dialed, accepted := openStream(t, openLayer(t, a, 2), openLayer(t, b, 2), "past the silent ones")
	send(t, accepted, dialed, "ok")
}

func TestMux_ClosesSilentClientsAtHeaderTimeout(t *testing.T) {
	m := listenMux(t, MuxConfig{HeaderTimeout: 100 * time.Millisecond})
	openLayer(t, m, LegacyGroup)
	silent := silentClients(t, m)
	for _, c := range silent {
		waitRefused(t, c)
	}
	waitStats(t, m, "the silent clients counted", func(s MuxStats) bool {
		return s == MuxStats{HeaderFailed: uint64(len(silent))}
	})
}

func TestMux_BoundsConnectionsPresentingHeaders(t *testing.T) {
	m := listenMux(t, MuxConfig{HeaderTimeout: time.Minute})
	openLayer(t, m, 2)
	for range maxPendingHeaders {
		dialRaw(t, m)
	}
	waitFor(t, "every silent connection pending", func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if n := len(m.pending); n != maxPendingHeaders {
			return fmt.Errorf("%d pending", n)
		}
		return nil
	})
	extra := dialRaw(t, m)
	waitRefused(t, extra)
	waitStats(t, m, "the refusal counted", func(s MuxStats) bool { return s.Busy == 1 })
}

func TestGroupLayer_CloseDropsOnlyItsGroup(t *testing.T) {
	a := listenMux(t, MuxConfig{})
	b := listenMux(t, MuxConfig{})
	dropped, kept := openLayer(t, b, 2), openLayer(t, b, 3)

	closeAndCheckClosed(t, dropped, raft.ServerAddress(a.Addr().String()))

	// The group is gone from b: its streams are refused, the others' pass.
	from2 := openLayer(t, a, 2)
	conn, err := from2.Dial(raft.ServerAddress(b.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	waitRefused(t, conn)
	dialed, acc := openStream(t, openLayer(t, a, 3), kept, "group 3")
	send(t, acc, dialed, "ok")

	// and it may come back.
	reopened := openLayer(t, b, 2)
	openStream(t, from2, reopened, "group 2 again")
}

// ownGoroutines returns the stacks of goroutines running this package's
// Mux, GroupLayer or Faults code.
func ownGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var own []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, fn := range []string{"transport.(*Mux)", "transport.(*GroupLayer)", "transport.(*Faults)", "transport.(*faultConn)"} {
			if strings.Contains(g, fn) {
				own = append(own, g)
				break
			}
		}
	}
	return own
}

func TestMux_CloseReleasesEverything(t *testing.T) {
	f := NewFaults(nil)
	defer f.Close()
	peer := listenMux(t, MuxConfig{})
	m, err := ListenMux(MuxConfig{Config: Config{BindAddr: "127.0.0.1:0", Dial: f.Dial, WrapListener: f.WrapListener}})
	if err != nil {
		t.Fatal(err)
	}
	g1, g2 := openLayer(t, m, LegacyGroup), openLayer(t, m, 2)

	// Waiting: an Accept on each group, a connection that never sends its
	// header, and a dial without a timeout into a blackholed link.
	done := make(chan error, 3)
	for _, g := range []*GroupLayer{g1, g2} {
		go func() {
			_, err := g.Accept()
			done <- err
		}()
	}
	dialRaw(t, m)
	f.Block(peer.Addr().String())
	go func() {
		_, err := g2.Dial(raft.ServerAddress(peer.Addr().String()), 0)
		done <- err
	}()
	waitFor(t, "every waiter started", func() error {
		m.mu.Lock()
		pending := len(m.pending)
		m.mu.Unlock()
		if n := len(ownGoroutines()); n < 5 || pending != 1 {
			return fmt.Errorf("%d goroutines in our code, %d pending headers", n, pending)
		}
		return nil
	})

	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 3 {
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, context.Canceled) {
				t.Errorf("a waiter returned %v after Close, want net.ErrClosed or a canceled dial", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a waiter did not return after Close")
		}
	}
	peer.Close() // its accept loop is ours too
	waitFor(t, "no goroutine left in our code", func() error {
		if own := ownGoroutines(); len(own) > 0 {
			return fmt.Errorf("%d left:\n%s", len(own), strings.Join(own, "\n\n"))
		}
		return nil
	})
	if _, err := g1.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after the Mux closed = %v, want net.ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
