package transport

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// faulty starts a Layer whose links obey the returned Faults.
func faulty(t *testing.T) (*Layer, *Faults) {
	t.Helper()
	f := NewFaults(nil)
	t.Cleanup(func() { f.Close() })
	return listen(t, Config{Dial: f.Dial, WrapListener: f.WrapListener}), f
}

func TestFaults_PassThroughUntilTold(t *testing.T) {
	a, _ := faulty(t)
	b, _ := faulty(t)
	dialed, accepted := connect(t, a, b)
	send(t, dialed, accepted, "hello")
	send(t, accepted, dialed, "world")
}

func TestFaults_BlockStallsLiveConnsAndDials(t *testing.T) {
	a, f := faulty(t)
	b := listen(t, Config{})
	dialed, accepted := connect(t, a, b)
	send(t, dialed, accepted, "before")

	// A read already waiting when the link goes dark must not get the data
	// either, whichever side of the block it happens to be.
	inflight := make(chan error, 1)
	go func() {
		_, err := read(dialed, 5, 300*time.Millisecond)
		inflight <- err
	}()
	f.Block(b.Addr().String())
	if err := write(accepted, "after"); err != nil {
		t.Fatal(err)
	}
	if err := <-inflight; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a blocked link = %v, want a deadline error", err)
	}
	if got, err := read(dialed, 5, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second read on a blocked link = %q, %v; want a deadline error", got, err)
	}
	dialed.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	if err := write(dialed, "x"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write on a blocked link = %v, want a deadline error", err)
	}
	var ne net.Error
	if _, err := read(dialed, 1, 50*time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("blocked read error %v is not a net.Error timeout", err)
	}
	if _, err := a.Dial(raft.ServerAddress(b.Addr().String()), 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial on a blocked link = %v, want it to time out", err)
	}

	f.Heal()
	// Data held back during the block arrives, in order, after it.
	if got, err := read(dialed, 5, 5*time.Second); err != nil || got != "after" {
		t.Fatalf("read after Heal = %q, %v; want %q", got, err, "after")
	}
	dialed.SetWriteDeadline(time.Time{})
	send(t, dialed, accepted, "healed")
	dialed2, accepted2 := connect(t, a, b)
	send(t, dialed2, accepted2, "new conn")
}

func TestFaults_BlockWaitsForHeal(t *testing.T) {
	a, f := faulty(t)
	b := listen(t, Config{})
	dialed, accepted := connect(t, a, b)
	f.Block(b.Addr().String())

	got := make(chan string, 1)
	go func() {
		s, _ := read(dialed, 4, 0) // no deadline: stalls until Heal
		got <- s
	}()
	if err := write(accepted, "ping"); err != nil {
		t.Fatal(err)
	}
	f.Heal()
	select {
	case s := <-got:
		if s != "ping" {
			t.Fatalf("read after Heal = %q, want ping", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read stayed stalled after Heal")
	}
}

func TestFaults_BlockIsPerLink(t *testing.T) {
	a, f := faulty(t)
	b := listen(t, Config{})
	c := listen(t, Config{})
	toB, fromA := connect(t, a, b)
	toC, fromA2 := connect(t, a, c)
	f.Block(b.Addr().String())

	send(t, toC, fromA2, "c is reachable")
	write(fromA, "b")
	if _, err := read(toB, 1, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from blocked b = %v, want a deadline error", err)
	}
}

func TestFaults_BlockHostStallsAcceptedConns(t *testing.T) {
	a := listen(t, Config{})
	b, f := faulty(t)
	dialed, accepted := connect(t, a, b)
	f.Block("127.0.0.1") // every link to that host, accepted ones included

	if err := write(dialed, "vote"); err != nil {
		t.Fatal(err)
	}
	if _, err := read(accepted, 4, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a blocked accepted conn = %v, want a deadline error", err)
	}
	f.Heal()
	if got, err := read(accepted, 4, 5*time.Second); err != nil || got != "vote" {
		t.Fatalf("read after Heal = %q, %v; want vote", got, err)
	}
}

func TestFaults_HoldIncomingLetsWritesThroughAndHoldsAnswers(t *testing.T) {
	a, f := faulty(t)
	b := listen(t, Config{})
	dialed, accepted := connect(t, a, b)
	f.HoldIncoming(b.Addr().String())

	// The request goes out; the answer waits.
	send(t, dialed, accepted, "request")
	if err := write(accepted, "answer"); err != nil {
		t.Fatal(err)
	}
	if got, err := read(dialed, 6, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a held link = %q, %v; want a deadline error", got, err)
	}
	if _, err := a.Dial(raft.ServerAddress(b.Addr().String()), 5*time.Second); err != nil {
		t.Fatalf("dial on a held link: %v", err)
	}
	f.Heal()
	if got, err := read(dialed, 6, 5*time.Second); err != nil || got != "answer" {
		t.Fatalf("read after Heal = %q, %v; want answer", got, err)
	}
}

func TestFaults_ResetClosesLiveConns(t *testing.T) {
	a, f := faulty(t)
	b := listen(t, Config{})
	dialed, accepted := connect(t, a, b)
	f.Reset(b.Addr().String())

	if _, err := read(dialed, 1, 5*time.Second); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read on a reset conn = %v, want net.ErrClosed", err)
	}
	if _, err := read(accepted, 1, 5*time.Second); err == nil {
		t.Error("peer's read on a reset conn succeeded")
	}
	// The link itself still works.
	dialed2, accepted2 := connect(t, a, b)
	send(t, dialed2, accepted2, "reconnected")
}

func TestFaults_DelayAddsLatency(t *testing.T) {
	const delay = 150 * time.Millisecond
	a, f := faulty(t)
	b := listen(t, Config{})
	dialed, accepted := connect(t, a, b)
	f.Delay(b.Addr().String(), delay)

	start := time.Now()
	send(t, dialed, accepted, "slow")
	if took := time.Since(start); took < delay {
		t.Errorf("delivery on a delayed link took %v, want at least %v", took, delay)
	}
	start = time.Now()
	connect(t, a, b)
	if took := time.Since(start); took < delay {
		t.Errorf("dial on a delayed link took %v, want at least %v", took, delay)
	}

	f.Delay(b.Addr().String(), 0) // removes the delay
	send(t, dialed, accepted, "fast")
}

func TestFaults_DelayRespectsWriteDeadline(t *testing.T) {
	a, f := faulty(t)
	b := listen(t, Config{})
	dialed, _ := connect(t, a, b)
	f.Delay(b.Addr().String(), time.Hour)
	dialed.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if err := write(dialed, "x"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("delayed write past its deadline = %v, want a deadline error", err)
	}
}

// Nothing Faults makes wait may outlive Close: every stalled call returns.
func TestFaults_CloseReleasesEveryWaiter(t *testing.T) {
	a, f := faulty(t)
	b := listen(t, Config{})
	dialed, _ := connect(t, a, b)
	f.Block(b.Addr().String())

	done := make(chan error, 3)
	go func() { _, err := read(dialed, 1, 0); done <- err }()
	go func() { done <- write(dialed, "x") }()
	go func() {
		_, err := f.Dial(context.Background(), "tcp", b.Addr().String())
		done <- err
	}()
	f.Close()
	for range 3 {
		select {
		case err := <-done:
			if err == nil {
				t.Error("a stalled call succeeded after Close, want an error")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a stalled call did not return after Close")
		}
	}
	if _, err := f.Dial(context.Background(), "tcp", b.Addr().String()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close = %v, want net.ErrClosed", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// faultyMux starts a Mux whose links obey the returned Faults.
func faultyMux(t *testing.T) (*Mux, *Faults) {
	t.Helper()
	f := NewFaults(nil)
	t.Cleanup(func() { f.Close() })
	return listenMux(t, MuxConfig{Config: Config{Dial: f.Dial, WrapListener: f.WrapListener}}), f
}

func TestFaults_GroupBlockOnDialedLinksHoldsOnlyThatGroup(t *testing.T) {
	a, f := faultyMux(t)
	b := listenMux(t, MuxConfig{})
	a2, a3 := openLayer(t, a, 2), openLayer(t, a, 3)
	b2, b3 := openLayer(t, b, 2), openLayer(t, b, 3)
	dialed2, accepted2 := openStream(t, a2, b2, "two")
	dialed3, accepted3 := openStream(t, a3, b3, "three")

	f.Group(2).Block(b.Addr().String())
	write(accepted2, "2")
	write(accepted3, "3")
	if _, err := read(dialed2, 1, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on group 2's blocked stream = %v, want a deadline error", err)
	}
	if got, err := read(dialed3, 1, 5*time.Second); err != nil || got != "3" {
		t.Fatalf("read on group 3's stream = %q, %v; want 3", got, err)
	}
	if _, err := a2.Dial(raft.ServerAddress(b.Addr().String()), 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("group 2's dial on a blocked link = %v, want it to time out", err)
	}
	openStream(t, a3, b3, "group 3 dials")

	f.Group(2).Reset(b.Addr().String())
	if _, err := read(dialed2, 1, 5*time.Second); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read on group 2's reset stream = %v, want net.ErrClosed", err)
	}
	send(t, dialed3, accepted3, "group 3 not reset")

	f.Group(2).Heal()
	openStream(t, a2, b2, "group 2 healed")
}

// On the accepting node a stream's group is known from its header.
func TestFaults_GroupBlockOnAcceptedLinksHoldsOnlyThatGroup(t *testing.T) {
	a := listenMux(t, MuxConfig{})
	b, f := faultyMux(t)
	dialed2, accepted2 := openStream(t, openLayer(t, a, 2), openLayer(t, b, 2), "two")
	dialed3, accepted3 := openStream(t, openLayer(t, a, 3), openLayer(t, b, 3), "three")

	f.Group(2).Block("127.0.0.1") // the peer's host: its accepted streams
	write(dialed2, "2")
	write(dialed3, "3")
	if _, err := read(accepted2, 1, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on group 2's blocked accepted stream = %v, want a deadline error", err)
	}
	if got, err := read(accepted3, 1, 5*time.Second); err != nil || got != "3" {
		t.Fatalf("read on group 3's accepted stream = %q, %v; want 3", got, err)
	}
	f.Heal() // every fault, group ones included
	if got, err := read(accepted2, 1, 5*time.Second); err != nil || got != "2" {
		t.Fatalf("read after Heal = %q, %v; want 2", got, err)
	}
}
