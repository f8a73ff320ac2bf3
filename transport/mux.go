package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

const (
	// DefaultHeaderTimeout is MuxConfig.HeaderTimeout's default. A dialer
	// writes its header at once and raft its first rpc right after the dial,
	// so only a broken, partitioned or hostile peer comes near it.
	DefaultHeaderTimeout = 5 * time.Second

	// maxPendingHeaders bounds the accepted connections whose header is being
	// read (a goroutine each, with its TLS state: some tens of KiB). Past it
	// new connections are refused, so silent clients cost bounded memory and
	// never hold up the accept loop. A healthy peer's header arrives within a
	// TLS handshake, about a millisecond of CPU; the bound leaves room for a
	// dozen peers reopening the four streams (pool and pipeline) of each of
	// ten groups at once when a partition heals, on a node short of CPU.
	maxPendingHeaders = 512

	// acceptBacklog is how many routed streams a group's layer holds for its
	// raft's accept loop. raft accepts as fast as streams come, so a full
	// backlog means the group's transport is not running.
	acceptBacklog = 32
)

// ErrDuplicateGroup is returned by Mux.Layer for a group that already has
// an open layer on the Mux.
var ErrDuplicateGroup = errors.New("transport: raft group already has a layer on this mux")

// MuxConfig describes a Mux: its listener and dialer as for a Layer, and what
// only a Mux needs.
type MuxConfig struct {
	Config

	// Logger gets a line for every stream the Mux refuses. Nil logs nothing;
	// MuxStats counts them either way.
	Logger hclog.Logger

	// HeaderTimeout bounds how long an accepted connection has to present its
	// stream header, TLS handshake included. Zero means DefaultHeaderTimeout.
	HeaderTimeout time.Duration
}

// Mux carries the raft traffic of many raft groups over one listener. Each
// group gets its own raft.StreamLayer from [Mux.Layer], to build that group's
// NetworkTransport on; every stream it dials opens with a header naming the
// group (see [LegacyGroup] for the exception), and the Mux hands each
// accepted stream to the layer of the group it names.
//
// Layers come and go while the Mux runs, as groups are created and dropped.
// A stream for a group that has no layer here is closed and counted in
// [MuxStats]; the dialer's raft sees its rpc fail, as for a peer that is down.
// Reading headers never blocks the accept loop or other groups' streams.
type Mux struct {
	*endpoint
	log           hclog.Logger
	headerTimeout time.Duration

	mu      sync.Mutex
	closed  bool
	groups  map[uint64]*GroupLayer
	pending map[net.Conn]struct{} // accepted, header not yet read
	done    chan struct{}         // closed by Close
	wg      sync.WaitGroup        // the accept loop and every header reader

	closeOnce sync.Once
	closeErr  error

	routed, legacy, unknownGroup, badHeader, headerFailed, busy, backlogFull atomic.Uint64
}

// MuxStats counts the streams a Mux has accepted, by what became of them.
type MuxStats struct {
	Routed       uint64 // handed to a group's layer
	Legacy       uint64 // of Routed, header-less streams handed to LegacyGroup
	UnknownGroup uint64 // refused: the named group has no layer on this Mux
	BadHeader    uint64 // refused: wrong magic or unknown version
	HeaderFailed uint64 // closed before a whole header arrived: timeout, reset, failed TLS handshake
	Busy         uint64 // refused: too many connections were still presenting their headers
	BacklogFull  uint64 // refused: the group's layer held a full backlog its raft had not accepted
}

// ListenMux validates cfg, binds cfg.BindAddr and starts accepting. The
// caller owns the Mux and closes it after every group's transport.
func ListenMux(cfg MuxConfig) (*Mux, error) {
	e, err := bind(cfg.Config)
	if err != nil {
		return nil, err
	}
	m := &Mux{
		endpoint:      e,
		log:           cfg.Logger,
		headerTimeout: cfg.HeaderTimeout,
		groups:        make(map[uint64]*GroupLayer),
		pending:       make(map[net.Conn]struct{}),
		done:          make(chan struct{}),
	}
	if m.log == nil {
		m.log = hclog.NewNullLogger()
	}
	if m.headerTimeout <= 0 {
		m.headerTimeout = DefaultHeaderTimeout
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

// Layer opens the stream layer of raft group id. Closing it, which
// closing the NetworkTransport built on it does, drops the group from the
// Mux; the id may then be opened again.
func (m *Mux) Layer(id uint64) (*GroupLayer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("transport: open raft group %d: %w", id, net.ErrClosed)
	}
	if _, ok := m.groups[id]; ok {
		return nil, fmt.Errorf("%w: group %d", ErrDuplicateGroup, id)
	}
	ctx, cancel := context.WithCancel(withDialGroup(context.Background(), id))
	g := &GroupLayer{
		mux:    m,
		id:     id,
		header: appendHeader(nil, id),
		queue:  make(chan net.Conn, acceptBacklog),
		done:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
	}
	m.groups[id] = g
	return g, nil
}

// Addr is the advertised address, which every group's raft records.
func (m *Mux) Addr() net.Addr { return m.advertise }

// Stats returns the Mux's counters so far.
func (m *Mux) Stats() MuxStats {
	return MuxStats{
		Routed:       m.routed.Load(),
		Legacy:       m.legacy.Load(),
		UnknownGroup: m.unknownGroup.Load(),
		BadHeader:    m.badHeader.Load(),
		HeaderFailed: m.headerFailed.Load(),
		Busy:         m.busy.Load(),
		BacklogFull:  m.backlogFull.Load(),
	}
}

// Close stops the listener, closes every group's layer (releasing their
// Accept waiters) and the connections still presenting their headers, and
// returns once none of the Mux's goroutines is left. Streams already handed
// to raft are raft's to close. Calling Close again returns the first result.
func (m *Mux) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		close(m.done)
		groups := make([]*GroupLayer, 0, len(m.groups))
		for _, g := range m.groups {
			groups = append(groups, g)
		}
		pending := make([]net.Conn, 0, len(m.pending))
		for c := range m.pending {
			pending = append(pending, c)
		}
		m.mu.Unlock()

		m.closeErr = m.ln.Close()
		for _, c := range pending {
			c.Close()
		}
		for _, g := range groups {
			g.Close()
		}
		m.wg.Wait()
	})
	return m.closeErr
}

func (m *Mux) acceptLoop() {
	defer m.wg.Done()
	var backoff time.Duration
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			if m.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait for it to pass,
			// as net/http does, instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			m.log.Error("raft listener: accept failed", "error", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-m.done:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		m.startRoute(conn)
	}
}

func (m *Mux) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// startRoute reads conn's header in a goroutine of its own, within the
// bound on such goroutines.
func (m *Mux) startRoute(conn net.Conn) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		conn.Close()
		return
	}
	if len(m.pending) >= maxPendingHeaders {
		m.mu.Unlock()
		conn.Close()
		m.busy.Add(1)
		m.log.Warn("raft stream refused: too many connections presenting their headers", "remote", conn.RemoteAddr().String(), "pending", maxPendingHeaders)
		return
	}
	m.pending[conn] = struct{}{}
	m.wg.Add(1)
	m.mu.Unlock()
	go m.route(conn)
}

// route reads the header of raw within the header timeout and hands the
// stream to its group's layer, or closes it.
func (m *Mux) route(raw net.Conn) {
	defer m.wg.Done()
	conn := m.server(raw)
	remote := raw.RemoteAddr().String()
	_ = conn.SetDeadline(time.Now().Add(m.headerTimeout))
	group, rest, err := readHeader(conn)
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}

	m.mu.Lock()
	delete(m.pending, raw)
	closed := m.closed
	var g *GroupLayer
	delivered := false
	if err == nil && !closed {
		if g = m.groups[group]; g != nil {
			if len(rest) > 0 {
				conn = &prefixConn{Conn: conn, prefix: rest}
			}
			if t, ok := raw.(interface{ tagGroup(uint64) }); ok {
				t.tagGroup(group)
			}
			// Under m.mu, so a layer closing concurrently either gets the
			// stream before it drains its backlog or is already gone.
			select {
			case g.queue <- conn:
				delivered = true
			default:
			}
		}
	}
	m.mu.Unlock()
	if delivered {
		m.routed.Add(1)
		if len(rest) > 0 {
			m.legacy.Add(1)
		}
		return
	}

	conn.Close()
	switch {
	case closed:
	case errors.Is(err, errBadMagic), errors.Is(err, errBadVersion):
		m.badHeader.Add(1)
		m.log.Warn("raft stream refused: bad header", "remote", remote, "error", err)
	case err != nil:
		m.headerFailed.Add(1)
		m.log.Warn("raft stream closed: no header", "remote", remote, "error", err)
	case g == nil:
		m.unknownGroup.Add(1)
		m.log.Warn("raft stream refused: no such group on this node", "remote", remote, "group", group, "headerless", len(rest) > 0)
	default:
		m.backlogFull.Add(1)
		m.log.Warn("raft stream refused: the group is not accepting", "remote", remote, "group", group)
	}
}

// GroupLayer is the raft.StreamLayer of one raft group on a Mux. It is safe
// for concurrent use; raft's NetworkTransport calls Accept from one goroutine
// and Dial from many, and Close stops both.
type GroupLayer struct {
	mux    *Mux
	id     uint64
	header []byte
	queue  chan net.Conn
	done   chan struct{} // closed by Close

	// ctx is the parent of every Dial; Close cancels it, so no dial outlives
	// the layer.
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
}

var _ raft.StreamLayer = (*GroupLayer)(nil)

// Accept waits for the next stream a peer opened for this group. With TLS
// the handshake is done already. After Close, Accept returns an error
// matching net.ErrClosed.
func (g *GroupLayer) Accept() (net.Conn, error) {
	select {
	case <-g.done:
		return nil, g.closedError("accept")
	default:
	}
	select {
	case c := <-g.queue:
		return c, nil
	case <-g.done:
		return nil, g.closedError("accept")
	}
}

// Dial opens a stream of this group to the peer at address within timeout
// (0 means no limit), TLS handshake and header included.
func (g *GroupLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	select {
	case <-g.done:
		return nil, g.closedError("dial " + string(address))
	default:
	}
	ctx, cancel := dialContext(g.ctx, timeout)
	defer cancel()
	conn, err := g.mux.dialPeer(ctx, string(address))
	if err != nil {
		return nil, err
	}
	if len(g.header) == 0 {
		return conn, nil
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetWriteDeadline(deadline)
	if _, err := conn.Write(g.header); err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: raft group %d: send stream header to %s: %w", g.id, address, err)
	}
	if err := conn.SetWriteDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: raft group %d: %w", g.id, err)
	}
	return conn, nil
}

// Close drops the group from the Mux: its pending Accept and Dial calls
// return, streams not yet accepted are closed and new ones are refused as for
// an unknown group. Streams already handed out are their owner's to close.
// Calling Close again does nothing and returns nil.
func (g *GroupLayer) Close() error {
	g.closeOnce.Do(func() {
		m := g.mux
		m.mu.Lock()
		if m.groups[g.id] == g {
			delete(m.groups, g.id)
		}
		close(g.done)
		m.mu.Unlock()
		g.cancel()
		for {
			select {
			case c := <-g.queue:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

// Addr is the Mux's advertised address.
func (g *GroupLayer) Addr() net.Addr { return g.mux.advertise }

// Group is the raft group id of the layer.
func (g *GroupLayer) Group() uint64 { return g.id }

func (g *GroupLayer) closedError(op string) error {
	return fmt.Errorf("transport: raft group %d: %s: %w", g.id, op, net.ErrClosed)
}

// prefixConn is an accepted stream whose first bytes were read to route it
// and are read again by its owner.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// dialGroupKey is the context key under which a GroupLayer names its raft
// group to the dialer (Config.Dial), for Faults.Dial.
type dialGroupKey struct{}

func withDialGroup(ctx context.Context, group uint64) context.Context {
	return context.WithValue(ctx, dialGroupKey{}, group)
}

// dialGroup is the raft group named in ctx, or 0.
func dialGroup(ctx context.Context) uint64 {
	g, _ := ctx.Value(dialGroupKey{}).(uint64)
	return g
}
