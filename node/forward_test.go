package node

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// A follower that cannot even connect to the leader knows the request was never sent and
// says so with a retryable no_leader; a connection that fails after the request went out
// stays timeout, the outcome unknown.
func TestForward_RefusedIsNotSentResetIsUnknown(t *testing.T) {
	c := newUnit(t, unitSpec{nodes: 2})
	c.createSKU("tee", 10)
	leaderHTTP := c.addr(0)
	deduct := func(id string) api.Code {
		t.Helper()
		_, err := c.call(c.addr(1), "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: id, UserID: "u"}, nil)
		var ae *api.Error
		if !errors.As(err, &ae) {
			t.Fatalf("deduct %s through the follower: %v", id, err)
		}
		return ae.Code
	}

	// The leader still leads; only its HTTP port is closed: a dial there is refused.
	c.servers[0].Close()
	if code := deduct("refused"); code != api.NoLeader || !code.Retryable() {
		t.Fatalf("refused connection answered %s, want %s", code, api.NoLeader)
	}
	if s, err := c.store(0, 1).m.GetSKU("tee"); err != nil || s.Available != 10 {
		t.Fatalf("leader's sku %+v (%v)", s, err)
	}

	// Something on the leader's port reads the whole request head, then resets the
	// connection: the request went out, so the answer cannot say it did not.
	ln, err := net.Listen("tcp", leaderHTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(conn)
			for {
				line, err := br.ReadString('\n')
				if err != nil || strings.TrimSpace(line) == "" {
					break
				}
			}
			conn.(*net.TCPConn).SetLinger(0) // close with a reset
			conn.Close()
		}
	}()
	if code := deduct("reset"); code != api.Timeout {
		t.Fatalf("reset after sending answered %s, want %s", code, api.Timeout)
	}
}
