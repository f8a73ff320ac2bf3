package transport

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestConfig_Validate(t *testing.T) {
	mtls := &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, Certificates: []tls.Certificate{{}}}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty means valid
	}{
		{"plain", Config{BindAddr: "127.0.0.1:0"}, ""},
		{"advertise host name", Config{BindAddr: "0.0.0.0:5001", AdvertiseAddr: "n1.internal:5001"}, ""},
		{"mutual tls", Config{BindAddr: "127.0.0.1:0", TLS: mtls, ClientTLS: &tls.Config{}}, ""},
		{"no bind", Config{}, "BindAddr is required"},
		{"bind without port", Config{BindAddr: "127.0.0.1"}, "BindAddr"},
		{"advertise unspecified v4", Config{BindAddr: "0.0.0.0:0", AdvertiseAddr: "0.0.0.0:5000"}, "unspecified"},
		{"advertise unspecified v6", Config{BindAddr: ":0", AdvertiseAddr: "[::]:5000"}, "unspecified"},
		{"advertise without port", Config{BindAddr: ":0", AdvertiseAddr: "10.0.0.1"}, "not host:port"},
		{"advertise without host", Config{BindAddr: ":0", AdvertiseAddr: ":5000"}, "no host"},
		{"advertise port zero", Config{BindAddr: ":0", AdvertiseAddr: "10.0.0.1:0"}, "port"},
		{"advertise port out of range", Config{BindAddr: ":0", AdvertiseAddr: "10.0.0.1:70000"}, "port"},
		{"server tls only", Config{BindAddr: ":0", TLS: mtls}, "set together"},
		{"client tls only", Config{BindAddr: ":0", ClientTLS: &tls.Config{}}, "set together"},
		{"tls without client auth", Config{BindAddr: ":0", TLS: &tls.Config{Certificates: mtls.Certificates}, ClientTLS: &tls.Config{}}, "RequireAndVerifyClientCert"},
		{"tls without certificate", Config{BindAddr: ":0", TLS: &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}, ClientTLS: &tls.Config{}}, "no server certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfig_ValidateNamesEveryBrokenRule(t *testing.T) {
	err := Config{AdvertiseAddr: "0.0.0.0:1", ClientTLS: &tls.Config{}}.Validate()
	for _, want := range []string{"BindAddr", "AdvertiseAddr", "set together"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}
