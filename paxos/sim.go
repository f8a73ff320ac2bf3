package paxos

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
)

// The simulator is the only place where time passes and messages move. One seeded
// generator decides every drop, duplicate, delay and crash, and the clock is a tick
// counter, so a run is a pure function of its seed and configuration: a failure is
// reproduced by rerunning its seed.

// NetConfig is how unreliable the simulated network is.
type NetConfig struct {
	Drop      float64 // probability that a message is lost
	Duplicate float64 // probability that a message is delivered twice
	MinDelay  int     // ticks in flight, drawn from [MinDelay, MaxDelay]: reordering for free
	MaxDelay  int
}

// simNode is a role the simulator can drive: the single-decree roles and Replica.
type simNode interface {
	Step(Message) Output
	Tick() Output
}

// promiser is a node whose promise the observer watches.
type promiser interface{ Promised() Ballot }

// disk is what survives a crash: exactly what the node's Outputs asked to persist.
type disk struct {
	hs       HardState
	accepted map[uint64]Accepted
	learned  map[uint64]Value
}

func newDisk() *disk {
	return &disk{accepted: map[uint64]Accepted{}, learned: map[uint64]Value{}}
}

type envelope struct {
	at  int
	seq uint64
	m   Message
	dup bool
}

type msgQueue []envelope

func (q msgQueue) Len() int { return len(q) }
func (q msgQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q msgQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *msgQueue) Push(x any)   { *q = append(*q, x.(envelope)) }
func (q *msgQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// sim is a deterministic network of nodes.
type sim struct {
	seed    uint64
	rng     *rand.Rand
	now     int
	seq     uint64
	queue   msgQueue
	nodes   []simNode // by id; index 0 unused
	up      []bool
	disks   []*disk
	blocked map[[2]NodeID]bool
	net     NetConfig
	obs     *observer
	tr      *trace
	// rebuild makes a node from its disk after a crash (and for the first start).
	rebuild func(id NodeID, d *disk) simNode
	// apply hands learned slots to the node's state machine (Multi-Paxos); nil otherwise.
	apply func(id NodeID, entries []Accepted) error
	err   error // the first broken invariant; the run stops at it
	steps int
}

func newSim(seed uint64, n int, net NetConfig, obs *observer, rebuild func(NodeID, *disk) simNode) *sim {
	if net.MinDelay <= 0 {
		net.MinDelay = 1
	}
	net.MaxDelay = max(net.MaxDelay, net.MinDelay)
	s := &sim{seed: seed, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), net: net, obs: obs,
		rebuild: rebuild, blocked: map[[2]NodeID]bool{},
		nodes: make([]simNode, n+1), up: make([]bool, n+1), disks: make([]*disk, n+1)}
	for id := 1; id <= n; id++ {
		s.disks[id] = newDisk()
	}
	return s
}

// boot starts every node from an empty disk. It is separate from newSim so that rebuild
// may use the simulator (for seeds).
func (s *sim) boot() {
	for id := 1; id < len(s.nodes); id++ {
		s.nodes[id] = s.rebuild(NodeID(id), s.disks[id])
		s.up[id] = true
	}
}

// nodeSeed derives a node's jitter seed from the simulation's generator, so it too is a
// function of the run's seed.
func (s *sim) nodeSeed() uint64 { return s.rng.Uint64() }

// failf records the first invariant violation, naming the seed that replays it.
func (s *sim) failf(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("seed %d, t=%d, step %d: %s", s.seed, s.now, s.steps, fmt.Sprintf(format, args...))
		s.tr.notef(s.now, nil, "INVARIANT BROKEN: %v", s.err)
	}
}

// handle does what a host does with a node's Output — persist, apply, send — and then lets
// the observer check every invariant.
func (s *sim) handle(id NodeID, out Output) {
	s.steps++
	d := s.disks[id]
	if out.HardState != nil {
		d.hs = *out.HardState
	}
	for _, a := range out.Accepted {
		d.accepted[a.Slot] = a
	}
	for _, a := range out.Learned {
		d.learned[a.Slot] = a.Value
	}
	s.tr.events(s.now, out.Events)
	s.tr.endStep()
	if err := s.obs.observe(id, out); err != nil {
		s.failf("%v", err)
	}
	if len(out.Apply) > 0 && s.apply != nil {
		if err := s.apply(id, out.Apply); err != nil {
			s.failf("%s: %v", nodeName(id), err)
		}
	}
	if p, ok := s.nodes[id].(promiser); ok {
		if err := s.obs.promise(id, p.Promised()); err != nil {
			s.failf("%v", err)
		}
	}
	for _, m := range out.Msgs {
		s.send(m)
	}
}

func (s *sim) send(m Message) {
	if s.rng.Float64() < s.net.Drop {
		s.tr.message(s.now, m, "lost")
		return
	}
	copies := 1
	if s.rng.Float64() < s.net.Duplicate {
		copies = 2
	}
	for i := range copies {
		s.seq++
		at := s.now + s.net.MinDelay + s.rng.IntN(s.net.MaxDelay-s.net.MinDelay+1)
		heap.Push(&s.queue, envelope{at: at, seq: s.seq, m: m, dup: i == 1})
	}
}

// tick delivers every message due by now, then ticks every live node, then advances the clock.
func (s *sim) tick() {
	for len(s.queue) > 0 && s.queue[0].at <= s.now && s.err == nil {
		e := heap.Pop(&s.queue).(envelope)
		switch {
		case !s.up[e.m.To]:
			s.tr.message(s.now, e.m, "lost: "+nodeName(e.m.To)+" is down")
		case s.blocked[[2]NodeID{e.m.From, e.m.To}]:
			s.tr.message(s.now, e.m, "lost: partitioned")
		default:
			status := ""
			if e.dup {
				status = "duplicate"
			}
			s.tr.message(s.now, e.m, status)
			s.handle(e.m.To, s.nodes[e.m.To].Step(e.m))
		}
	}
	for id := 1; id < len(s.nodes) && s.err == nil; id++ {
		if s.up[id] {
			s.handle(NodeID(id), s.nodes[id].Tick())
		}
	}
	s.now++
}

// run ticks until done reports true or maxTicks pass; it reports whether done was reached.
func (s *sim) run(maxTicks int, done func() bool) bool {
	for end := s.now + maxTicks; s.now < end && s.err == nil; {
		if done() {
			return true
		}
		s.tick()
	}
	return s.err == nil && done()
}

// crash stops a node: its memory is gone, its disk stays, messages to it are lost.
func (s *sim) crash(id NodeID) {
	if !s.up[id] {
		return
	}
	s.up[id] = false
	s.tr.notef(s.now, []NodeID{id}, "%s crashes: memory lost, disk kept", nodeName(id))
}

// restart brings a node back from its disk alone.
func (s *sim) restart(id NodeID) {
	if s.up[id] {
		return
	}
	s.nodes[id] = s.rebuild(id, s.disks[id])
	s.up[id] = true
	s.tr.notef(s.now, []NodeID{id}, "%s restarts from its disk", nodeName(id))
	if p, ok := s.nodes[id].(promiser); ok {
		if err := s.obs.promise(id, p.Promised()); err != nil {
			s.failf("%v", err)
		}
	}
}

// isolate cuts every link between the nodes of group and the rest, in both directions.
func (s *sim) isolate(group ...NodeID) {
	in := map[NodeID]bool{}
	for _, g := range group {
		in[g] = true
	}
	for a := 1; a < len(s.nodes); a++ {
		for b := 1; b < len(s.nodes); b++ {
			if in[NodeID(a)] != in[NodeID(b)] {
				s.blocked[[2]NodeID{NodeID(a), NodeID(b)}] = true
			}
		}
	}
	s.tr.notef(s.now, group, "partition: %v cut off from the rest", names(group))
}

// block cuts the directed link from → to only (a node that can speak but not hear).
func (s *sim) block(from, to NodeID) {
	s.blocked[[2]NodeID{from, to}] = true
}

// heal restores every link.
func (s *sim) heal() {
	if len(s.blocked) == 0 {
		return
	}
	s.blocked = map[[2]NodeID]bool{}
	s.tr.notef(s.now, nil, "network heals: every link restored")
}

func names(ids []NodeID) []string {
	var ns []string
	for _, id := range slices.Sorted(slices.Values(ids)) {
		ns = append(ns, nodeName(id))
	}
	return ns
}
