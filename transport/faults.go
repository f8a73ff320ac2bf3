package transport

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Faults breaks the network links of one node on demand. It is production
// code for test harnesses — this package's tests, node/ tests and the chaos
// suite — not something a running cluster uses. Plug it into a node's Config:
//
//	f := transport.NewFaults(nil)
//	layer, err := transport.Listen(transport.Config{BindAddr: addr, Dial: f.Dial, WrapListener: f.WrapListener})
//
// Until told otherwise it passes everything through untouched.
//
// A link is named by the remote address as this node sees it. For
// connections this node dials, that is the address dialed: the peer's raft
// address, and the direction in which this node sends raft RPCs to it. For
// accepted connections it is the peer's source address, usually an ephemeral
// port. A name without a port ("127.0.0.1") names every link to that host,
// dialed and accepted alike. Faults act on this node's end only; to cut two
// nodes apart, block each one's link to the other on both nodes' Faults.
//
// Under a [Mux] every raft group's streams share the node's links, so these
// faults act on all groups at once: a Block partitions every group between
// the two nodes. [Faults.Group] scopes faults to one group's streams.
//
// Faults starts no goroutines: every wait it imposes runs in the caller's
// goroutine and ends on Heal, Close, the connection's Close, its deadline or
// the dial context.
type Faults struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu      sync.Mutex
	rules   map[linkKey]rule
	changed chan struct{} // closed and replaced whenever rules change
	conns   map[*faultConn]struct{}
	closed  bool
}

// linkKey names the links a rule acts on: those named name (see Faults), and
// of them only the streams of raft group group, or all streams when group is 0.
type linkKey struct {
	name  string
	group uint64
}

type rule struct {
	blocked bool
	holdIn  bool // reads stall, writes pass
	delay   time.Duration
}

// NewFaults returns Faults that dial with dial, or with a net.Dialer with TCP
// keep-alive when dial is nil.
func NewFaults(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Faults {
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: keepAlive}).DialContext
	}
	return &Faults{
		dial:    dial,
		rules:   make(map[linkKey]rule),
		changed: make(chan struct{}),
		conns:   make(map[*faultConn]struct{}),
	}
}

// Block blackholes the link to addr: new dials hang until unblocked or their
// context ends, and reads and writes on live connections stall until
// unblocked, their deadline or Close. Nothing is refused or reset, and data
// is held back, not lost, as with a real partition under TCP.
func (f *Faults) Block(addr string) {
	f.update(linkKey{addr, 0}, func(r *rule) { r.blocked = true })
}

// HoldIncoming holds back the data arriving on the link to addr until Heal,
// while this node's dials and writes go through: the peer receives what this
// node sends and answers, and the answers wait, in order, as they would for a
// node that was paused or whose inbound path is congested. On a dialed link
// that holds the peer's responses to this node's requests.
func (f *Faults) HoldIncoming(addr string) {
	f.update(linkKey{addr, 0}, func(r *rule) { r.holdIn = true })
}

// Delay holds every dial and every write on the link to addr for d before it
// proceeds. Zero removes the delay.
func (f *Faults) Delay(addr string, d time.Duration) {
	f.update(linkKey{addr, 0}, func(r *rule) { r.delay = d })
}

// Reset closes every live connection on the link to addr, as a peer's RST
// would. New connections are not affected.
func (f *Faults) Reset(addr string) {
	for _, c := range f.live(linkKey{addr, 0}) {
		c.Close()
	}
}

// Heal removes every Block, HoldIncoming and Delay; stalled reads, writes and
// dials resume, held data first.
func (f *Faults) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.rules)
	f.broadcastLocked()
}

// Close heals, closes every live connection it wrapped and makes later dials
// fail with net.ErrClosed. It is idempotent.
func (f *Faults) Close() error {
	f.mu.Lock()
	f.closed = true
	clear(f.rules)
	f.broadcastLocked()
	f.mu.Unlock()
	for _, c := range f.live(linkKey{}) {
		c.Close()
	}
	return nil
}

// Dial is a Config.Dial that obeys the faults of the link to addr, and of
// the raft group a Mux names in ctx.
func (f *Faults) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	group := dialGroup(ctx)
	for {
		r, changed, closed := f.state(addr, group)
		if closed {
			return nil, fmt.Errorf("transport faults: %w", net.ErrClosed)
		}
		if !r.blocked {
			if err := sleep(ctx, r.delay); err != nil {
				return nil, fmt.Errorf("transport faults: delayed dial: %w", err)
			}
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("transport faults: link to %s blocked: %w", addr, ctx.Err())
		}
	}
	conn, err := f.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return f.track(conn, addr, group)
}

// WrapListener is a Config.WrapListener whose accepted connections obey the
// faults of the link to their remote address.
func (f *Faults) WrapListener(ln net.Listener) net.Listener {
	return &faultListener{Listener: ln, faults: f}
}

type faultListener struct {
	net.Listener
	faults *Faults
}

func (l *faultListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		// Once the Faults are closed, track drops the connection; the
		// listener keeps going until its owner closes it.
		if fc, err := l.faults.track(conn, conn.RemoteAddr().String(), 0); err == nil {
			return fc, nil
		}
	}
}

func (f *Faults) update(key linkKey, change func(*rule)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rules[key]
	change(&r)
	if r == (rule{}) {
		delete(f.rules, key)
	} else {
		f.rules[key] = r
	}
	f.broadcastLocked()
}

func (f *Faults) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// state returns the rule in force on a stream of group (0: none known) on
// the link to remote, its host:port and host rules for all groups and for
// group combined, and a channel closed at the next change.
func (f *Faults) state(remote string, group uint64) (r rule, changed <-chan struct{}, closed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, name := range linkNames(remote) {
		r = r.merge(f.rules[linkKey{name, 0}])
		if group != 0 {
			r = r.merge(f.rules[linkKey{name, group}])
		}
	}
	return r, f.changed, f.closed
}

// merge is the rule in force where both r and x apply.
func (r rule) merge(x rule) rule {
	return rule{blocked: r.blocked || x.blocked, holdIn: r.holdIn || x.holdIn, delay: max(r.delay, x.delay)}
}

// live returns the open connections that key selects; an empty name selects
// every link.
func (f *Faults) live(key linkKey) []*faultConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*faultConn
	for c := range f.conns {
		if key.group != 0 && c.group.Load() != key.group {
			continue
		}
		for _, name := range linkNames(c.remote) {
			if key.name == "" || key.name == name {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// linkNames are the names that select the link to remote: itself and its host.
func linkNames(remote string) []string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return []string{remote, host}
	}
	return []string{remote}
}

func (f *Faults) track(conn net.Conn, remote string, group uint64) (net.Conn, error) {
	c := &faultConn{Conn: conn, faults: f, remote: remote, done: make(chan struct{}), kick: make(chan struct{})}
	c.group.Store(group)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		conn.Close()
		return nil, fmt.Errorf("transport faults: %w", net.ErrClosed)
	}
	f.conns[c] = struct{}{}
	return c, nil
}

// faultConn is a connection whose reads and writes obey its link's faults.
type faultConn struct {
	net.Conn
	faults    *Faults
	remote    string
	group     atomic.Uint64 // raft group of the stream; 0 until known
	done      chan struct{} // closed by Close
	closeOnce sync.Once

	mu            sync.Mutex
	readDeadline  time.Time
	writeDeadline time.Time
	kick          chan struct{} // closed and replaced when a deadline changes
	held          []byte        // read while the link was blocked; delivered once it opens
	heldErr       error
}

func (c *faultConn) Read(p []byte) (int, error) {
	if err := c.waitOpen(true); err != nil {
		return 0, c.opError("read", err)
	}
	c.mu.Lock()
	if len(c.held) > 0 || c.heldErr != nil {
		n := copy(p, c.held)
		c.held = c.held[n:]
		var err error
		if len(c.held) == 0 {
			err, c.heldErr = c.heldErr, nil
		}
		c.mu.Unlock()
		return n, err
	}
	c.mu.Unlock()

	n, err := c.Conn.Read(p)
	if n == 0 {
		return n, err
	}
	// The link may have been blocked while this Read waited for data.
	if werr := c.waitOpen(true); werr != nil {
		c.mu.Lock()
		c.held = append(c.held, p[:n]...)
		c.heldErr = err
		c.mu.Unlock()
		return 0, c.opError("read", werr)
	}
	return n, err
}

func (c *faultConn) Write(p []byte) (int, error) {
	r, _, _ := c.faults.state(c.remote, c.group.Load())
	if r.delay > 0 {
		deadline, _ := c.deadline(false)
		if err := c.pause(time.Now().Add(r.delay), deadline, nil, nil); err != nil {
			return 0, c.opError("write", err)
		}
	}
	if err := c.waitOpen(false); err != nil {
		return 0, c.opError("write", err)
	}
	return c.Conn.Write(p)
}

// waitOpen blocks while the link is blocked in the direction of the call.
func (c *faultConn) waitOpen(read bool) error {
	for {
		r, changed, _ := c.faults.state(c.remote, c.group.Load())
		if !r.blocked && !(read && r.holdIn) {
			return nil
		}
		deadline, kick := c.deadline(read)
		if err := c.pause(time.Time{}, deadline, changed, kick); err != nil {
			return err
		}
	}
}

// pause waits until the time until (zero: forever) or a wake channel fires,
// and fails at the deadline (zero: none) or when the connection is closed.
func (c *faultConn) pause(until, deadline time.Time, wake1, wake2 <-chan struct{}) error {
	var ready, expired <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		ready = t.C
	}
	if !deadline.IsZero() {
		if !time.Now().Before(deadline) {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-ready:
		return nil
	case <-wake1:
		return nil
	case <-wake2:
		return nil
	case <-expired:
		return os.ErrDeadlineExceeded
	case <-c.done:
		return net.ErrClosed
	}
}

func (c *faultConn) deadline(read bool) (time.Time, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if read {
		return c.readDeadline, c.kick
	}
	return c.writeDeadline, c.kick
}

func (c *faultConn) setDeadlines(read, write bool, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if read {
		c.readDeadline = t
	}
	if write {
		c.writeDeadline = t
	}
	close(c.kick)
	c.kick = make(chan struct{})
}

func (c *faultConn) SetDeadline(t time.Time) error {
	c.setDeadlines(true, true, t)
	return c.Conn.SetDeadline(t)
}

func (c *faultConn) SetReadDeadline(t time.Time) error {
	c.setDeadlines(true, false, t)
	return c.Conn.SetReadDeadline(t)
}

func (c *faultConn) SetWriteDeadline(t time.Time) error {
	c.setDeadlines(false, true, t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *faultConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		close(c.done)
		c.faults.mu.Lock()
		delete(c.faults.conns, c)
		c.faults.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

// tagGroup records the raft group of an accepted stream, once a Mux has
// read it from the stream's header, so the group's faults apply from then on.
func (c *faultConn) tagGroup(group uint64) { c.group.Store(group) }

func (c *faultConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// GroupFaults are the faults of one raft group's streams on a node's links,
// for tests that break one group and leave the others alone. Links are named
// as for [Faults]. They need a [Mux] on both ends of the link, because only a
// Mux's streams name their group; a plain Layer's streams obey only the
// faults of the whole link.
//
// On the accepting node a stream's group is known once its header has been
// read, so a group's Block holds an accepted stream after its header, and
// that node's whole-link faults hold the header itself.
type GroupFaults struct {
	f     *Faults
	group uint64
}

// Group returns the faults of raft group id's streams. Group 0 names no group:
// its faults are f's own, on every stream.
func (f *Faults) Group(id uint64) GroupFaults { return GroupFaults{f, id} }

// Block blackholes the group's streams on the link to addr, as Faults.Block
// does the whole link.
func (g GroupFaults) Block(addr string) {
	g.f.update(linkKey{addr, g.group}, func(r *rule) { r.blocked = true })
}

// HoldIncoming holds back the data arriving on the group's streams on the
// link to addr, as Faults.HoldIncoming does on the whole link.
func (g GroupFaults) HoldIncoming(addr string) {
	g.f.update(linkKey{addr, g.group}, func(r *rule) { r.holdIn = true })
}

// Delay holds every dial and write of the group's streams on the link to
// addr for d. Zero removes the delay.
func (g GroupFaults) Delay(addr string, d time.Duration) {
	g.f.update(linkKey{addr, g.group}, func(r *rule) { r.delay = d })
}

// Reset closes the group's live streams on the link to addr.
func (g GroupFaults) Reset(addr string) {
	for _, c := range g.f.live(linkKey{addr, g.group}) {
		c.Close()
	}
}

// Heal removes the group's Block, HoldIncoming and Delay on every link;
// faults of the whole link and of other groups stay.
func (g GroupFaults) Heal() {
	g.f.mu.Lock()
	defer g.f.mu.Unlock()
	for key := range g.f.rules {
		if key.group == g.group {
			delete(g.f.rules, key)
		}
	}
	g.f.broadcastLocked()
}
