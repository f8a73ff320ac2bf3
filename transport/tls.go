package transport

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// MutualTLS builds the listener (server) and dialer (client) TLS configs of
// one node from PEM files: the node's certificate and key, and the cluster
// CA. Each side presents the node certificate and accepts only peers whose
// certificate the cluster CA signed; TLS 1.3 only.
//
// The one certificate serves both roles, so it needs the serverAuth and
// clientAuth extended key usages (or none), and a SAN for the host of the
// node's advertised raft address (an IP SAN when that host is an IP), because
// peers verify it against the address they dial. To verify one cluster-wide
// name instead, set client.ServerName and put that name in every certificate.
func MutualTLS(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: load node certificate: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: read cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("transport: no PEM certificate in cluster CA file %s", caFile)
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}
	return server, client, nil
}
