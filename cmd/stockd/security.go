package main

import (
	"fmt"

	"github.com/flashstock/flashstock/node"
)

// applySecurity loads the files the HTTP API security flags name: the API's TLS files and
// the token file.
func applySecurity(cfg *node.Config, o *options) error {
	if o.httpTLSCert != "" {
		server, client, err := node.HTTPTLS(o.httpTLSCert, o.httpTLSKey, o.httpTLSCA)
		if err != nil {
			return fmt.Errorf("--http-tls-cert/--http-tls-key/--http-tls-ca: %w", err)
		}
		cfg.HTTPTLS, cfg.HTTPClientTLS = server, client
	}
	if o.tokenFile != "" {
		tokens, err := node.LoadTokens(o.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		cfg.Auth = tokens
		cfg.PublicReads = o.authReads == "public"
	}
	return nil
}
