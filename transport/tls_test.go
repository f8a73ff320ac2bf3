package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	pem  []byte
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, pem: pemBlock("CERTIFICATE", der)}
}

// issue signs a node certificate valid for 127.0.0.1, for both TLS roles.
func (ca *testCA) issue(t testing.TB, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", keyDER)
}

// keyPair is a node certificate from ca as a tls.Certificate.
func (ca *testCA) keyPair(t *testing.T, name string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, name)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// mutualTLS writes a node certificate from ca to PEM files and loads them
// with MutualTLS, as node/ will.
func (ca *testCA) mutualTLS(t testing.TB, name string) (server, client *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := ca.issue(t, name)
	files := map[string][]byte{"node.pem": certPEM, "node-key.pem": keyPEM, "ca.pem": ca.pem}
	for file, data := range files {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	server, client, err := MutualTLS(filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem"), filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatalf("MutualTLS: %v", err)
	}
	return server, client
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestMutualTLS_ClusterPeersConnect(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	serverA, clientA := ca.mutualTLS(t, "n1")
	serverB, clientB := ca.mutualTLS(t, "n2")
	a := listen(t, Config{TLS: serverA, ClientTLS: clientA})
	b := listen(t, Config{TLS: serverB, ClientTLS: clientB})

	dialed, accepted := connect(t, a, b)
	send(t, dialed, accepted, "vote for me")
	send(t, accepted, dialed, "granted")

	state := dialed.(*tls.Conn).ConnectionState()
	if state.Version != tls.VersionTLS13 {
		t.Errorf("negotiated TLS version %x, want TLS 1.3", state.Version)
	}
	peer := accepted.(*tls.Conn).ConnectionState().PeerCertificates
	if len(peer) == 0 || peer[0].Subject.CommonName != "n1" {
		t.Errorf("server saw client certificate %v, want n1's", peer)
	}
}

func TestMutualTLS_RefusesPeerWithoutClusterCertificate(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	server, _ := ca.mutualTLS(t, "n1")
	rogue := newTestCA(t, "rogue CA")

	tests := []struct {
		name  string
		certs []tls.Certificate
	}{
		{"certificate from another CA", []tls.Certificate{rogue.keyPair(t, "intruder")}},
		{"no certificate", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The intruder trusts the cluster CA, so only the server can refuse.
			intruder := &tls.Config{Certificates: tt.certs, RootCAs: ca.pool, MinVersion: tls.VersionTLS13}
			l := listen(t, Config{TLS: server, ClientTLS: intruder})
			accepted := make(chan error, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					// raft's first read runs the handshake; so does ours.
					_, err = read(c, 1, 5*time.Second)
					c.Close()
				}
				accepted <- err
			}()

			// With TLS 1.3 the client's handshake completes before the server
			// has checked the client's certificate; the refusal arrives as an
			// alert on the client's first read, if not at Dial already.
			conn, err := l.Dial(raft.ServerAddress(l.Addr().String()), 5*time.Second)
			if err == nil {
				write(conn, "x")
				_, err = read(conn, 1, 5*time.Second)
				conn.Close()
			}
			if err == nil {
				t.Error("intruder exchanged data with the cluster")
			}
			if err := <-accepted; err == nil {
				t.Error("server accepted data from the intruder")
			}
		})
	}
}

func TestMutualTLS_DialRefusesServerFromAnotherCA(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	_, client := ca.mutualTLS(t, "n1")
	rogue := newTestCA(t, "rogue CA")
	rogueServer, rogueClient := rogue.mutualTLS(t, "impostor")
	impostor := listen(t, Config{TLS: rogueServer, ClientTLS: rogueClient})
	go func() {
		if c, err := impostor.Accept(); err == nil {
			read(c, 1, 5*time.Second)
			c.Close()
		}
	}()

	a := listen(t, Config{TLS: rogueServer, ClientTLS: client})
	if conn, err := a.Dial(raft.ServerAddress(impostor.Addr().String()), 5*time.Second); err == nil {
		conn.Close()
		t.Fatal("Dial to a server with a certificate from another CA succeeded")
	}
}

func TestMutualTLS_RejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "cluster CA")
	certPEM, keyPEM := ca.issue(t, "n1")
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cert, key := write("cert.pem", certPEM), write("key.pem", keyPEM)
	notPEM := write("garbage.pem", []byte("not a certificate"))

	if _, _, err := MutualTLS(cert, key, notPEM); err == nil {
		t.Error("MutualTLS accepted a CA file without certificates")
	}
	if _, _, err := MutualTLS(cert, notPEM, write("ca.pem", ca.pem)); err == nil {
		t.Error("MutualTLS accepted a broken key file")
	}
	if _, _, err := MutualTLS(cert, key, filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("MutualTLS accepted a missing CA file")
	}
}
