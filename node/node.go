package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/fsm"
	"github.com/flashstock/flashstock/transport"
)

// Node is one running cluster member.
type Node struct {
	cfg Config
	log hclog.Logger

	fsm      *fsm.Machine
	raft     *raft.Raft
	logStore raftStore // raft's log and stable store (logstore.go)
	trans    serialTransport
	snaps    raft.SnapshotStore
	disk     *watchedLogStore // times log writes for the metrics and the disk watchdog
	fence    *fencedLayer     // lets the disk watchdog cut this node off from raft

	httpSrv  *http.Server
	httpAddr string // advertised
	raftAddr string // advertised
	fwd      *http.Client

	members  atomic.Pointer[memberCache]
	inflight atomic.Int64 // log entries proposed and not yet resolved (a gauge)
	reads    *readIndex
	// readRounds counts the read rounds started (flashstock_read_rounds_total).
	readRounds atomic.Uint64
	coalesce   *coalescer
	watch      *hub
	hadState   bool // raft state existed at start: no bootstrap, no join
	// wasMember: this run has seen itself in the configuration; it never joins by itself
	// again (a removal must stick).
	wasMember atomic.Bool
	// leftCluster: the node stopped itself because it is no longer a member (Removed).
	leftCluster atomic.Bool

	metrics     *metrics
	limiter     *rateLimiter // nil: no rate limit
	hosts       atomic.Pointer[hostCache]
	leaderHint  atomic.Pointer[[]string] // withLeaderHint's header value for the last leader seen
	diskStalled atomic.Bool

	// readyTerm is the term whose first entry (our no-op) this leader has applied; strong
	// reads and the sold-out answers they give need it (docs/RAFT-NOTES.md, "Reads").
	readyTerm atomic.Uint64
	// clock is cluster time, stamped into commands under proposeMu (clusterclock.go).
	clock     clusterClock
	proposeMu sync.Mutex
	termReady chan struct{} // closed and replaced when readyTerm moves

	leaderMu    sync.Mutex
	leaderMoved chan struct{} // closed and replaced when raft's leader changes (leaderwait.go)

	ctx    context.Context // ends background loops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stopOnce sync.Once
	done     chan struct{}
	mu       sync.Mutex // guards termReady
}

// File names inside the data dir.
const (
	raftDBName   = "raft.db"
	logCacheSize = 4096
	stateDBName  = "state.db"
)

// New starts a member: opens its stores, starts raft and the HTTP API, and bootstraps or
// joins in the background. It returns once both listeners are up; use WaitLeader to wait
// for the cluster.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "stockd", Level: hclog.Info})
	}
	n := &Node{
		cfg:       cfg,
		log:       cfg.Logger.With("node", cfg.ID),
		watch:     newHub(),
		termReady: make(chan struct{}),
		done:      make(chan struct{}),

		leaderMoved: make(chan struct{}),
	}
	if n.cfg.OnFatal == nil {
		n.cfg.OnFatal = func(err error) {
			n.log.Error("fatal: stopping so this replica cannot diverge", "error", err)
			os.Exit(2)
		}
	}
	if cfg.RateLimit > 0 {
		n.limiter = newRateLimiter(cfg.RateLimit, cfg.RateBurst, time.Now)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.start(); err != nil {
		n.cancel()
		if n.raft != nil { // it runs on the stores closed below: stop it first
			_ = n.raft.Shutdown().Error()
		}
		n.closeResources()
		return nil, err
	}
	return n, nil
}

func (n *Node) start() error {
	n.fwd = &http.Client{Transport: &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second,
		DialContext:     (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig: n.cfg.HTTPClientTLS, // nil without HTTP TLS: then peers speak http
	}}
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	var err error
	if n.metrics, err = n.newMetrics(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	n.fsm, err = openState(n.cfg.DataDir, fsm.Options{DedupWindow: n.cfg.DedupWindow, LedgerMax: n.cfg.LedgerMax}, n.log)
	if err != nil {
		return err
	}
	n.logStore, err = openLogStore(n.cfg.DataDir, n.cfg.LogStore, n.cfg.Logger)
	if err != nil {
		return err
	}
	if err := removeTempSnapshots(n.cfg.DataDir, n.log); err != nil {
		return fmt.Errorf("remove incomplete snapshots: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 2, n.cfg.Logger.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	n.snaps = snaps
	if err := n.catchUpFromSnapshot(snaps); err != nil {
		return err
	}
	n.hadState, err = raft.HasExistingState(n.logStore, n.logStore, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	if !n.hadState && len(n.cfg.Join) > 0 {
		n.leaveAsWiped() // before raft starts: see there
	}
	if err := n.startRaft(snaps); err != nil {
		return err
	}
	if err := n.startHTTP(); err != nil {
		return err
	}
	n.log.Info("node started", "http", n.httpAddr, "raft", n.raftAddr, "data_dir", n.cfg.DataDir,
		"existing_state", n.hadState, "applied_index", n.fsm.AppliedIndex())
	if n.cfg.Bootstrap {
		n.bootstrap()
	}
	n.reads = newReadIndex(n)
	n.spawn(n.reads.run)
	n.coalesce = newCoalescer(n)
	n.spawn(n.coalesce.run)
	n.spawn(n.watchLeader)
	n.spawn(n.leadershipLoop)
	n.spawn(n.expireLoop)
	n.spawn(n.flushLoop)
	n.spawn(n.membershipLoop)
	n.spawn(n.levelLoop)
	if n.cfg.DiskStallTimeout > 0 {
		n.spawn(n.watchdogLoop)
	}
	return nil
}

// catchUpFromSnapshot brings a state that is behind the newest snapshot up to it: one set
// aside after a machine crash (see openState), or a crash between raft saving a received
// snapshot and the fsm adopting it. raft does not restore on start
// (NoSnapshotRestoreOnStart: the state file normally is ahead of every snapshot), and the
// log before the snapshot may be gone, so the state must not stay behind it.
func (n *Node) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	defer rc.Close()
	snapApplied, err := fsm.SnapshotAppliedIndex(rc)
	if err != nil || snapApplied <= n.fsm.AppliedIndex() {
		return err
	}
	n.log.Warn("state is behind the latest snapshot; restoring it", "state_index", n.fsm.AppliedIndex(), "snapshot_index", snapApplied)
	_, rc2, err := snaps.Open(list[0].ID)
	if err != nil {
		return err
	}
	defer rc2.Close()
	return n.fsm.Restore(rc2)
}

func (n *Node) startRaft(snaps raft.SnapshotStore) error {
	layer, err := transport.Listen(transport.Config{
		BindAddr: n.cfg.RaftAddr, AdvertiseAddr: n.cfg.RaftAdvertise,
		TLS: n.cfg.RaftTLS, ClientTLS: n.cfg.RaftClientTLS,
		Dial: n.cfg.RaftDial, WrapListener: n.cfg.RaftWrapListener,
	})
	if err != nil {
		return fmt.Errorf("raft listener: %w", err)
	}
	n.raftAddr = layer.Addr().String()
	n.fence = newFencedLayer(layer)
	n.trans = serialTransport{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: n.fence, MaxPool: 3, Timeout: 10 * time.Second, Logger: n.cfg.Logger.Named("raft-net"),
	}), newAcks()}
	rc := n.cfg.raftConfig()
	rc.Logger = n.cfg.Logger.Named("raft").With("node", n.cfg.ID)
	sm := timedFSM{&stateMachine{m: n.fsm, fatal: n.cfg.OnFatal, applied: n.afterApply, restored: n.watch.notifyAll}, n.metrics}
	var inner raft.LogStore = n.logStore
	if n.cfg.WrapLogStore != nil {
		inner = n.cfg.WrapLogStore(inner)
	}
	n.disk = newWatchedLogStore(n, inner)
	// The cache keeps the newest entries in memory, so replication to followers does not
	// read back from disk what the leader has just written.
	logs, err := raft.NewLogCache(logCacheSize, n.disk)
	if err != nil {
		return err
	}
	n.raft, err = raft.NewRaft(rc, sm, logs, n.logStore, snaps, n.trans)
	if err != nil {
		n.trans.Close()
		return fmt.Errorf("start raft: %w", err)
	}
	return nil
}

func (n *Node) startHTTP() error {
	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	n.httpAddr = n.cfg.HTTPAdvertise
	if n.httpAddr == "" {
		n.httpAddr = ln.Addr().String()
	}
	n.httpSrv = &http.Server{
		Handler:           n.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return n.ctx },
	}
	serve := n.httpSrv.Serve
	if n.cfg.HTTPTLS != nil {
		n.httpSrv.TLSConfig = n.cfg.HTTPTLS.Clone()
		serve = func(ln net.Listener) error { return n.httpSrv.ServeTLS(ln, "", "") }
	}
	n.spawn(func() {
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "error", err)
		}
	})
	return nil
}

// bootstrap makes this node the single voter of a new cluster, unless raft state exists.
func (n *Node) bootstrap() {
	if n.hadState {
		n.log.Info("existing raft state: not bootstrapping again")
		return
	}
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		ID: raft.ServerID(n.cfg.ID), Address: raft.ServerAddress(n.raftAddr), Suffrage: raft.Voter,
	}}}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		n.log.Error("bootstrap failed", "error", err)
		return
	}
	n.log.Info("bootstrapped a new cluster")
}

func (n *Node) spawn(fn func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

// every runs fn each interval until the node stops or fn returns false: the shape of the
// node's background loops (state flush, hold expiry, disk watchdog).
func (n *Node) every(interval time.Duration, fn func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if !fn() {
			return
		}
	}
}

// afterApply runs on the FSM goroutine after each applied batch; it must not block.
func (n *Node) afterApply(entries []fsm.Entry, results []fsm.Result) {
	n.clock.observe(n.fsm.LogTime(), time.Now())
	n.publish(entries, results)
}

// HasState reports whether dataDir already holds a node's raft log, of either kind: a node
// started on it rejoins its cluster from that state and ignores bootstrap and join.
func HasState(dataDir string) bool {
	kind, err := DetectLogStore(dataDir)
	return kind != "" || err != nil // both kinds (an interrupted migration) is state too
}

// ID is the member's id.
func (n *Node) ID() string { return n.cfg.ID }

// HTTPAddr is the advertised HTTP API address.
func (n *Node) HTTPAddr() string { return n.httpAddr }

// RaftAddr is the advertised raft address.
func (n *Node) RaftAddr() string { return n.raftAddr }

// Done is closed when the node has stopped, by Shutdown or on its own (removed from the
// cluster).
func (n *Node) Done() <-chan struct{} { return n.done }

// Removed reports whether the node stopped itself because it was removed from the
// cluster. Starting it again would not make it a member again (a removal sticks), so a
// supervisor should not restart it; stockd exits with its own code for this.
func (n *Node) Removed() bool { return n.leftCluster.Load() }

// IsLeader reports this node's own belief; only a strong read proves it.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// WaitLeader waits until this node knows a leader and returns its id.
func (n *Node) WaitLeader(ctx context.Context) (string, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if _, id := n.raft.LeaderWithID(); id != "" {
			return string(id), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for leader: %w", ctx.Err())
		case <-n.done:
			return "", errors.New("wait for leader: node stopped")
		case <-t.C:
		}
	}
}

// Shutdown stops the node gracefully: a leader hands leadership to another voter first, so
// the cluster does not wait out an election timeout; in-flight requests finish or end with
// ctx.
func (n *Node) Shutdown(ctx context.Context) error {
	var err error
	n.stopOnce.Do(func() {
		if n.raft.State() == raft.Leader && n.voters() > 1 {
			n.log.Info("handing leadership over before shutdown")
			if terr := waitFuture(ctx, n.raft.LeadershipTransfer()); terr != nil {
				n.log.Warn("leadership transfer failed; shutting down anyway", "error", terr)
			}
		}
		if serr := n.httpSrv.Shutdown(ctx); serr != nil {
			n.httpSrv.Close()
		}
		err = n.stop()
	})
	return err
}

// Kill stops the node at once, without handing leadership over or draining requests: the
// closest an in-process test gets to kill -9.
func (n *Node) Kill() {
	n.stopOnce.Do(func() {
		n.httpSrv.Close()
		_ = n.stop()
	})
}

func (n *Node) stop() error {
	n.cancel()
	var errs []error
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
	}
	n.wg.Wait()
	errs = append(errs, n.closeResources())
	close(n.done)
	n.log.Info("node stopped")
	return errors.Join(errs...)
}

func (n *Node) closeResources() error {
	if n.metrics != nil {
		n.metrics.detachRaft()
	}
	var errs []error
	if n.trans.NetworkTransport != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.logStore != nil {
		errs = append(errs, n.logStore.Close())
	}
	if n.fsm != nil {
		errs = append(errs, closeState(n.fsm, n.cfg.DataDir))
	}
	return errors.Join(errs...)
}

func (n *Node) voters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	v := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			v++
		}
	}
	return v
}

// waitFuture waits for a raft future, bounded by ctx.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
