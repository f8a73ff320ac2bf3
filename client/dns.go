package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// Resolver looks up a DNS name's addresses; *net.Resolver is one. Tests pass their own so
// that a name like "flashstock.test" stands for several loopback addresses.
type Resolver interface {
	LookupHost(ctx context.Context, host string) (addrs []string, err error)
}

// endpoint is one configured entry: an address, or a DNS name standing for several.
type endpoint struct {
	host, port string
	literal    bool // an IP address: nothing to resolve
}

func parseEndpoint(s string) (endpoint, error) {
	host, port, err := net.SplitHostPort(stripScheme(s))
	if err != nil {
		return endpoint{}, fmt.Errorf("endpoint %q: want host:port: %v", s, err)
	}
	if host == "" || port == "" {
		return endpoint{}, fmt.Errorf("endpoint %q: want host:port", s)
	}
	return endpoint{host: host, port: port, literal: net.ParseIP(host) != nil}, nil
}

// resolver turns the configured endpoints into node addresses. A name that fails to
// resolve keeps its last good answer, so a DNS hiccup never empties the node list.
type resolver struct {
	r     Resolver
	specs []endpoint
	names sync.Map // "ip:port" → the DNS name it came from, the TLS server name

	mu   sync.Mutex
	last map[int][]string // spec index → its last good addresses
}

func newResolver(cfg Config) *resolver {
	r := &resolver{r: cfg.Resolver, last: map[int][]string{}}
	for _, s := range cfg.Endpoints {
		ep, _ := parseEndpoint(s) // Validate has checked
		r.specs = append(r.specs, ep)
	}
	return r
}

// dynamic reports whether any endpoint is a DNS name, which needs re-resolving.
func (r *resolver) dynamic() bool {
	for _, s := range r.specs {
		if !s.literal {
			return true
		}
	}
	return false
}

// resolve returns the sorted, de-duplicated node addresses of every endpoint, and the
// errors of the names that did not resolve this time.
func (r *resolver) resolve(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	var errs []error
	for i, s := range r.specs {
		if s.literal {
			out = append(out, net.JoinHostPort(s.host, s.port))
			continue
		}
		hosts, err := r.r.LookupHost(ctx, s.host)
		if err == nil && len(hosts) == 0 {
			err = errors.New("no addresses")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve %s: %w", s.host, err))
			out = append(out, r.last[i]...)
			continue
		}
		addrs := make([]string, 0, len(hosts))
		for _, h := range hosts {
			a := net.JoinHostPort(h, s.port)
			r.names.Store(a, s.host)
			addrs = append(addrs, a)
		}
		r.last[i] = addrs
		out = append(out, addrs...)
	}
	slices.Sort(out)
	return slices.Compact(out), errors.Join(errs...)
}

// serverName is the name to verify a node's certificate against.
func (r *resolver) serverName(addr string) string {
	if n, ok := r.names.Load(addr); ok {
		return n.(string)
	}
	host, _, _ := net.SplitHostPort(addr)
	return host
}

// resolveLoop re-resolves the DNS endpoints until Close, so nodes added to or removed from
// the name's records join or leave the client's node list.
func (c *Client) resolveLoop() {
	t := time.NewTicker(c.cfg.ResolveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.DialTimeout+c.cfg.HealthTimeout)
		addrs, _ := c.dns.resolve(ctx)
		cancel()
		if len(addrs) > 0 {
			c.pool.setEndpoints(addrs)
		}
	}
}
