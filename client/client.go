package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config says where the cluster is and how patient to be. Only Endpoints is required; every
// zero duration or count takes the default named beside it.
type Config struct {
	// Endpoints are the nodes' HTTP API addresses, "host:port" (an "http://" or "https://"
	// prefix is allowed). A host that is not an IP literal is a DNS name: it is resolved to
	// all its A/AAAA records, one node each, and re-resolved every ResolveInterval, so one
	// name can stand for the whole cluster.
	Endpoints []string
	// TLS, when set, makes the client speak HTTPS with this configuration. For nodes found
	// through a DNS name the name is the TLS server name, unless TLS.ServerName is set.
	TLS *tls.Config
	// Token, when set, is sent as "Authorization: Bearer <Token>" on every request.
	Token string

	// Balancer spreads stale reads and watches over healthy nodes. Default: RoundRobin().
	Balancer Balancer
	// Weights gives nodes (by "host:port" as resolved) a weight for WeightedRoundRobin;
	// unlisted nodes weigh 1.
	Weights map[string]int

	// Resolver resolves DNS endpoints. Default: net.DefaultResolver.
	Resolver Resolver
	// ResolveInterval is how often DNS endpoints are resolved again. Default 30s.
	ResolveInterval time.Duration

	// HealthInterval is how often each node is asked whether it is up (and whether it
	// leads). A node that fails a check or a request is skipped until a check succeeds;
	// checks of a node that is down back off exponentially up to 8×HealthInterval.
	// Default 1s.
	HealthInterval time.Duration
	// HealthTimeout bounds one health check. Default 1s.
	HealthTimeout time.Duration

	// DialTimeout bounds connecting to a node. Default 2s.
	DialTimeout time.Duration
	// AttemptTimeout bounds the wait for one attempt's answer headers; past it the attempt
	// counts as failed (outcome unknown) and the call is retried elsewhere. It must exceed
	// the server's request timeout (10s by default). Default 15s.
	AttemptTimeout time.Duration
	// MaxAttempts bounds the tries of one call, the first included; the context bounds them
	// too. Default 16; negative means only the context bounds them.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the exponential backoff with full jitter between
	// tries: the n-th wait is uniform in [0, min(BackoffMax, BackoffBase·2ⁿ)). Defaults
	// 25ms and 1s. A 429's Retry-After is honoured instead.
	BackoffBase time.Duration
	BackoffMax  time.Duration

	// DisableBatching sends every Deduct as its own request. By default concurrent Deduct
	// calls are batched: those made while earlier batches are in flight leave together in
	// one request, each keeping its own request_id, retries and answer.
	DisableBatching bool

	// Transport, when set, carries every request instead of the client's own keep-alive
	// pool (TLS and DialTimeout then are its business). For instrumentation and proxies.
	Transport http.RoundTripper
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ResolveInterval, 30*time.Second)
	def(&c.HealthInterval, time.Second)
	def(&c.HealthTimeout, time.Second)
	def(&c.DialTimeout, 2*time.Second)
	def(&c.AttemptTimeout, 15*time.Second)
	def(&c.BackoffBase, 25*time.Millisecond)
	def(&c.BackoffMax, time.Second)
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 16
	}
	if c.Balancer == nil {
		c.Balancer = RoundRobin()
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	return c
}

// Validate names every broken rule at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Endpoints) == 0 {
		errs = append(errs, errors.New("at least one endpoint is required"))
	}
	for _, ep := range c.Endpoints {
		if _, err := parseEndpoint(ep); err != nil {
			errs = append(errs, err)
		}
	}
	for addr, w := range c.Weights {
		if w < 0 {
			errs = append(errs, fmt.Errorf("weight of %s must not be negative, got %d", addr, w))
		}
	}
	if c.BackoffMax > 0 && c.BackoffBase > c.BackoffMax {
		errs = append(errs, fmt.Errorf("backoff base %v exceeds backoff max %v", c.BackoffBase, c.BackoffMax))
	}
	return errors.Join(errs...)
}

// Client talks to one flashstock cluster. It is safe for concurrent use; share one.
type Client struct {
	cfg    Config
	http   *http.Client
	own    *http.Transport // nil when Config.Transport is the caller's
	scheme string          // "http://" or "https://"
	auth   string          // the Authorization header value, or ""

	pool   *pool // the nodes, and group 1 (every SKU in a single-group cluster)
	router *router
	dns    *resolver

	ctx    context.Context // ends with Close: stops every background goroutine
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // guards closed, so no goroutine starts once Close waits
	closed bool
}

// New makes a client and starts its health checks. It resolves DNS endpoints once before
// returning (an error only if no endpoint resolves) but does not wait for any node.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, scheme: "http://"}
	if cfg.TLS != nil {
		c.scheme = "https://"
	}
	if cfg.Token != "" {
		c.auth = "Bearer " + cfg.Token
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.dns = newResolver(cfg)
	c.http = &http.Client{Transport: cfg.Transport}
	if cfg.Transport == nil {
		c.own = c.newTransport()
		c.http.Transport = c.own
	}
	c.pool = newPool(c)
	c.router = newRouter(c)

	ctx, cancel := context.WithTimeout(c.ctx, cfg.DialTimeout+cfg.HealthTimeout)
	addrs, err := c.dns.resolve(ctx)
	cancel()
	if len(addrs) == 0 {
		c.cancel()
		return nil, fmt.Errorf("client endpoints: %w", err)
	}
	c.pool.setEndpoints(addrs)
	if c.dns.dynamic() {
		c.spawn(c.resolveLoop)
	}
	if !cfg.DisableBatching {
		c.pool.batcher = newBatcher(c, c.pool)
		c.spawn(c.pool.batcher.run)
	}
	return c, nil
}

// newTransport is the one keep-alive pool of the client: every request reuses idle
// connections, and a hot client keeps enough of them per node for hundreds of concurrent
// callers instead of dialing anew.
func (c *Client) newTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: c.cfg.DialTimeout, KeepAlive: 15 * time.Second}
	tr := &http.Transport{
		Proxy:                 nil, // nodes talk to each other directly; so do clients
		DialContext:           dialer.DialContext,
		MaxIdleConns:          0, // no limit overall; per host below
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: c.cfg.AttemptTimeout,
		ExpectContinueTimeout: time.Second,
	}
	if c.cfg.TLS != nil {
		// A custom TLS dial, so a node found through a DNS name is verified against that
		// name though it is dialed by IP.
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := c.cfg.TLS.Clone()
			if tc.ServerName == "" {
				tc.ServerName = c.dns.serverName(addr)
			}
			conn := tls.Client(raw, tc)
			if err := conn.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return conn, nil
		}
	}
	return tr
}

// spawn runs fn on a goroutine that Close waits for; after Close it runs nothing.
func (c *Client) spawn(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
	return true
}

// Close stops the health checks, DNS re-resolution and watches, waits for them, and closes
// idle connections. Calls made after Close fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	if c.own != nil {
		c.own.CloseIdleConnections()
	}
	return nil
}

// EndpointState is one node as the client currently sees it.
type EndpointState struct {
	Addr        string
	Healthy     bool
	Leader      bool // the client believes it leads
	Outstanding int64
}

// Endpoints lists the nodes the client knows, sorted by address: the configured ones (DNS
// names expanded) and a leader learned from a hint outside them.
func (c *Client) Endpoints() []EndpointState {
	leader := c.pool.leader.Load()
	var out []EndpointState
	for _, e := range c.pool.list() {
		out = append(out, EndpointState{Addr: e.addr, Healthy: e.Healthy(), Leader: e == leader, Outstanding: e.Outstanding()})
	}
	return out
}

// Leader is the HTTP address of the node the client believes leads, or "".
func (c *Client) Leader() string {
	if l := c.pool.leader.Load(); l != nil {
		return l.addr
	}
	return ""
}

// stripScheme removes an optional http:// or https:// prefix and a trailing slash.
func stripScheme(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "http://"), "https://")
	return strings.TrimSuffix(s, "/")
}
