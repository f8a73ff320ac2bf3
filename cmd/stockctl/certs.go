package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const certsHelp = `usage: stockctl certs --out DIR [--hosts H1,H2] [--days N] NAME...

Makes a development CA and a certificate per NAME (a node, or a client such as "ops"), for
the HTTP API (stockd --http-tls-*) and raft (stockd --raft-tls-*). Each certificate is
valid for 127.0.0.1, localhost and the --hosts (IPs or DNS names), for both serverAuth and
clientAuth: a node presents the same one to clients and to the members it calls.

It writes DIR/ca.pem and DIR/ca-key.pem (reused when present, so later nodes get the same
CA) and DIR/NAME.pem, DIR/NAME-key.pem. Keys are written 0600. For production, use your
own PKI.

examples:
  stockctl certs --out certs n1 n2 n3
  stockd ... --http-tls-cert certs/n1.pem --http-tls-key certs/n1-key.pem --http-tls-ca certs/ca.pem
  stockctl certs --out certs ops && stockctl cluster status --cacert certs/ca.pem --cert certs/ops.pem --key certs/ops-key.pem

flags:`

func runCerts(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stockctl certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write into (required; created if missing)")
	hosts := fs.String("hosts", "", "comma list of extra IPs and DNS names every certificate is valid for")
	days := fs.Int("days", 365, "validity of the certificates in days")
	fs.Usage = func() {
		fmt.Fprintln(stdout, certsHelp)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	// Names and flags in any order.
	var names []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *out == "" || len(names) == 0 || *days < 1 {
		fmt.Fprintln(stderr, "stockctl certs: --out DIR and at least one NAME are required (and --days at least 1)\nRun 'stockctl certs --help' for usage.")
		return errUsage
	}
	for _, n := range names {
		if n == "ca" || strings.ContainsAny(n, `/\`) || strings.HasPrefix(n, ".") {
			fmt.Fprintf(stderr, "stockctl certs: %q cannot be a certificate name\n", n)
			return errUsage
		}
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	validFor := time.Duration(*days) * 24 * time.Hour
	ca, caKey, created, err := loadOrCreateCA(*out, validFor)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "wrote %s (the CA; keep ca-key.pem private)\n", filepath.Join(*out, "ca.pem"))
	}
	var ips []net.IP
	dns := []string{"localhost"}
	ips = append(ips, net.ParseIP("127.0.0.1"))
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	for _, name := range names {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: name, Organization: []string{"flashstock dev"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor),
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: ips, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("sign %s: %w", name, err)
		}
		if err := writePEM(filepath.Join(*out, name+".pem"), "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(*out, name+"-key.pem"), "EC PRIVATE KEY", kder, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s and %s\n", filepath.Join(*out, name+".pem"), filepath.Join(*out, name+"-key.pem"))
	}
	return nil
}

// loadOrCreateCA reuses DIR/ca.pem and DIR/ca-key.pem, or makes them.
func loadOrCreateCA(dir string, validFor time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, bool, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if certPEM, err := os.ReadFile(certPath); err == nil {
		keyPEM, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, nil, false, fmt.Errorf("%s exists but its key does not: %w", certPath, err)
		}
		cb, kb := pemBlock(certPEM), pemBlock(keyPEM)
		if cb == nil || kb == nil {
			return nil, nil, false, fmt.Errorf("%s or %s holds no PEM block", certPath, keyPath)
		}
		cert, err := x509.ParseCertificate(cb)
		if err != nil {
			return nil, nil, false, fmt.Errorf("%s: %w", certPath, err)
		}
		key, err := x509.ParseECPrivateKey(kb)
		if err != nil {
			return nil, nil, false, fmt.Errorf("%s: %w", keyPath, err)
		}
		return cert, key, false, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, false, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "flashstock dev CA", Organization: []string{"flashstock dev"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, false, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, false, err
	}
	if err := writePEM(keyPath, "EC PRIVATE KEY", kder, 0o600); err != nil {
		return nil, nil, false, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, false, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, true, err
}

func pemBlock(b []byte) []byte {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil
	}
	return blk.Bytes
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
