package paxos

import (
	"math/rand/v2"
	"slices"
)

// Config configures one Multi-Paxos replica.
type Config struct {
	ID    NodeID
	Peers []NodeID // every replica, this one included
	// CanLead lets this replica campaign. Replicas that cannot lead are still acceptors and
	// learners; the demo uses it to show a passive majority.
	CanLead bool
	// HeartbeatTicks is how often a leader says it is alive and retransmits what is open.
	HeartbeatTicks int
	// ElectionTicks is the base election timeout; each wait is drawn from
	// [ElectionTicks, 2*ElectionTicks) so rival candidates stop colliding.
	ElectionTicks int
	// Window bounds the slots a leader has proposed but not yet seen chosen. It bounds the
	// work a new leader must redo, and the memory an acceptor spends on undecided slots.
	Window int
	// CatchUpBatch is how many chosen slots one catch-up answer carries.
	CatchUpBatch int
	// Seed seeds the timeout jitter; the simulator derives it from its own seed.
	Seed uint64
}

func (c *Config) withDefaults() {
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = 2
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 10
	}
	if c.Window <= 0 {
		c.Window = 8
	}
	if c.CatchUpBatch <= 0 {
		c.CatchUpBatch = 16
	}
}

// Durable is what a replica keeps on stable storage: its acceptor state (one promise for
// every slot, and a vote per slot), its proposer round, and the slots it learned.
type Durable struct {
	HardState HardState
	Accepted  map[uint64]Accepted
	Learned   map[uint64]Value
}

type role uint8

const (
	follower role = iota
	candidate
	leader
)

// proposal is a slot a leader has asked the acceptors to accept.
type proposal struct {
	value Value
	acks  nodeSet
	age   int // heartbeats since proposed
}

// Replica is one member of a Multi-Paxos group: acceptor, learner and (when it leads)
// proposer for a log of slots. Like the single-decree roles it does no I/O: Step and Tick
// return an Output for the host to persist, apply and send.
//
// Multi-Paxos is single-decree Paxos run once per slot, with one saving: a promise is for
// every slot at once. A leader that has a majority's promise for ballot b may run phase 2
// for any slot without a new phase 1, until another ballot pre-empts it.
type Replica struct {
	cfg Config

	// Durable state (mirrored to the host through Output).
	promised Ballot
	maxRound uint64
	accepted map[uint64]Accepted
	learned  map[uint64]Value

	// Volatile state.
	firstUnlearned uint64 // every slot below it is learned
	handed         uint64 // highest slot handed to the host for applying
	role           role
	ballot         Ballot // our ballot while candidate or leader
	leader         NodeID // who we believe leads (0 = unknown)
	seenRound      uint64 // highest round seen in a refusal
	elapsed        int
	timeout        int
	rng            *rand.Rand

	// Candidate: who promised, and the highest-ballot vote reported per slot.
	promises  nodeSet
	recovered map[uint64]Accepted

	// Leader: open slots, the next free slot, and commands waiting for the window.
	open     map[uint64]*proposal
	nextSlot uint64
	queue    []Value

	explain bool
}

// NewReplica builds a replica from what a previous incarnation persisted (the zero Durable
// for a fresh one). applied is the state machine's applied index, so slots already applied
// are not handed out again; the host re-applies nothing after a restart.
func NewReplica(cfg Config, d Durable, applied uint64) *Replica {
	cfg.withDefaults()
	r := &Replica{
		cfg: cfg, promised: d.HardState.Promised, maxRound: d.HardState.MaxRound,
		accepted: map[uint64]Accepted{}, learned: map[uint64]Value{},
		handed: applied, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.ID))),
	}
	for s, a := range d.Accepted {
		r.accepted[s] = a
	}
	for s, v := range d.Learned {
		r.learned[s] = v
	}
	r.firstUnlearned = 1
	r.advance()
	r.resetElection()
	return r
}

// Promised is the highest ballot this replica promised; it must never decrease.
func (r *Replica) Promised() Ballot { return r.promised }

// IsLeader reports whether the replica currently leads.
func (r *Replica) IsLeader() bool { return r.role == leader }

// Leader is the replica believed to lead, 0 if unknown.
func (r *Replica) Leader() NodeID { return r.leader }

// FirstUnlearned is the first slot this replica does not know to be chosen.
func (r *Replica) FirstUnlearned() uint64 { return r.firstUnlearned }

func (r *Replica) quorum() int { return quorum(len(r.cfg.Peers), nil) }

func (r *Replica) resetElection() {
	r.elapsed = 0
	r.timeout = r.cfg.ElectionTicks + r.rng.IntN(r.cfg.ElectionTicks)
}

// Propose asks the group to choose v in some slot. A leader queues it; a follower forwards
// it to the leader it knows; without a leader it is dropped and the client must retry —
// with the same request id, which is why the fsm deduplicates.
func (r *Replica) Propose(v Value) Output {
	var out Output
	switch {
	case r.role == leader:
		r.queue = append(r.queue, v)
		r.fill(&out)
	case r.leader != 0 && r.leader != r.cfg.ID:
		out.send(Message{Type: MsgPropose, From: r.cfg.ID, To: r.leader, Value: v})
	default:
		out.note(r.explain, r.cfg.ID, "no leader", "drop %s: no leader known, the client will retry", showValue(v))
	}
	r.flush(&out)
	return out
}

// Tick advances the replica's clock by one tick.
func (r *Replica) Tick() Output {
	var out Output
	r.elapsed++
	switch r.role {
	case leader:
		if r.elapsed >= r.cfg.HeartbeatTicks {
			r.elapsed = 0
			r.heartbeat(&out)
		}
	default:
		if r.cfg.CanLead && r.elapsed >= r.timeout {
			r.campaign(&out)
		} else if r.role == candidate && r.elapsed%(2*r.cfg.HeartbeatTicks) == 0 {
			r.sendPrepares(&out) // lost prepares are simply sent again
		}
	}
	r.flush(&out)
	return out
}

// Step handles one message.
func (r *Replica) Step(m Message) Output {
	var out Output
	switch m.Type {
	case MsgPrepare:
		r.onPrepare(m, &out)
	case MsgPromise:
		r.onPromise(m, &out)
	case MsgAccept:
		r.onAccept(m, &out)
	case MsgAccepted:
		r.onAccepted(m, &out)
	case MsgNack:
		r.onNack(m, &out)
	case MsgHeartbeat:
		r.onHeartbeat(m, &out)
	case MsgChosen:
		r.learn(m.Slot, m.Value, &out)
	case MsgCatchUp:
		r.onCatchUp(m, &out)
	case MsgPropose:
		if r.role == leader {
			r.queue = append(r.queue, m.Value)
			r.fill(&out)
		} // else dropped: the client retries
	}
	r.flush(&out)
	return out
}

// --- acceptor -----------------------------------------------------------------------------

// onPrepare is phase 1(b) for every slot from m.Slot on at once.
func (r *Replica) onPrepare(m Message, out *Output) {
	if m.Ballot.Less(r.promised) {
		out.note(r.explain, r.cfg.ID, "P1b", "refuse prepare %s: promised %s", m.Ballot, r.promised)
		out.send(Message{Type: MsgNack, From: r.cfg.ID, To: m.From, Ballot: m.Ballot, Prior: r.promised})
		return
	}
	r.raisePromise(m.Ballot, out)
	// Giving a candidate our promise and then campaigning ourselves would only duel it.
	r.resetElection()
	reply := Message{Type: MsgPromise, From: r.cfg.ID, To: m.From, Ballot: m.Ballot, Slot: m.Slot}
	reply.Entries = r.votesFrom(m.Slot)
	out.note(r.explain, r.cfg.ID, "P1b", "promise %s for every slot ≥ %d, reporting %d vote(s)",
		m.Ballot, m.Slot, len(reply.Entries))
	out.send(reply)
}

func (r *Replica) votesFrom(slot uint64) []Accepted {
	var vs []Accepted
	for s, a := range r.accepted {
		if s >= slot {
			vs = append(vs, a)
		}
	}
	slices.SortFunc(vs, func(a, b Accepted) int { return int(a.Slot) - int(b.Slot) })
	return vs
}

// raisePromise records a higher promise, persisting it before any reply leaves, and steps
// down if it out-ranks our own ballot.
func (r *Replica) raisePromise(b Ballot, out *Output) {
	if b == r.promised {
		return
	}
	r.promised = b
	out.HardState = &HardState{Promised: r.promised, MaxRound: r.maxRound}
	if r.role != follower && r.ballot.Less(b) {
		out.note(r.explain, r.cfg.ID, "pre-empted", "step down: %s out-ranks our %s", b, r.ballot)
		r.stepDown()
	}
}

// onAccept is phase 2(b) for one slot.
func (r *Replica) onAccept(m Message, out *Output) {
	if m.Ballot.Less(r.promised) {
		// P1a: never accept below a promise.
		out.note(r.explain, r.cfg.ID, "P1a", "refuse accept %s s%d: promised %s", m.Ballot, m.Slot, r.promised)
		out.send(Message{Type: MsgNack, From: r.cfg.ID, To: m.From, Ballot: m.Ballot, Prior: r.promised})
		return
	}
	r.raisePromise(m.Ballot, out)
	r.leader = m.Ballot.Node
	r.resetElection()
	a := Accepted{Slot: m.Slot, Ballot: m.Ballot, Value: m.Value}
	if r.accepted[m.Slot] != a {
		r.accepted[m.Slot] = a
		out.Accepted = append(out.Accepted, a)
		out.note(r.explain, r.cfg.ID, "P1a", "accept s%d=%s under %s", m.Slot, showValue(m.Value), m.Ballot)
	}
	out.send(Message{Type: MsgAccepted, From: r.cfg.ID, To: m.From, Ballot: m.Ballot, Slot: m.Slot, Value: m.Value})
}

// --- learner ------------------------------------------------------------------------------

// learn records that slot is chosen with v. Only the leader, on a majority of votes, and
// replicas told by someone who learned it, call it: nothing is learned that was not chosen.
func (r *Replica) learn(slot uint64, v Value, out *Output) {
	if _, ok := r.learned[slot]; ok || slot < r.firstUnlearned {
		return
	}
	r.learned[slot] = v
	delete(r.open, slot) // a re-proposed slot may be learned from a catch-up first
	out.Learned = append(out.Learned, Accepted{Slot: slot, Value: v})
	r.advance()
}

// advance moves firstUnlearned past every contiguous learned slot.
func (r *Replica) advance() {
	for {
		if _, ok := r.learned[r.firstUnlearned]; !ok {
			return
		}
		r.firstUnlearned++
	}
}

// flush hands the host every learned slot that is now contiguous with what it applied.
// Slots are applied strictly in order; a learned slot behind a hole waits for the hole.
func (r *Replica) flush(out *Output) {
	for r.handed+1 < r.firstUnlearned {
		r.handed++
		out.Apply = append(out.Apply, Accepted{Slot: r.handed, Value: r.learned[r.handed]})
	}
}

// onHeartbeat keeps followers from campaigning and tells them how far the log is chosen.
func (r *Replica) onHeartbeat(m Message, out *Output) {
	if m.Ballot.Less(r.promised) {
		// A deposed leader that has not noticed yet: tell it.
		out.send(Message{Type: MsgNack, From: r.cfg.ID, To: m.From, Ballot: m.Ballot, Prior: r.promised})
		return
	}
	if r.role != follower && r.ballot.Less(m.Ballot) {
		out.note(r.explain, r.cfg.ID, "pre-empted", "step down: leader %s out-ranks our %s", m.Ballot, r.ballot)
		r.stepDown()
	}
	r.leader = m.Ballot.Node
	r.resetElection()
	if m.Commit > r.firstUnlearned {
		out.note(r.explain, r.cfg.ID, "catch-up", "leader has chosen up to s%d, we know up to s%d: ask for the rest",
			m.Commit-1, r.firstUnlearned-1)
		out.send(Message{Type: MsgCatchUp, From: r.cfg.ID, To: m.From, Slot: r.firstUnlearned})
	}
}

// onCatchUp answers a lagging or restarted replica with chosen slots it is missing. Any
// replica that learned them may answer; chosen values never change, so it is always safe.
func (r *Replica) onCatchUp(m Message, out *Output) {
	for s := m.Slot; s < m.Slot+uint64(r.cfg.CatchUpBatch); s++ {
		v, ok := r.learned[s]
		if !ok {
			break
		}
		out.send(Message{Type: MsgChosen, From: r.cfg.ID, To: m.From, Slot: s, Value: v})
	}
}
