package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config is everything one member needs. Start from DefaultConfig.
type Config struct {
	// ID names the member in the raft configuration; it must stay the same across restarts.
	ID string
	// DataDir holds raft.db (log and stable store), state.db (the fsm) and snapshots/.
	// It is created if missing.
	DataDir string
	// HTTPAddr is where the API listens, e.g. "127.0.0.1:4001" (port 0 picks one).
	HTTPAddr string
	// HTTPAdvertise is the API address other members and clients use; default: the
	// address HTTPAddr bound to.
	HTTPAdvertise string
	// RaftAddr is where raft listens; RaftAdvertise what peers dial (default: bound address).
	RaftAddr      string
	RaftAdvertise string

	// Bootstrap makes this node the first member of a new cluster, once: a node with
	// existing raft state ignores it, so the same command line restarts it.
	Bootstrap bool
	// Join lists HTTP addresses of existing members; a new node asks them to add it. A
	// node with existing raft state does not ask again.
	Join []string
	// JoinAsNonvoter joins as a learner that receives the log but does not vote.
	JoinAsNonvoter bool

	// Raft timing. Defaults suit a LAN: elections after about a second of silence.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// MaxAppendEntries is the most entries per AppendEntries RPC and per fsm batch.
	MaxAppendEntries int
	// SnapshotThreshold, SnapshotInterval, TrailingLogs: see raft.Config. TrailingLogs must
	// stay above the entries that pile up while a snapshot is sent to a lagging follower.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64

	// MaxInflight bounds proposals waiting for commit on the leader; past it, mutations get
	// 429 overloaded at once.
	MaxInflight int
	// RequestTimeout bounds a request whose client set no deadline.
	RequestTimeout time.Duration
	// ExpireInterval is how often the leader releases expired holds.
	ExpireInterval time.Duration
	// DedupWindow and LedgerPerSKU shape a new state file (see fsm.Options); an existing one
	// keeps the values it was created with.
	DedupWindow  time.Duration
	LedgerPerSKU uint64

	// RaftTLS and RaftClientTLS switch on mTLS between nodes (see transport.MutualTLS).
	RaftTLS, RaftClientTLS *tls.Config
	// RaftDial and RaftWrapListener are the transport's fault-injection seam (tests only).
	RaftDial         func(ctx context.Context, network, addr string) (net.Conn, error)
	RaftWrapListener func(net.Listener) net.Listener

	// UI, when set, is mounted at /ui/. It receives the full path (/ui/...); wrap it in
	// http.StripPrefix if it wants paths relative to /ui/.
	UI http.Handler

	// Logger receives the node's and raft's logs. Default: hclog to stderr at info.
	Logger hclog.Logger
	// OnFatal is called when the state machine cannot go on (a storage failure inside
	// apply): the replica must stop rather than diverge. Default: log and os.Exit(2).
	OnFatal func(error)
}

// DefaultConfig gives the defaults for everything but the identity and addresses.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		MaxAppendEntries:   512,
		SnapshotThreshold:  16384,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       20480,
		MaxInflight:        16384,
		RequestTimeout:     10 * time.Second,
		ExpireInterval:     time.Second,
		DedupWindow:        15 * time.Minute,
		LedgerPerSKU:       100_000,
	}
}

// Validate names every broken rule at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ID == "" {
		bad("id is required")
	}
	if c.DataDir == "" {
		bad("data dir is required")
	}
	for name, addr := range map[string]string{"http addr": c.HTTPAddr, "raft addr": c.RaftAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("%s %q: %v", name, addr, err)
		}
	}
	if c.Bootstrap && len(c.Join) > 0 {
		bad("bootstrap and join exclude each other: bootstrap starts a new cluster, join enters an existing one")
	}
	if c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond {
		bad("heartbeat and election timeouts must be at least 5ms")
	}
	if c.LeaderLeaseTimeout <= 0 || c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("leader lease timeout must be positive and at most the heartbeat timeout")
	}
	if c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024 {
		bad("max append entries must be 1..1024")
	}
	if c.MaxInflight < 1 {
		bad("max inflight must be at least 1")
	}
	if c.RequestTimeout <= 0 || c.ExpireInterval <= 0 {
		bad("request timeout and expire interval must be positive")
	}
	if c.SnapshotThreshold == 0 || c.SnapshotInterval <= 0 {
		bad("snapshot threshold and interval must be positive")
	}
	if (c.RaftTLS == nil) != (c.RaftClientTLS == nil) {
		bad("raft TLS needs both the server and the client config")
	}
	return errors.Join(errs...)
}
