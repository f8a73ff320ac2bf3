package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Layer is a raft.StreamLayer over TCP, optionally mutual TLS, for a process
// that hosts one raft group. It is safe for concurrent use. raft's
// NetworkTransport calls Accept from one goroutine and Dial from many; Close
// stops both.
//
// Its streams carry no group header: on the wire they are the streams of a
// [Mux]'s [LegacyGroup], so a Layer and a Mux hosting that group talk to each
// other in both directions.
type Layer struct {
	*endpoint

	closed    atomic.Bool
	closeOnce sync.Once
}

var _ raft.StreamLayer = (*Layer)(nil)

// Listen validates cfg, binds cfg.BindAddr and returns the Layer. The caller
// owns it; closing the raft NetworkTransport built on it closes it too.
func Listen(cfg Config) (*Layer, error) {
	e, err := bind(cfg)
	if err != nil {
		return nil, err
	}
	return &Layer{endpoint: e}, nil
}

// Accept waits for the next peer connection. With TLS the handshake happens
// on the connection's first Read or Write, in raft's per-connection
// goroutine, so a slow or rogue peer cannot hold up the accept loop; a peer
// without a certificate from the cluster CA fails there. After Close, Accept
// returns an error matching net.ErrClosed.
func (l *Layer) Accept() (net.Conn, error) {
	conn, err := l.ln.Accept()
	if err != nil {
		if l.closed.Load() && !errors.Is(err, net.ErrClosed) {
			err = fmt.Errorf("%w: %w", net.ErrClosed, err)
		}
		return nil, err
	}
	return l.server(conn), nil
}

// Dial connects to the peer at address within timeout (0 means no limit),
// TLS handshake included.
func (l *Layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if l.closed.Load() {
		return nil, fmt.Errorf("transport: dial %s: %w", address, net.ErrClosed)
	}
	ctx, cancel := dialContext(context.Background(), timeout)
	defer cancel()
	return l.dialPeer(ctx, string(address))
}

// Close stops the listener. Connections already handed out are their
// owner's to close. Calling Close again does nothing and returns nil.
func (l *Layer) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		err = l.ln.Close()
	})
	return err
}

// Addr is the advertised address: the one peers dial and raft records.
func (l *Layer) Addr() net.Addr { return l.advertise }
