package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// keepAlive is the TCP keep-alive period on dialed and accepted connections,
// so that a peer that vanished without a FIN is eventually noticed.
const keepAlive = 15 * time.Second

// endpoint is what a Layer and a Mux share: one bound listener, the address
// peers reach it by, and the way out to peers (dialer and TLS).
type endpoint struct {
	ln        net.Listener
	advertise tcpAddr
	serverTLS *tls.Config
	clientTLS *tls.Config
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
}

// bind validates cfg and binds cfg.BindAddr.
func bind(cfg Config) (*endpoint, error) {
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
	return &endpoint{
		ln:        ln,
		advertise: tcpAddr(advertise),
		serverTLS: cfg.TLS,
		clientTLS: cfg.ClientTLS,
		dial:      dial,
	}, nil
}

// server layers the listener's TLS, if any, over an accepted connection. The
// handshake runs on the connection's first Read or Write.
func (e *endpoint) server(conn net.Conn) net.Conn {
	if e.serverTLS != nil {
		return tls.Server(conn, e.serverTLS)
	}
	return conn
}

// dialPeer connects to addr before ctx ends, TLS handshake included.
func (e *endpoint) dialPeer(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := e.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	if e.clientTLS == nil {
		return conn, nil
	}
	tc := tls.Client(conn, e.clientConfig(addr))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: tls handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// clientConfig verifies the peer against the host it was dialed by, unless
// the configuration names a server explicitly.
func (e *endpoint) clientConfig(addr string) *tls.Config {
	if e.clientTLS.ServerName != "" {
		return e.clientTLS
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return e.clientTLS // the dial would have failed already
	}
	cfg := e.clientTLS.Clone()
	cfg.ServerName = host
	return cfg
}

// dialContext is the context of one raft Dial: timeout 0 means no limit.
func dialContext(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeout(parent, timeout)
	}
	return context.WithCancel(parent)
}

// tcpAddr is an advertised "host:port"; the host may be a DNS name.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
