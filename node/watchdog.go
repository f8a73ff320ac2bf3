package node

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The disk watchdog (docs/RAFT-NOTES.md, "Disk"): a leader whose log write hangs keeps the
// cluster without a leader for as long as it hangs, because hashicorp/raft writes the
// leader's log on the leader loop itself (#503): that loop can then neither commit, nor
// notice it lost its lease, nor carry out a leadership transfer, while its replication
// goroutines go on sending heartbeats that keep every follower from starting an election.
//
// So the watchdog times every log write. When one runs past Config.DiskStallTimeout it
// logs loudly, marks the node unready (/readyz 503), asks for a leadership transfer (which
// runs if the loop gets free again in time), and, on a leader, fences raft's network: it
// closes every raft connection of this node and refuses new ones while the write hangs.
// The followers then miss their heartbeats and elect a new leader among themselves. When
// the write returns, the fence lifts; the old leader learns the new term and follows.
// A stalled follower is only marked unready: the leader goes on with the other followers.

// watchedLogStore times the raft log's writes for the metrics and the watchdog.
type watchedLogStore struct {
	raft.LogStore
	n *Group

	mu       sync.Mutex
	inflight map[uint64]time.Time // write sequence → start
	seq      uint64
}

func newWatchedLogStore(n *Group, inner raft.LogStore) *watchedLogStore {
	return &watchedLogStore{LogStore: inner, n: n, inflight: map[uint64]time.Time{}}
}

func (w *watchedLogStore) StoreLog(l *raft.Log) error { return w.StoreLogs([]*raft.Log{l}) }

func (w *watchedLogStore) StoreLogs(logs []*raft.Log) error {
	start := time.Now()
	w.mu.Lock()
	w.seq++
	id := w.seq
	w.inflight[id] = start
	w.mu.Unlock()
	err := w.LogStore.StoreLogs(logs)
	w.mu.Lock()
	delete(w.inflight, id)
	w.mu.Unlock()
	w.n.metrics.storeLogs.Observe(time.Since(start).Seconds())
	return err
}

// IsMonotonic passes the inner store's answer through (raft.MonotonicLogStore).
func (w *watchedLogStore) IsMonotonic() bool {
	m, ok := w.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// oldestWrite is the start of the longest-running write, or the zero time.
func (w *watchedLogStore) oldestWrite() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var oldest time.Time
	for _, t := range w.inflight {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest
}

// watchdogLoop checks the log writes a few times per stall timeout.
func (g *Group) watchdogLoop() {
	limit := g.cfg.DiskStallTimeout
	g.every(max(limit/4, 5*time.Millisecond), func() bool {
		oldest := g.disk.oldestWrite()
		stalled := !oldest.IsZero() && time.Since(oldest) > limit
		switch {
		case stalled && !g.diskStalled.Load():
			g.diskStalled.Store(true)
			g.metrics.diskStalls.Inc()
			leader := g.raft.State() == raft.Leader
			g.log.Error("DISK STALL: a raft log write has not returned; this node is unready and, if leading, cut off from raft until it does",
				"running_for", time.Since(oldest).Round(time.Millisecond), "limit", limit, "leader", leader)
			if leader {
				// Enqueued only; it runs if the leader loop gets free before the fence works.
				_ = g.raft.LeadershipTransfer()
				g.fence.fence()
			}
		case !stalled && g.diskStalled.Load():
			g.diskStalled.Store(false)
			g.fence.lift()
			g.log.Warn("disk stall over: the raft log write returned; rejoining raft")
		}
		return true
	})
}

// fencedLayer wraps raft's stream layer so the watchdog can cut this node off from raft
// (every connection closed, none made or accepted) and later let it back.
type fencedLayer struct {
	raft.StreamLayer

	mu     sync.Mutex
	fenced bool
	conns  map[*fencedConn]struct{}
}

func newFencedLayer(inner raft.StreamLayer) *fencedLayer {
	return &fencedLayer{StreamLayer: inner, conns: map[*fencedConn]struct{}{}}
}

var errFenced = errors.New("raft network fenced: this node's disk is stalled")

func (l *fencedLayer) Accept() (net.Conn, error) {
	for {
		c, err := l.StreamLayer.Accept()
		if err != nil {
			return nil, err
		}
		if fc := l.track(c); fc != nil {
			return fc, nil
		}
		c.Close()
	}
}

func (l *fencedLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	l.mu.Lock()
	fenced := l.fenced
	l.mu.Unlock()
	if fenced {
		return nil, errFenced
	}
	c, err := l.StreamLayer.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	if fc := l.track(c); fc != nil {
		return fc, nil
	}
	c.Close()
	return nil, errFenced
}

// track registers a connection, or returns nil when fenced.
func (l *fencedLayer) track(c net.Conn) *fencedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fenced {
		return nil
	}
	fc := &fencedConn{Conn: c, l: l}
	l.conns[fc] = struct{}{}
	return fc
}

func (l *fencedLayer) fence() {
	l.mu.Lock()
	l.fenced = true
	conns := l.conns
	l.conns = map[*fencedConn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

func (l *fencedLayer) lift() {
	l.mu.Lock()
	l.fenced = false
	l.mu.Unlock()
}

type fencedConn struct {
	net.Conn
	l *fencedLayer
}

func (c *fencedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
