package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Config describes one node's raft stream layer. Only BindAddr is required;
// the zero value of every other field gives plain TCP with the standard dialer.
type Config struct {
	// BindAddr is the local TCP address to listen on, e.g. "127.0.0.1:5001" or
	// "0.0.0.0:5001". Port 0 picks a free port.
	BindAddr string

	// AdvertiseAddr is the address peers dial to reach this node; Addr
	// reports it and raft records it in the cluster configuration. It must be
	// a concrete host:port: not 0.0.0.0 or ::, not port 0. Empty means the
	// bound address, which then must be concrete itself.
	AdvertiseAddr string

	// TLS, when set, makes the listener speak TLS, and ClientTLS is then used
	// to dial peers; set both or neither. TLS must require and verify client
	// certificates, because a peer that can connect can rewrite the log.
	// MutualTLS builds a matching pair. When ClientTLS.ServerName is empty,
	// the peer's certificate is verified against the host of the dialed
	// address (an IP SAN for an IP address).
	TLS       *tls.Config
	ClientTLS *tls.Config

	// Dial, if set, replaces the default dialer (a net.Dialer with TCP
	// keep-alive). The context carries the timeout raft asks for. It returns
	// the raw connection; TLS is layered on top by the Layer. Faults.Dial fits.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// WrapListener, if set, wraps the bound TCP listener (beneath TLS).
	// Faults.WrapListener fits.
	WrapListener func(net.Listener) net.Listener
}

// Validate reports every broken rule of c, or nil.
func (c Config) Validate() error {
	var errs []error
	if c.BindAddr == "" {
		errs = append(errs, errors.New("BindAddr is required"))
	} else if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		errs = append(errs, fmt.Errorf("BindAddr: %w", err))
	}
	if c.AdvertiseAddr != "" {
		if err := checkAdvertisable(c.AdvertiseAddr); err != nil {
			errs = append(errs, fmt.Errorf("AdvertiseAddr: %w", err))
		}
	}
	if (c.TLS == nil) != (c.ClientTLS == nil) {
		errs = append(errs, errors.New("TLS and ClientTLS must be set together: a node that listens with TLS must dial with it, and the reverse"))
	}
	if c.TLS != nil {
		if c.TLS.ClientAuth != tls.RequireAndVerifyClientCert {
			errs = append(errs, errors.New("TLS.ClientAuth must be tls.RequireAndVerifyClientCert: raft peers must authenticate"))
		}
		if len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil && c.TLS.GetConfigForClient == nil {
			errs = append(errs, errors.New("TLS has no server certificate"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("transport: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// checkAdvertisable accepts host:port addresses that a peer can dial.
func checkAdvertisable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host; peers cannot dial it", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q is an unspecified address; peers cannot dial it", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%q needs a port in 1..65535", addr)
	}
	return nil
}
