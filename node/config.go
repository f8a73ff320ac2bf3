package node

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
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
	// JoinAsNonvoter joins as a nonvoter that receives the log but does not vote.
	JoinAsNonvoter bool
	// JoinTimeout bounds how long a new node joining through Join waits, in New, for a
	// member to say what kind of cluster it joins (one raft group or several: a
	// multi-group cluster's joiner must open a meta group replica before it serves). Nodes
	// may start in any order, so the wait covers a cluster that comes up after its joiner;
	// past it New fails with a *JoinError (0: no bound but New's context).
	JoinTimeout time.Duration
	// Groups is the number of data groups of a cluster this node bootstraps (0 counts as
	// 1). 1 is the single-group cluster; more creates the meta group (0) and data groups
	// 1..Groups (docs/DESIGN.md, "Many raft groups"). A data dir that holds state must be
	// started with the number it was created with, so the same command line restarts it.
	Groups int

	// Raft timing (see DefaultConfig for why each default). A follower that has heard
	// nothing from the leader for HeartbeatTimeout may start an election; a candidate that
	// did not win retries after ElectionTimeout (at least HeartbeatTimeout); a leader that
	// has not heard from a quorum for LeaderLeaseTimeout (at most HeartbeatTimeout) steps
	// down.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// LogStore is the kind of raft log and stable store: LogStoreBolt ("bolt", the default,
	// also when empty) or LogStoreWAL ("wal"). A data dir keeps the kind it was created
	// with; see logstore.go.
	LogStore string
	// WALSegmentSize is raft-wal's segment file size in bytes (0: raft-wal's 64 MiB). The
	// wal gives disk space back, and stops serving compacted entries, a whole segment at a
	// time, so smaller segments follow log compaction more closely.
	WALSegmentSize int
	// MaxAppendEntries is the most entries per AppendEntries RPC and per fsm batch.
	MaxAppendEntries int
	// SnapshotThreshold, SnapshotInterval, TrailingLogs: see raft.Config. TrailingLogs must
	// stay above the entries that pile up while a snapshot is sent to a lagging follower.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64

	// MaxInflight bounds the clients' commands queued or in flight on the leader (a batch
	// deduction counts each item); past it, mutations get 429 overloaded at once.
	MaxInflight int
	// RequestTimeout bounds a request whose client set no deadline.
	RequestTimeout time.Duration
	// ExpireInterval is how often the leader releases expired holds.
	ExpireInterval time.Duration
	// DedupWindow and LedgerMax shape a new state file (see fsm.Options); an existing one
	// keeps the values it was created with.
	DedupWindow time.Duration
	LedgerMax   uint64

	// RaftTLS and RaftClientTLS switch on mTLS between nodes (see transport.MutualTLS).
	RaftTLS, RaftClientTLS *tls.Config
	// RaftDial and RaftWrapListener are the transport's fault-injection seam (tests only).
	RaftDial         func(ctx context.Context, network, addr string) (net.Conn, error)
	RaftWrapListener func(net.Listener) net.Listener

	// HTTPTLS, when set, serves the API over HTTPS; HTTPClientTLS is then how this node
	// calls other members (forwarding, join, member status), which it does over https. See
	// HTTPTLS (the function) for a pair made from PEM files.
	HTTPTLS, HTTPClientTLS *tls.Config

	// Auth, when set, requires bearer tokens with the roles of routeTable (routes.go); when
	// nil the API is open. Every member must be given the same tokens.
	Auth *Tokens
	// PublicReads lets reads (SKUs, orders, history, watch, cluster view, metrics, the UI)
	// through without a token while Auth is on.
	PublicReads bool
	// RateLimit is the requests per second each client may make to /v1/ on average
	// (0: unlimited); RateBurst how many at once (default: RateLimit rounded up). A client
	// is its token when it sent a valid one, else its IP address. A batch deduction counts
	// its items. Over the limit: 429 overloaded with Retry-After.
	RateLimit float64
	RateBurst int

	// EnablePprof serves net/http/pprof at /debug/pprof/ (admin role when Auth is on).
	EnablePprof bool
	// StockMetricsSKUs and StockMetricsTop opt into per-SKU stock gauges on /metrics: the
	// listed SKUs, and the StockMetricsTop SKUs with the most units sold. Both bound the
	// series count; per-SKU series for every SKU of a large catalogue would swamp Prometheus.
	StockMetricsSKUs []string
	StockMetricsTop  int

	// UI, when set, is mounted at /ui/ behind the same auth as reads. It receives the full
	// path (/ui/...); wrap it in http.StripPrefix if it wants paths relative to /ui/.
	UI http.Handler

	// DiskStallTimeout is how long one write to the raft log may take before the node
	// counts its disk as stalled: a stalled leader hands leadership over, and the node
	// answers /readyz with 503 until the write returns. 0 switches the watchdog off.
	DiskStallTimeout time.Duration
	// WrapLogStore, when set, wraps the raft log store (tests inject slow disks with it).
	WrapLogStore func(raft.LogStore) raft.LogStore

	// WallClock is the node's wall clock (default time.Now). Cluster time starts from a
	// majority's wall clocks, never this one alone (clusterclock.go); the faults build of
	// stockd shifts it to test that.
	WallClock func() time.Time

	// Logger receives the node's and raft's logs. Default: hclog to stderr at info.
	Logger hclog.Logger
	// OnFatal is called when the state machine cannot go on (a storage failure inside
	// apply): the replica must stop rather than diverge. Default: log and os.Exit(2).
	OnFatal func(error)

	// olderMetaBuild makes the node play a build from before the meta apply levels
	// (tests of a rolling upgrade): it reports no max_meta_level and so holds the meta
	// log's level at 0 as such a build would, leader or not.
	olderMetaBuild bool
	// olderDataBuild makes the node play a build from before the data apply levels: it
	// reports max_apply_level 0, so a data group's log above level 0 may not be given to
	// it, and a data group it leads stays at 0.
	olderDataBuild bool
}

// DefaultConfig gives the defaults for everything but the identity and addresses.
//
// The raft timing is chosen for failover in under half a second on a LAN (BENCHMARKS.md,
// "Failover"). In hashicorp/raft a follower refuses every pre-vote while it still names a
// leader, and it stops naming one only when its own heartbeat timer, re-armed at random
// in [HeartbeatTimeout, 2×HeartbeatTimeout), finds the leader silent for HeartbeatTimeout.
// So after a leader dies the first follower to notice is turned down by the other, and
// the new leader is elected when the second one notices: about 2.1×HeartbeatTimeout
// after the death at the median, about 3× at worst. 200ms gives ~0.42s. It must also
// stay well above the longest silence a busy follower shows (heartbeats queue behind
// appends on raft's main loop, see serialTransport): at saturation on the 2-core test
// machine 45ms at most, 163ms while other builds loaded it to 11. A silence past it
// costs an election, not safety. ElectionTimeout only paces a candidate's retry
// and must not be below HeartbeatTimeout. The lease equals HeartbeatTimeout, its
// maximum: a leader steps down only after the silence a follower would start an election
// for (reads never rely on the lease; they confirm leadership with a heartbeat round).
func DefaultConfig() Config {
	return Config{
		Groups:             1,
		HeartbeatTimeout:   200 * time.Millisecond,
		ElectionTimeout:    200 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		MaxAppendEntries:   512,
		SnapshotThreshold:  16384,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       20480,
		MaxInflight:        16384,
		RequestTimeout:     10 * time.Second,
		JoinTimeout:        2 * time.Minute,
		ExpireInterval:     time.Second,
		DedupWindow:        15 * time.Minute,
		LedgerMax:          2_000_000,
		DiskStallTimeout:   10 * time.Second,
	}
}

// raftConfig is the raft configuration the node runs with (its logger aside).
func (c Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.MaxAppendEntries = c.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	// The state file knows its own applied index (and is rebuilt when it cannot be trusted,
	// see openState): restoring the snapshot on every start would only throw that state
	// away and replay it.
	rc.NoSnapshotRestoreOnStart = true
	return rc
}
