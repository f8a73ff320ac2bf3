package node

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
	"github.com/flashstock/flashstock/internal/testcluster"
)

// The unit tier: real Nodes serving their real routes over HTTP, whose groups are
// memStores, fsm.Machines applied directly. There is no raft and no clock: a group's log
// is a counter, its replicas apply each entry as it is written, its leader is whoever the
// test says, and commands carry the cluster time the test sets. The fsm is deterministic,
// so these tests are about HTTP (parsing, answers, forwarding, routing by group, auth and
// rate limits) and run under -short in milliseconds.

// memGroup is one data group across a unitCluster's nodes.
type memGroup struct {
	id uint64

	mu       sync.Mutex
	leader   string // the leader's HTTP address; "" when there is none
	now      int64  // cluster time (ms): stamped into commands, and judged by for reads
	index    uint64 // the last log index written
	replicas []*memStore
}

// memStore is one node's replica of a memGroup: the groupStore the unit tier serves with.
type memStore struct {
	g    *memGroup
	self string // the HTTP address of the node that hosts it
	m    *fsm.Machine
	hub  *hub

	strongReads atomic.Int64
}

var _ groupStore = (*memStore)(nil)

func (s *memStore) groupID() uint64 { return s.g.id }

func (s *memStore) leads() bool { return s.leaderHTTP() == s.self }

func (s *memStore) leaderHTTP() string {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return s.g.leader
}

// awaitLeader does not wait: leadership changes only when the test says so.
func (s *memStore) awaitLeader(_ context.Context, not string) string {
	if l := s.leaderHTTP(); l != not {
		return l
	}
	return ""
}

func (s *memStore) state() *fsm.Machine { return s.m }

// strongRead is immediate: every replica has applied every entry written.
func (s *memStore) strongRead(ctx context.Context) error {
	s.strongReads.Add(1)
	if !s.leads() {
		return errNotLeader
	}
	return ctx.Err()
}

func (s *memStore) clusterNow() int64 {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return s.g.now
}

func (s *memStore) lastContactMS() int64 {
	if s.leads() {
		return 0
	}
	return 7 // any value a test can recognise in the header
}

// submit writes each command as one log entry, stamped with the group's cluster time,
// and applies it on every replica before it answers.
func (s *memStore) submit(_ context.Context, cmds []fsm.Command) []outcome {
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.leader != s.self {
		return failed(len(cmds), errNotLeader)
	}
	entries := make([]fsm.Entry, len(cmds))
	for i, cmd := range cmds {
		cmd.Time = g.now
		data, err := fsm.Encode(cmd)
		if err != nil {
			return failed(len(cmds), err)
		}
		g.index++
		entries[i] = fsm.Entry{Index: g.index, Data: data}
	}
	out := make([]outcome, len(cmds))
	for _, r := range g.replicas {
		results, err := r.m.ApplyBatch(entries)
		if err != nil {
			return failed(len(cmds), err) // a poisoned fsm: the test's Cleanup reports it
		}
		r.hub.changed(results)
		if r == s {
			for i := range results {
				out[i].res = results[i]
			}
		}
	}
	return out
}

// countResult counts nothing: the unit tier has no per-group metrics.
func (s *memStore) countResult(fsm.Command, fsm.Result, bool) {}

func (s *memStore) awaitSKU(_ context.Context, sku string) error {
	_, err := s.m.GetSKU(sku)
	return err
}

func (s *memStore) subscribe(sku string) (<-chan struct{}, func()) { return s.hub.subscribe(sku) }

// memStores is one unit node's stores.
type memStores struct {
	multi bool
	byID  map[uint64]*memStore
}

func (m memStores) placed() bool { return m.multi }

func (m memStores) store(id uint64) groupStore {
	if s, ok := m.byID[id]; ok {
		return s
	}
	return nil
}

func (m memStores) data() []groupStore {
	var out []groupStore
	for _, s := range m.byID {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b groupStore) int { return cmp.Compare(a.groupID(), b.groupID()) })
	return out
}

// unitSpec describes a unitCluster.
type unitSpec struct {
	nodes  int // each hosts a replica of every group; node 0 leads them all
	groups int // data groups 1..groups; more than one are placed by slot, as a meta group would
	// oldLevel leaves the groups at apply level 0, a cluster mid-upgrade; otherwise they
	// start at fsm.ApplyLevel, as a cluster's leader raises them.
	oldLevel bool
	config   func(*Config)
}

// unitCluster is the unit tier's nodes and groups, and the API client to speak to them.
type unitCluster struct {
	apiClient
	nodes   []*Node
	servers []*httptest.Server // servers[i] serves nodes[i]
	stores  []memStores        // stores[i] is nodes[i]'s
	groups  map[uint64]*memGroup
}

// newUnit starts spec's nodes on loopback HTTP servers.
func newUnit(t testing.TB, spec unitSpec) *unitCluster {
	t.Helper()
	spec.nodes, spec.groups = max(spec.nodes, 1), max(spec.groups, 1)
	u := &unitCluster{apiClient: apiClient{t: t, client: &http.Client{Timeout: 10 * time.Second}}, groups: map[uint64]*memGroup{}}
	var p *api.Placement
	if spec.groups > 1 {
		p = &api.Placement{Version: 1, SlotCount: api.SlotCount}
	}
	for id := uint64(1); id <= uint64(spec.groups); id++ {
		u.groups[id] = &memGroup{id: id, now: 1_000_000}
		if p != nil {
			from, to := int(id-1)*api.SlotCount/spec.groups, int(id)*api.SlotCount/spec.groups
			p.Groups = append(p.Groups, api.Group{ID: id, Kind: api.GroupData, Slots: []api.SlotRange{{From: from, To: to}}})
		}
	}
	t.Cleanup(func() {
		for _, n := range u.nodes {
			n.cancel() // ends the watches, which the servers' Close waits for
		}
		for _, srv := range u.servers {
			srv.Close()
		}
		for _, n := range u.nodes {
			n.metrics.detachRaft()
		}
		for _, ss := range u.stores {
			for _, s := range ss.byID {
				if err := s.m.Close(); err != nil {
					t.Errorf("close group %d's state: %v", s.g.id, err)
				}
			}
		}
	})
	for i := range spec.nodes {
		cfg := DefaultConfig()
		cfg.ID = fmt.Sprintf("n%d", i+1)
		cfg.Groups = spec.groups
		if spec.config != nil {
			spec.config(&cfg)
		}
		id := cfg.ID
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: testcluster.LogWriter{T: t}})
		n := &Node{cfg: cfg, log: cfg.Logger.With("node", id), fwd: &http.Client{}, done: make(chan struct{})}
		n.ctx, n.cancel = context.WithCancel(context.Background())
		u.nodes = append(u.nodes, n)
		var err error
		if n.metrics, err = newMetrics(); err != nil {
			t.Fatal(err)
		}
		if cfg.RateLimit > 0 {
			// A clock that stands still: a test spends the burst and nothing refills.
			n.limiter = newRateLimiter(cfg.RateLimit, cfg.RateBurst, func() time.Time { return time.Unix(0, 0) })
		}
		if p != nil {
			n.placement.Store(p)
		}
		srv := httptest.NewUnstartedServer(nil)
		n.httpAddr = srv.Listener.Addr().String()
		ss := memStores{multi: p != nil, byID: map[uint64]*memStore{}}
		for gid, g := range u.groups {
			m, err := fsm.Open(filepath.Join(t.TempDir(), fmt.Sprintf("%s-group%d.db", id, gid)), fsm.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			s := &memStore{g: g, self: n.httpAddr, m: m, hub: newHub()}
			g.replicas = append(g.replicas, s)
			ss.byID[gid] = s
		}
		n.stores = ss
		u.stores = append(u.stores, ss)
		srv.Config.Handler = n.routes()
		srv.Config.BaseContext = func(net.Listener) context.Context { return n.ctx } // as startHTTP
		srv.Start()
		u.servers = append(u.servers, srv)
	}
	for _, g := range u.groups {
		g.leader = u.addr(0)
		if !spec.oldLevel {
			// As a cluster's leader does once every member's build knows the level.
			o := u.stores[0].byID[g.id].submit(context.Background(), []fsm.Command{{Kind: fsm.KindSetLevel, Level: fsm.ApplyLevel}})[0]
			if o.err != nil || !o.res.OK() {
				t.Fatalf("raise group %d's level: %v %+v", g.id, o.err, o.res)
			}
		}
	}
	return u
}

// addr is node i's HTTP address.
func (u *unitCluster) addr(i int) string { return u.nodes[i].HTTPAddr() }

// store is node i's replica of group id.
func (u *unitCluster) store(i int, id uint64) *memStore { return u.stores[i].byID[id] }

// lead makes node i the leader of group id; -1 leaves the group without a leader.
func (u *unitCluster) lead(id uint64, i int) {
	g := u.groups[id]
	g.mu.Lock()
	defer g.mu.Unlock()
	g.leader = ""
	if i >= 0 {
		g.leader = u.addr(i)
	}
}

// advance moves every group's cluster time forward by d.
func (u *unitCluster) advance(d time.Duration) {
	for _, g := range u.groups {
		g.mu.Lock()
		g.now += d.Milliseconds()
		g.mu.Unlock()
	}
}

// entries is how many log entries group id has written.
func (u *unitCluster) entries(id uint64) uint64 {
	g := u.groups[id]
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.index
}

// groupOf is the group node 0 routes sku to.
func (u *unitCluster) groupOf(sku string) uint64 {
	u.t.Helper()
	g, err := u.nodes[0].groupFor(sku)
	if err != nil {
		u.t.Fatalf("groupFor(%s): %v", sku, err)
	}
	return g.groupID()
}

// createSKU creates sku with stock through node 0.
func (u *unitCluster) createSKU(sku string, stock int64) {
	u.t.Helper()
	u.mustCall(u.addr(0), "PUT", "/v1/skus/"+sku, map[string]any{"stock": stock}, nil)
}
