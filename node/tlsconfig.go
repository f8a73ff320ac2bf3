package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
)

// HTTPTLS loads the HTTP API's certificate and key. The same certificate serves clients
// and authenticates this node when it calls other members (it needs both the serverAuth
// and clientAuth key usages, as `stockctl certs` makes them).
//
// With caFile, the API requires client certificates signed by that CA (clients as well as
// members then need one), and calls to other members trust only that CA. Without it, the
// API takes any client, and calls to other members trust the system's roots.
func HTTPTLS(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("load HTTP certificate: %w", err)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("read HTTP CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("no PEM certificate in HTTP CA file %s", caFile)
		}
		server.ClientCAs, server.ClientAuth = pool, tls.RequireAndVerifyClientCert
		client.RootCAs = pool
	}
	return server, client, nil
}

// scheme is how this node speaks HTTP to other members: https when its API does, since
// every member of a cluster is configured alike.
func (n *Node) scheme() string {
	if n.cfg.HTTPTLS != nil {
		return "https://"
	}
	return "http://"
}

// peerRequest builds a node-to-node call (join, member status, a strong read for a watch)
// with this node's scheme and its internal credential. Forwarded client requests are built
// in forward, with the client's own credential instead.
func (n *Node) peerRequest(ctx context.Context, method, addr, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, n.scheme()+addr+path, body)
	if err != nil {
		return nil, err
	}
	n.setInternalAuth(req)
	return req, nil
}
