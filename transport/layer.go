package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// keepAlive is the TCP keep-alive period on dialed and accepted connections,
// so that a peer that vanished without a FIN is eventually noticed.
const keepAlive = 15 * time.Second

// Layer is a raft.StreamLayer over TCP, optionally mutual TLS. It is safe for
// concurrent use. raft's NetworkTransport calls Accept from one goroutine and
// Dial from many; Close stops both.
type Layer struct {
	ln        net.Listener
	advertise net.Addr
	serverTLS *tls.Config
	clientTLS *tls.Config
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)

	closed    atomic.Bool
	closeOnce sync.Once
}

var _ raft.StreamLayer = (*Layer)(nil)

// Listen validates cfg, binds cfg.BindAddr and returns the Layer. The caller
// owns it; closing the raft NetworkTransport built on it closes it too.
func Listen(cfg Config) (*Layer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{KeepAlive: keepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen: %w", err)
	}
	advertise := cfg.AdvertiseAddr
	if advertise == "" {
		advertise = ln.Addr().String()
		if err := checkAdvertisable(advertise); err != nil {
			ln.Close()
			return nil, fmt.Errorf("transport: bound address cannot be advertised, set AdvertiseAddr: %w", err)
		}
	}
	if cfg.WrapListener != nil {
		ln = cfg.WrapListener(ln)
	}
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: keepAlive}).DialContext
	}
	return &Layer{
		ln:        ln,
		advertise: tcpAddr(advertise),
		serverTLS: cfg.TLS,
		clientTLS: cfg.ClientTLS,
		dial:      dial,
	}, nil
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
	if l.serverTLS != nil {
		return tls.Server(conn, l.serverTLS), nil
	}
	return conn, nil
}

// Dial connects to the peer at address within timeout (0 means no limit),
// TLS handshake included.
func (l *Layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	addr := string(address)
	if l.closed.Load() {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, net.ErrClosed)
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	conn, err := l.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	if l.clientTLS == nil {
		return conn, nil
	}
	tc := tls.Client(conn, l.clientConfig(addr))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: tls handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// clientConfig verifies the peer against the host it was dialed by, unless
// the configuration names a server explicitly.
func (l *Layer) clientConfig(addr string) *tls.Config {
	if l.clientTLS.ServerName != "" {
		return l.clientTLS
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return l.clientTLS // the dial would have failed already
	}
	cfg := l.clientTLS.Clone()
	cfg.ServerName = host
	return cfg
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

// tcpAddr is an advertised "host:port"; the host may be a DNS name.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
