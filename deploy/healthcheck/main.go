// Command healthcheck is the container image's HEALTHCHECK: the final image has no shell
// and no curl, so this static binary asks the local node's /healthz and exits 0 when it
// answers 200, 1 otherwise.
//
// It finds the node from STOCKD_HTTP_ADDR (a wildcard host means the loopback address), or
// from the first argument, a URL such as http://127.0.0.1:4001/healthz.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	url := healthURL(os.Args[1:], os.Getenv("STOCKD_HTTP_ADDR"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := check(ctx, url); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

// healthURL is the first argument if there is one, else /healthz on the address stockd
// listens on.
func healthURL(args []string, httpAddr string) string {
	if len(args) > 0 {
		return args[0]
	}
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		host, port = "", "4001"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz"
}

func check(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
