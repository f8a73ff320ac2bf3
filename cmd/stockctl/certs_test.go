package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCerts_MakesACAAndCertsThatVerify(t *testing.T) {
	dir := t.TempDir()
	var out, errw bytes.Buffer
	if code := run([]string{"certs", "--out", dir, "--hosts", "10.1.2.3,db1.example", "n1", "n2"}, &out, &errw); code != 0 {
		t.Fatalf("exit %d: %s", code, errw.String())
	}
	// A later call reuses the CA.
	if code := run([]string{"certs", "n3", "--out", dir}, &out, &errw); code != 0 {
		t.Fatalf("second call: exit %d: %s", code, errw.String())
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(pair.Certificate[0])
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: time.Now()}); err != nil {
				t.Errorf("%s for usage %v: %v", name, usage, err)
			}
		}
		if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if name != "n3" {
			if !leaf.IPAddresses[len(leaf.IPAddresses)-1].Equal(net.ParseIP("10.1.2.3")) || leaf.VerifyHostname("db1.example") != nil {
				t.Errorf("%s lacks the --hosts: %v %v", name, leaf.IPAddresses, leaf.DNSNames)
			}
		}
		if fi, _ := os.Stat(filepath.Join(dir, name+"-key.pem")); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s key mode %v", name, fi.Mode())
		}
	}
	if code := run([]string{"certs", "n1"}, &out, &errw); code != 2 {
		t.Fatalf("without --out: exit %d", code)
	}
}
