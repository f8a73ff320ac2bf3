package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// listen starts a Layer that is closed when the test ends.
func listen(t *testing.T, cfg Config) *Layer {
	t.Helper()
	if cfg.BindAddr == "" {
		cfg.BindAddr = "127.0.0.1:0"
	}
	l, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// connect dials server from client and returns both ends; both are closed
// when the test ends.
func connect(t *testing.T, client, server *Layer) (dialed, accepted net.Conn) {
	t.Helper()
	type result struct {
		conn net.Conn
		err  error
	}
	acc := make(chan result, 1)
	go func() {
		c, err := server.Accept()
		if tc, ok := c.(*tls.Conn); ok {
			// The server handshakes on first use; raft reads at once.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err = tc.HandshakeContext(ctx); err != nil {
				c.Close()
			}
		}
		acc <- result{c, err}
	}()
	dialed, err := client.Dial(raft.ServerAddress(server.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { dialed.Close() })
	r := <-acc
	if r.err != nil {
		t.Fatalf("Accept: %v", r.err)
	}
	t.Cleanup(func() { r.conn.Close() })
	return dialed, r.conn
}

// send writes msg on from and reads it back on to, failing the test otherwise.
func send(t *testing.T, from, to net.Conn, msg string) {
	t.Helper()
	if err := write(from, msg); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	got, err := read(to, len(msg), 5*time.Second)
	if err != nil || got != msg {
		t.Fatalf("read = %q, %v; want %q", got, err, msg)
	}
}

func write(c net.Conn, msg string) error {
	_, err := io.WriteString(c, msg)
	return err
}

// read reads exactly n bytes within d; a zero d means no deadline.
func read(c net.Conn, n int, d time.Duration) (string, error) {
	deadline := time.Time{}
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	if err := c.SetReadDeadline(deadline); err != nil {
		return "", err
	}
	buf := make([]byte, n)
	got, err := io.ReadFull(c, buf)
	return string(buf[:got]), err
}

// waitFor polls cond until it returns nil or 10 s pass.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func equalStrings(a, b []string) error {
	if !slices.Equal(a, b) {
		return fmt.Errorf("got %q, want %q", a, b)
	}
	return nil
}
