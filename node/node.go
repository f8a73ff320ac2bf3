package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
	"github.com/flashstock/flashstock/placement/meta"
	"github.com/flashstock/flashstock/transport"
)

// Node is one stockd process: the HTTP server and its routes, auth, rate limits, the
// forwarding client, the metrics registry and the raft listener (a transport.Mux) that
// every raft group it hosts shares. The groups are Groups, held by id. Handlers reach the
// group a request acts on through groupFor; the cluster's own business (membership,
// leadership transfer, the cluster view, readiness) is clusterGroup's.
type Node struct {
	// cluster is group 1 of a single-group cluster, whose raft configuration is the
	// cluster's membership; nil in a multi-group cluster, whose group 1 is an ordinary
	// data group hosted where the placement says (set before the HTTP server serves).
	cluster *Group

	cfg Config
	log hclog.Logger

	mux      *transport.Mux
	httpSrv  *http.Server
	httpAddr string // advertised
	raftAddr string // advertised; every group's raft records it
	fwd      *http.Client

	metrics *metrics     // the process's registry and its HTTP instruments
	limiter *rateLimiter // nil: no rate limit
	hosts   atomic.Pointer[hostCache]
	// leaderHint is withLeaderHint's header value for the last leader seen.
	leaderHint atomic.Pointer[[]string]

	groupsMu sync.RWMutex
	groups   map[uint64]*Group
	// metaGroup is group 0 in a multi-group cluster, nil in a single-group one (set
	// before the HTTP server serves routes that route by it).
	metaGroup *Group
	// placement is the meta group's newest placement (placementLoop); nil until the
	// first one is applied, and always nil without a meta group.
	placement atomic.Pointer[api.Placement]
	// heldOffData is the nodes the controller's last pass kept data replicas off, their
	// builds knowing a lower apply level than the data groups' logs (fitForData).
	heldOffData atomic.Pointer[[]string]
	// stores is where routes find the groups they act on (groupFor): the groups above.
	stores groupStores

	ctx    context.Context // ends the HTTP server's requests and the process's goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stopOnce sync.Once
	done     chan struct{}
}

// Group is one replica of one raft group: its raft, log and snapshot stores, the fsm and
// its state file, the coalescer, read index, watch hub, cluster clock and the loops that
// keep them, all under its own data dir (groupDir). It stops on its own when it fails,
// without touching the process's other groups (Node.groupFailed decides what follows).
type Group struct {
	id  uint64
	srv *Node
	cfg Config // the process's, with DataDir set to the group's dir
	log hclog.Logger

	fsm *fsm.Machine // nil in the meta group
	// meta is the meta group's state machine, the placement (nil in a data group). The
	// meta group shares every piece of raft wiring with data groups; it has no fsm and
	// runs none of the loops that serve SKUs (startLoops).
	meta     *meta.Machine
	raft     *raft.Raft
	logStore raftStore // raft's log and stable store (logstore.go)
	trans    serialTransport
	pipes    closingTransport // trans as raft has it (pipelines.go)
	snaps    raft.SnapshotStore
	disk     *watchedLogStore // times log writes for the metrics and the disk watchdog
	fence    *fencedLayer     // lets the disk watchdog cut this node off from raft

	// membership: this group's raft configuration is the cluster's membership (group 1
	// today), so it joins, records member addresses, notices its removal and raises the
	// apply level.
	membership bool

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

	metrics     *groupMetrics
	diskStalled atomic.Bool
	// failure is the error that stopped this group (nil while it runs or after a clean
	// stop); failOnce makes the first one stick.
	failure  atomic.Pointer[error]
	failOnce sync.Once

	// readyTerm is the term whose first entry (our no-op) this leader has applied; strong
	// reads and the sold-out answers they give need it (docs/RAFT-NOTES.md, "Reads").
	readyTerm atomic.Uint64
	// clock is cluster time, stamped into commands under proposeMu (clusterclock.go).
	clock     clusterClock
	proposeMu sync.Mutex
	termReady chan struct{} // closed and replaced when readyTerm moves

	leaderMu    sync.Mutex
	leaderMoved chan struct{} // closed and replaced when raft's leader changes (leaderwait.go)

	ctx    context.Context // ends the group's loops
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

// legacyGroup is the group a single-group cluster is: its files sit at the data dir's
// root and its raft streams carry no header (transport.LegacyGroup), so a data dir and a
// peer of the previous build work with this one unchanged.
const legacyGroup = transport.LegacyGroup

// groupsDirName holds the data dirs of every group but the legacy one.
const groupsDirName = "groups"

// groupDir is where group id keeps its files under the process's data dir: group 1 at the
// root (today's layout), any other in groups/<id>/.
func groupDir(dataDir string, id uint64) string {
	if id == legacyGroup {
		return dataDir
	}
	return filepath.Join(dataDir, groupsDirName, strconv.FormatUint(id, 10))
}

// New starts a member hosting group 1: opens its stores, starts raft and the HTTP API, and
// bootstraps or joins in the background. It returns once both listeners are up; use
// WaitLeader to wait for the cluster.
func New(cfg Config) (*Node, error) { return NewContext(context.Background(), cfg) }

// NewContext is New, giving up when ctx ends. Only a new node joining through cfg.Join
// waits in it, for a member to describe the cluster (Config.JoinTimeout); ctx lets a
// process stopped meanwhile (a signal) leave at once.
func NewContext(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "stockd", Level: hclog.Info})
	}
	n := &Node{
		cfg:    cfg,
		log:    cfg.Logger.With("node", cfg.ID),
		groups: map[uint64]*Group{},
		done:   make(chan struct{}),
	}
	n.stores = hostedGroups{n}
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
	if err := n.start(ctx); err != nil {
		n.cancel()
		n.closeGroups()
		if n.mux != nil {
			_ = n.mux.Close()
		}
		if n.metrics != nil {
			n.metrics.detachRaft()
		}
		return nil, err
	}
	return n, nil
}

func (n *Node) start(ctx context.Context) error {
	n.fwd = &http.Client{Transport: &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second,
		DialContext:     (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig: n.cfg.HTTPClientTLS, // nil without HTTP TLS: then peers speak http
	}}
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	var err error
	if n.metrics, err = newMetrics(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	n.mux, err = transport.ListenMux(transport.MuxConfig{Config: transport.Config{
		BindAddr: n.cfg.RaftAddr, AdvertiseAddr: n.cfg.RaftAdvertise,
		TLS: n.cfg.RaftTLS, ClientTLS: n.cfg.RaftClientTLS,
		Dial: n.cfg.RaftDial, WrapListener: n.cfg.RaftWrapListener,
	}, Logger: n.cfg.Logger.Named("raft-mux")})
	if err != nil {
		return fmt.Errorf("raft listener: %w", err)
	}
	n.raftAddr = n.mux.Addr().String()
	others, held, err := heldGroups(n.cfg.DataDir)
	if err != nil {
		return err
	}
	joining := false
	if held == 0 && !n.cfg.Bootstrap && len(n.cfg.Join) > 0 {
		if joining, err = n.joiningMultiGroup(ctx); err != nil {
			return err
		}
	}
	multi := joining || slices.Contains(others, api.MetaGroupID) || held == 0 && n.cfg.Bootstrap && n.cfg.Groups > 1
	if !multi {
		if n.cluster, err = n.openGroup(legacyGroup, true); err != nil {
			return err
		}
	}
	if err := n.startGroups(others, held, joining); err != nil {
		return err
	}
	if err := n.startHTTP(); err != nil {
		return err
	}
	c := n.clusterGroup()
	n.log.Info("node started", "http", n.httpAddr, "raft", n.raftAddr, "data_dir", n.cfg.DataDir,
		"existing_state", c.hadState, "applied_index", c.appliedIndex(), "groups", len(n.groupList()))
	if g := n.cluster; g != nil {
		if n.cfg.Bootstrap {
			g.bootstrap()
		}
		g.startLoops()
	}
	n.startPlacement()
	return nil
}

// clusterGroup is the group whose raft is the cluster's own business: membership, the
// cluster view's leader and roles, readiness, leadership transfer, removal. In a
// single-group cluster that is group 1, whose configuration is the membership; in a
// multi-group one it is the meta group, which every node hosts, while group 1 is a data
// group like the others, hosted only by the nodes the placement names. This is the one
// place that choice is made.
func (n *Node) clusterGroup() *Group {
	if n.metaGroup != nil {
		return n.metaGroup
	}
	return n.cluster
}

// openGroup opens group id's stores under its data dir and starts its raft on the Mux,
// and adds it to the process's groups. Its loops start with startLoops, once the process
// can serve (bootstrap and join need the HTTP address).
func (n *Node) openGroup(id uint64, membership bool) (*Group, error) {
	cfg := n.cfg
	cfg.DataDir = groupDir(n.cfg.DataDir, id)
	g := &Group{
		id: id, srv: n, cfg: cfg, membership: membership,
		log:         n.log.With("group", id),
		watch:       newHub(),
		termReady:   make(chan struct{}),
		leaderMoved: make(chan struct{}),
		done:        make(chan struct{}),
	}
	g.ctx, g.cancel = context.WithCancel(n.ctx)
	if n.group(id) != nil {
		g.cancel()
		return nil, fmt.Errorf("group %d: already running in this process", id)
	}
	// Only one goroutine opens groups at a time (start, then placementLoop), so the check
	// above holds until the group is published below, once open: a group opened while the
	// HTTP server serves must not be seen half built.
	if err := g.open(); err != nil {
		g.cancel()
		if g.raft != nil { // it runs on the stores closed below: stop it first
			_ = g.raft.Shutdown().Error()
		}
		_ = g.closeResources()
		return nil, fmt.Errorf("group %d: %w", id, err)
	}
	n.groupsMu.Lock()
	n.groups[id] = g
	n.groupsMu.Unlock()
	return g, nil
}

func (g *Group) open() error {
	if err := os.MkdirAll(g.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	var err error
	if g.isMeta() {
		g.meta = meta.New()
	} else if g.fsm, err = openState(g.cfg.DataDir, fsm.Options{DedupWindow: g.cfg.DedupWindow, LedgerMax: g.cfg.LedgerMax}, g.log); err != nil {
		return err
	}
	g.logStore, err = openLogStore(g.cfg.DataDir, g.cfg.LogStore, g.cfg.WALSegmentSize, g.cfg.Logger)
	if err != nil {
		return err
	}
	if g.metrics, err = g.newGroupMetrics(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := removeTempSnapshots(g.cfg.DataDir, g.log); err != nil {
		return fmt.Errorf("remove incomplete snapshots: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(g.cfg.DataDir, 2, g.cfg.Logger.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	g.snaps = snaps
	if !g.isMeta() {
		if err := g.catchUpFromSnapshot(snaps); err != nil {
			return err
		}
	}
	g.hadState, err = raft.HasExistingState(g.logStore, g.logStore, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	if g.membership && !g.hadState && len(g.cfg.Join) > 0 {
		g.leaveAsWiped() // before raft starts: see there
	}
	return g.startRaft(snaps)
}

// startLoops starts the group's background work. The membership loops run only in the
// group whose configuration is the cluster's membership.
func (g *Group) startLoops() {
	if g.isMeta() {
		g.spawn(g.watchLeader)
		g.spawn(g.levelLoop)
		return
	}
	g.reads = newReadIndex(g)
	g.spawn(g.reads.run)
	g.coalesce = newCoalescer(g)
	g.spawn(g.coalesce.run)
	g.spawn(g.watchLeader)
	g.spawn(g.leadershipLoop)
	g.spawn(g.expireLoop)
	g.spawn(g.flushLoop)
	if g.membership {
		g.spawn(g.membershipLoop)
		g.spawn(g.levelLoop)
	}
	if g.cfg.DiskStallTimeout > 0 {
		g.spawn(g.watchdogLoop)
	}
}

// catchUpFromSnapshot brings a state that is behind the newest snapshot up to it: one set
// aside after a machine crash (see openState), or a crash between raft saving a received
// snapshot and the fsm adopting it. raft does not restore on start
// (NoSnapshotRestoreOnStart: the state file normally is ahead of every snapshot), and the
// log before the snapshot may be gone, so the state must not stay behind it.
func (g *Group) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
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
	if err != nil || snapApplied <= g.fsm.AppliedIndex() {
		return err
	}
	g.log.Warn("state is behind the latest snapshot; restoring it", "state_index", g.fsm.AppliedIndex(), "snapshot_index", snapApplied)
	_, rc2, err := snaps.Open(list[0].ID)
	if err != nil {
		return err
	}
	defer rc2.Close()
	return g.fsm.Restore(rc2)
}

func (g *Group) startRaft(snaps raft.SnapshotStore) error {
	layer, err := g.srv.mux.Layer(g.id)
	if err != nil {
		return fmt.Errorf("raft layer: %w", err)
	}
	g.fence = newFencedLayer(layer)
	g.trans = serialTransport{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: g.fence, MaxPool: 3, Timeout: 10 * time.Second, Logger: g.cfg.Logger.Named("raft-net"),
	}), newAcks()}
	rc := g.cfg.raftConfig()
	rc.Logger = g.cfg.Logger.Named("raft").With("node", g.cfg.ID, "group", g.id)
	var sm raft.FSM = timedFSM{&stateMachine{m: g.fsm, fatal: g.fail, applied: g.afterApply, restored: g.watch.notifyAll}, g.metrics}
	if g.isMeta() {
		// The placement lives in memory only: raft restores it from the newest snapshot
		// on start and replays the log after it.
		rc.NoSnapshotRestoreOnStart = false
		sm = &metaStateMachine{m: g.meta, fatal: g.fail}
	}
	var inner raft.LogStore = g.logStore
	if g.cfg.WrapLogStore != nil {
		inner = g.cfg.WrapLogStore(inner)
	}
	g.disk = newWatchedLogStore(g, inner)
	// The cache keeps the newest entries in memory, so replication to followers does not
	// read back from disk what the leader has just written.
	logs, err := raft.NewLogCache(logCacheSize, g.disk)
	if err != nil {
		return err
	}
	g.pipes = newClosingTransport(g.trans)
	g.raft, err = raft.NewRaft(rc, sm, logs, g.logStore, snaps, g.pipes)
	if err != nil {
		g.trans.Close()
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
func (g *Group) bootstrap() {
	if g.hadState {
		g.log.Info("existing raft state: not bootstrapping again")
		return
	}
	err := g.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		ID: raft.ServerID(g.cfg.ID), Address: raft.ServerAddress(g.srv.raftAddr), Suffrage: raft.Voter,
	}}}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		g.log.Error("bootstrap failed", "error", err)
		return
	}
	g.log.Info("bootstrapped a new cluster")
}

func (g *Group) spawn(fn func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn()
	}()
}

// every runs fn each interval until the node stops or fn returns false: the shape of the
// node's background loops (state flush, hold expiry, disk watchdog).
func (g *Group) every(interval time.Duration, fn func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		if !fn() {
			return
		}
	}
}

// afterApply runs on the FSM goroutine after each applied batch; it must not block.
func (g *Group) afterApply(entries []fsm.Entry, results []fsm.Result) {
	g.clock.observe(g.fsm.LogTime(), time.Now())
	g.publish(entries, results)
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
func (n *Node) Removed() bool { return n.clusterGroup().leftCluster.Load() }

// IsLeader reports this node's own belief that it leads the cluster's group
// (clusterGroup); only a strong read proves it.
func (n *Node) IsLeader() bool { return n.clusterGroup().raft.State() == raft.Leader }

// WaitLeader waits until this node knows a leader and returns its id.
func (n *Node) WaitLeader(ctx context.Context) (string, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if _, id := n.clusterGroup().raft.LeaderWithID(); id != "" {
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
		for _, g := range n.groupList() {
			g.handOverBeforeStop(ctx)
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
	errs := []error{n.closeGroups()}
	n.wg.Wait()
	errs = append(errs, n.mux.Close())
	if n.metrics != nil {
		n.metrics.detachRaft()
	}
	close(n.done)
	n.log.Info("node stopped")
	return errors.Join(errs...)
}

// closeGroups stops every group still running.
func (n *Node) closeGroups() error {
	var errs []error
	for _, g := range n.groupList() {
		errs = append(errs, g.stop())
	}
	return errors.Join(errs...)
}

// groupList is the process's groups, in no order.
func (n *Node) groupList() []*Group {
	n.groupsMu.RLock()
	defer n.groupsMu.RUnlock()
	out := make([]*Group, 0, len(n.groups))
	for _, g := range n.groups {
		out = append(out, g)
	}
	return out
}

// addGroup starts a replica of group id beside the process's others, over the same Mux,
// with its files in groupDir. voters bootstraps a new group with that configuration; with
// none the replica starts empty and waits for the group's leader to add it. Placement will
// call it; today only tests do.
func (n *Node) addGroup(id uint64, voters []raft.Server) (*Group, error) {
	g, err := n.openGroup(id, false)
	if err != nil {
		return nil, err
	}
	if len(voters) > 0 && !g.hadState {
		err := g.raft.BootstrapCluster(raft.Configuration{Servers: voters}).Error()
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, errors.Join(fmt.Errorf("group %d: bootstrap: %w", id, err), g.stop())
		}
	}
	g.startLoops()
	return g, nil
}

// groupFailed is the process's policy for a group that failed (a poisoned fsm, a failed
// state write). A single-group process does what it always did: OnFatal, which by
// default exits with code 2 so the supervisor restarts it from its files. A process
// hosting several groups stops only the failed one; the others go on serving. It runs on
// the failing group's fsm goroutine, which raft's shutdown waits for, so the stop runs on
// its own goroutine.
func (n *Node) groupFailed(g *Group, err error) {
	if len(n.groupList()) == 1 {
		n.cfg.OnFatal(err)
		return
	}
	if n.ctx.Err() != nil {
		return // the process is stopping, and stops every group
	}
	n.spawn(func() {
		if serr := g.stop(); serr != nil {
			g.log.Warn("stopping the failed group", "error", serr)
		}
	})
}

func (n *Node) spawn(fn func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

// fail stops this group for good after an error its replica must not go on from; the
// process decides what else follows (Node.groupFailed). Only the first error counts.
func (g *Group) fail(err error) {
	g.failOnce.Do(func() {
		g.failure.Store(&err)
		g.log.Error("fatal: stopping this group so its replica cannot diverge", "error", err)
		g.srv.groupFailed(g, err)
	})
}

// isMeta reports whether g is the meta group, whose state machine is the placement.
func (g *Group) isMeta() bool { return g.id == api.MetaGroupID }

// appliedIndex is the index of the last entry g's state machine applied.
func (g *Group) appliedIndex() uint64 {
	if g.isMeta() {
		return g.meta.Applied()
	}
	return g.fsm.AppliedIndex()
}

// failed is the error that stopped the group, or nil.
func (g *Group) failed() error {
	if p := g.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// handOverBeforeStop hands a leader's leadership to another voter, so its group does not
// wait out an election timeout.
func (g *Group) handOverBeforeStop(ctx context.Context) {
	if g.raft.State() != raft.Leader || g.voters() <= 1 {
		return
	}
	g.log.Info("handing leadership over before shutdown")
	if err := waitFuture(ctx, g.raft.LeadershipTransfer()); err != nil {
		g.log.Warn("leadership transfer failed; shutting down anyway", "error", err)
	}
}

// stop ends the group's loops, shuts its raft down and closes its stores; its layer on the
// Mux closes with its transport. It stays in the process's groups, so a failed one is
// still reported.
func (g *Group) stop() error {
	var err error
	g.stopOnce.Do(func() {
		g.cancel()
		var errs []error
		f := g.raft.Shutdown()
		g.pipes.pipes.closeAll() // after shutdown began: a replication stuck in one ends (pipelines.go)
		if rerr := f.Error(); rerr != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", rerr))
		}
		g.wg.Wait()
		errs = append(errs, g.closeResources())
		close(g.done)
		g.log.Info("group stopped")
		err = errors.Join(errs...)
	})
	return err
}

func (g *Group) closeResources() error {
	if g.metrics != nil {
		g.metrics.unregister()
	}
	var errs []error
	if g.trans.NetworkTransport != nil {
		errs = append(errs, g.trans.Close())
	}
	if g.logStore != nil {
		errs = append(errs, g.logStore.Close())
	}
	if g.fsm != nil {
		errs = append(errs, closeState(g.fsm, g.cfg.DataDir))
	}
	return errors.Join(errs...)
}

func (g *Group) voters() int {
	f := g.raft.GetConfiguration()
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
