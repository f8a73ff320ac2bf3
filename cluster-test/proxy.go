package clustertest

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Direction is one way of a proxied connection.
type Direction int

const (
	// Forward carries bytes from the dialing node to the listening one: the dialer's
	// requests (raft RPCs).
	Forward Direction = iota
	// Backward carries bytes from the listening node back to the dialer: its answers.
	Backward
)

// Fault is what a proxy does to one direction of its connections.
type Fault struct {
	// Blackhole stalls the direction: bytes are held, on established connections and new
	// ones alike, until the fault is lifted (then delivered, unless the connection was
	// closed meanwhile).
	Blackhole bool
	// Delay holds each chunk this long, plus a uniform random part of Jitter, keeping the
	// byte order.
	Delay, Jitter time.Duration
	// ResetProb is the chance that a chunk makes the proxy reset its connection (both
	// sides closed with RST) instead of forwarding it.
	ResetProb float64
}

// Proxy forwards one directed raft link, P(from→to): node `from` dials it instead of
// node `to`'s raft address.
type Proxy struct {
	From, To string
	Addr     string // where it listens
	target   string

	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	faults  [2]Fault
	changed chan struct{} // closed and replaced whenever faults change
	conns   map[*pipe]struct{}
	rng     *rand.Rand
	closed  bool
	resets  int
}

// newProxy listens on a free loopback port and forwards to target.
func newProxy(from, to, target string, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{From: from, To: to, Addr: ln.Addr().String(), target: target, ln: ln,
		changed: make(chan struct{}), conns: map[*pipe]struct{}{}, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Set replaces the fault of one direction.
func (p *Proxy) Set(d Direction, f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[d] = f
	close(p.changed)
	p.changed = make(chan struct{})
}

// Update changes the fault of one direction with fn.
func (p *Proxy) Update(d Direction, fn func(*Fault)) {
	p.mu.Lock()
	f := p.faults[d]
	p.mu.Unlock()
	fn(&f)
	p.Set(d, f)
}

// Fault returns the current fault of one direction.
func (p *Proxy) Fault(d Direction) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults[d]
}

// Reset closes every current connection with an RST.
func (p *Proxy) Reset() int {
	p.mu.Lock()
	list := make([]*pipe, 0, len(p.conns))
	for c := range p.conns {
		list = append(list, c)
	}
	p.mu.Unlock()
	for _, c := range list {
		c.reset()
	}
	return len(list)
}

// Close stops listening, resets every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.Reset()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			resetConn(down) // the target is down: refuse, as the target itself would
			continue
		}
		c := &pipe{p: p, down: down, up: up, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.reset()
			return
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go c.pump(Forward, down, up)
		go c.pump(Backward, up, down)
	}
}

// pipe is one proxied connection: down is the dialer's side, up the target's.
type pipe struct {
	p        *Proxy
	down, up net.Conn
	once     sync.Once
	done     chan struct{} // closed when the pipe is reset or finished
	mu       sync.Mutex
	halves   int // directions finished
}

type chunk struct {
	data   []byte
	readAt time.Time
	jitter float64 // fraction of the Jitter to add, drawn when read
	eof    bool
}

// pump copies src to dst under the proxy's fault for direction d: a reader goroutine
// queues chunks with their read time, and this goroutine delivers them.
func (c *pipe) pump(d Direction, src, dst net.Conn) {
	defer c.p.wg.Done()
	queue := make(chan chunk, 256)
	c.p.wg.Add(1)
	go func() { // ends when src fails or reaches EOF, which reset() forces
		defer c.p.wg.Done()
		defer close(queue)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				c.p.mu.Lock()
				j := c.p.rng.Float64()
				c.p.mu.Unlock()
				select {
				case queue <- chunk{data: buf[:n], readAt: time.Now(), jitter: j}:
				case <-c.done:
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					select {
					case queue <- chunk{eof: true}:
					case <-c.done:
					}
				}
				return
			}
		}
	}()
	var last time.Time
	for ch := range queue {
		if ch.eof {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			c.halfDone()
			return
		}
		at, ok := c.wait(d, ch, last)
		if !ok {
			return
		}
		last = at
		if _, err := dst.Write(ch.data); err != nil {
			c.reset()
			return
		}
	}
	// The reader stopped on an error (or the pipe was reset): tear the pipe down.
	c.reset()
}

// wait holds a chunk until the direction is not blackholed and its delay has passed; it
// returns the delivery time, or false if the pipe was reset meanwhile.
func (c *pipe) wait(d Direction, ch chunk, last time.Time) (time.Time, bool) {
	for {
		c.p.mu.Lock()
		f, changed := c.p.faults[d], c.p.changed
		c.p.mu.Unlock()
		if f.Blackhole {
			select {
			case <-changed:
				continue
			case <-c.done:
				return time.Time{}, false
			}
		}
		at := ch.readAt.Add(f.Delay + time.Duration(ch.jitter*float64(f.Jitter)))
		if at.Before(last) {
			at = last
		}
		if wait := time.Until(at); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-changed:
				t.Stop()
				continue
			case <-c.done:
				t.Stop()
				return time.Time{}, false
			}
		}
		if f.ResetProb > 0 {
			c.p.mu.Lock()
			hit := c.p.rng.Float64() < f.ResetProb
			if hit {
				c.p.resets++
			}
			c.p.mu.Unlock()
			if hit {
				c.reset()
				return time.Time{}, false
			}
		}
		return at, true
	}
}

// halfDone records one direction finished cleanly; when both are, the pipe is closed.
func (c *pipe) halfDone() {
	c.mu.Lock()
	c.halves++
	both := c.halves == 2
	c.mu.Unlock()
	if both {
		c.finish(false)
	}
}

// reset closes both sides with an RST.
func (c *pipe) reset() { c.finish(true) }

func (c *pipe) finish(rst bool) {
	c.once.Do(func() {
		close(c.done)
		if rst {
			resetConn(c.down)
			resetConn(c.up)
		} else {
			c.down.Close()
			c.up.Close()
		}
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	})
}

// resetConn closes a TCP connection with an RST rather than a FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
