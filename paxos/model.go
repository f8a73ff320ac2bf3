package paxos

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// The model checker explores every reachable state of single-decree Paxos for a small
// configuration, by breadth-first search over the very Acceptor, Proposer and Learner step
// functions the simulator runs. Breadth first means the first violation found of each
// invariant comes with a shortest counterexample.
//
// The network is modelled the way Lamport's TLA+ specification models it: a set of messages
// sent. Delivering a message does not remove it, so one model covers loss (never deliver),
// duplication (deliver again) and any reordering. Proposers may start a new ballot at any
// moment, as a timeout could make them; acceptors may restart at any moment, keeping only
// what they persisted.
//
// Three reductions keep the state space small enough to explore in seconds, none of which
// hides a behaviour that matters for safety:
//   - A message is removed once delivering it can no longer change anything (a prepare or
//     accept below the acceptor's promise, a reply to a ballot its proposer has left, a vote
//     already counted). It would only ever be a no-op, so keeping it just multiplies states.
//   - Nacks are not delivered. A nack only makes a proposer abandon its ballot early, which
//     is no different from every later reply being lost — a behaviour already explored.
//   - Fields of a proposer that its current phase never reads are left out of the state's
//     fingerprint, so states that differ only in dead data are one state.
// Which values were chosen is judged from a ghost record of every vote ever cast, kept
// beside the roles, because the messages that carried the votes may have been removed.

// modelConfig bounds the exploration.
type modelConfig struct {
	acceptors, proposers, learners int
	rounds                         int // highest round a proposer may start
	faults                         faults
	// stopAfter, when set, ends the search once each named invariant has been broken: the
	// mutation tests want a counterexample, not the whole (larger) space of a broken variant.
	stopAfter []string
}

// modelResult reports what the exploration saw.
type modelResult struct {
	states      int
	transitions int
	depth       int
	violations  []violation // the first (shortest) violation of each invariant, by name
}

type violation struct {
	invariant string
	detail    string
	trace     []string // the steps from the initial state
}

func (v violation) String() string {
	return fmt.Sprintf("%s after %d steps: %s\n  %s", v.invariant, len(v.trace), v.detail,
		strings.Join(v.trace, "\n  "))
}

// find returns the violation of the named invariant, if any.
func (r modelResult) find(invariant string) (violation, bool) {
	for _, v := range r.violations {
		if v.invariant == invariant {
			return v, true
		}
	}
	return violation{}, false
}

// Invariant names, shared with the simulator's observer.
const (
	invOneChosen       = "at most one value chosen"
	invLearnedChosen   = "only chosen values are learned"
	invLearnedStable   = "a learned value never changes"
	invPromiseMonotone = "promised never decreases"
)

type netMsg struct {
	key string
	m   Message
}

type modelState struct {
	acc   []Acceptor
	disk  []Accepted // what each acceptor persisted: Slot unused, Ballot is the promise...
	vote  []Accepted // ...and this is its persisted vote
	prop  []Proposer
	learn []*Learner
	net   []netMsg   // sorted by key, no duplicates
	votes []Accepted // ghost: every (acceptor in Slot, ballot, value) vote ever cast, sorted
}

type modelChecker struct {
	cfg  modelConfig
	ids  struct{ acc, prop, learn []NodeID }
	init modelState
	// limit and progress help when sizing a configuration: stop after limit states, report
	// each BFS level.
	limit    int
	progress func(depth, level, total int)
}

func newModelChecker(cfg modelConfig) *modelChecker {
	mc := &modelChecker{cfg: cfg}
	id := NodeID(1)
	for range cfg.acceptors {
		mc.ids.acc = append(mc.ids.acc, id)
		id++
	}
	for range cfg.proposers {
		mc.ids.prop = append(mc.ids.prop, id)
		id++
	}
	for range cfg.learners {
		mc.ids.learn = append(mc.ids.learn, id)
		id++
	}
	f := &mc.cfg.faults
	s := modelState{disk: make([]Accepted, cfg.acceptors), vote: make([]Accepted, cfg.acceptors)}
	for _, a := range mc.ids.acc {
		acc := NewAcceptor(a, HardState{}, Accepted{}, mc.ids.learn)
		acc.faults = f
		s.acc = append(s.acc, *acc)
	}
	for i, p := range mc.ids.prop {
		pr := NewProposer(p, Value(rune('A'+i)), mc.ids.acc, mc.ids.learn, 0, 0, 0)
		pr.faults, pr.rng = f, nil
		s.prop = append(s.prop, *pr)
	}
	for _, l := range mc.ids.learn {
		ln := NewLearner(l, cfg.acceptors, nil)
		ln.faults = f
		s.learn = append(s.learn, ln)
	}
	mc.init = s
	return mc
}

func (s *modelState) clone() modelState {
	c := modelState{
		acc: slices.Clone(s.acc), disk: slices.Clone(s.disk), vote: slices.Clone(s.vote),
		prop: slices.Clone(s.prop), net: s.net, votes: s.votes, learn: make([]*Learner, len(s.learn)),
	}
	for i, l := range s.learn {
		c.learn[i] = l.clone()
	}
	return c
}

// Actions are numbered so a path can be stored in 4 bytes per state and replayed.
const (
	actStart   = 0 // proposer i starts a ballot
	actDeliver = 1 // message i of the net is delivered
	actRestart = 2 // acceptor i restarts from its disk
)

func action(kind, i int) uint32 { return uint32(kind)<<24 | uint32(i) }

// apply performs action a on a copy of s, returning false if it is not enabled.
func (mc *modelChecker) apply(s *modelState, a uint32, describe bool) (modelState, bool, string) {
	kind, i := int(a>>24), int(a&0xffffff)
	var out Output
	var desc string
	switch kind {
	case actStart:
		p := &s.prop[i]
		if int(max(p.maxRound, p.seen)+1) > mc.cfg.rounds {
			return modelState{}, false, ""
		}
		n := s.clone()
		out = n.prop[i].Start()
		if describe {
			desc = fmt.Sprintf("%s starts ballot %s", nodeName(p.id), n.prop[i].ballot)
		}
		mc.absorb(&n, -1, out)
		return n, true, desc
	case actRestart:
		if s.acc[i].promised == s.disk[i].Ballot && s.acc[i].accepted == s.vote[i] {
			return modelState{}, false, "" // a restart that loses nothing changes nothing
		}
		n := s.clone()
		n.acc[i].restore(HardState{Promised: s.disk[i].Ballot}, s.vote[i])
		if describe {
			desc = fmt.Sprintf("%s restarts, keeping only its disk (promised %s)", nodeName(s.acc[i].id), s.disk[i].Ballot)
		}
		return n, true, desc
	}
	m := s.net[i].m
	n := s.clone()
	if describe {
		desc = fmt.Sprintf("%s → %s  %s", nodeName(m.From), nodeName(m.To), m)
	}
	switch {
	case int(m.To) <= len(n.acc):
		ai := int(m.To) - 1
		out = n.acc[ai].Step(m)
		mc.absorb(&n, ai, out)
	case int(m.To) <= len(n.acc)+len(n.prop):
		out = n.prop[int(m.To)-len(n.acc)-1].Step(m)
		mc.absorb(&n, -1, out)
	default:
		out = n.learn[int(m.To)-len(n.acc)-len(n.prop)-1].Step(m)
		mc.absorb(&n, -1, out)
	}
	return n, true, desc
}

// absorb does what a host does with an Output: persist (for acceptor ai), then send. It also
// records votes in the ghost history and drops messages that can no longer matter.
func (mc *modelChecker) absorb(n *modelState, ai int, out Output) {
	if ai >= 0 {
		if out.HardState != nil {
			n.disk[ai].Ballot = out.HardState.Promised
		}
		for _, a := range out.Accepted {
			n.vote[ai] = a
			rec := Accepted{Slot: uint64(ai), Ballot: a.Ballot, Value: a.Value}
			i, found := slices.BinarySearchFunc(n.votes, rec, cmpVote)
			if !found {
				n.votes = slices.Insert(slices.Clone(n.votes), i, rec)
			}
		}
	}
	net := make([]netMsg, 0, len(n.net)+len(out.Msgs))
	for _, x := range n.net {
		if mc.live(n, x.m) {
			net = append(net, x)
		}
	}
	for _, m := range out.Msgs {
		if m.Type == MsgNack || !mc.live(n, m) {
			continue
		}
		k := msgKey(m)
		i, found := slices.BinarySearchFunc(net, k, func(x netMsg, k string) int { return strings.Compare(x.key, k) })
		if !found {
			net = slices.Insert(net, i, netMsg{key: k, m: m})
		}
	}
	n.net = net
}

func cmpVote(a, b Accepted) int {
	if a.Slot != b.Slot {
		return int(a.Slot) - int(b.Slot)
	}
	if a.Ballot != b.Ballot {
		if a.Ballot.Less(b.Ballot) {
			return -1
		}
		return 1
	}
	return strings.Compare(string(a.Value), string(b.Value))
}

// live reports whether delivering m could still change state n. Ballots only grow, so a
// message found dead stays dead.
func (mc *modelChecker) live(n *modelState, m Message) bool {
	na, np := len(n.acc), len(n.prop)
	switch i := int(m.To) - 1; {
	case i < na:
		a := &n.acc[i]
		if m.Ballot.Less(a.promised) && (m.Type == MsgPrepare || !mc.cfg.faults.acceptBelowPromise) {
			return false // it can only be refused
		}
		return !(m.Type == MsgAccept && a.accepted.Ballot == m.Ballot && a.accepted.Value == m.Value)
	case i < na+np:
		p := &n.prop[i-na]
		if m.Ballot != p.ballot {
			return false
		}
		switch m.Type {
		case MsgPromise:
			return p.phase == phasePreparing && !p.promises.has(m.From)
		case MsgAccepted:
			return p.phase == phaseAccepting && !p.votes.has(m.From)
		}
		return false
	default:
		l := n.learn[i-na-np]
		if m.Type == MsgChosen {
			return !l.hasValue || l.learned != m.Value
		}
		for _, t := range l.tallies {
			if t.ballot == m.Ballot {
				return !t.voters.has(m.From)
			}
		}
		return true
	}
}

func msgKey(m Message) string {
	b := make([]byte, 0, 48)
	b = append(b, byte(m.Type), byte(m.From), byte(m.To))
	b = appendBallot(b, m.Ballot)
	b = appendBallot(b, m.Prior)
	b = append(b, m.Value...)
	for _, e := range m.Entries {
		b = appendBallot(b, e.Ballot)
		b = append(b, e.Value...)
	}
	return string(b)
}

func appendBallot(b []byte, x Ballot) []byte {
	b = binary.AppendUvarint(b, x.Round)
	return append(b, byte(x.Node))
}

// fingerprint is a 128-bit hash of the canonical encoding of a state. Storing hashes instead
// of the encodings keeps a million states in a few tens of megabytes; a collision at 128 bits
// is far less likely than a bug in the checker itself.
func (s *modelState) fingerprint() [16]byte {
	b := make([]byte, 0, 512)
	for i := range s.acc {
		b = appendBallot(b, s.acc[i].promised)
		b = appendBallot(b, s.acc[i].accepted.Ballot)
		b = append(b, s.acc[i].accepted.Value...)
		b = appendBallot(b, s.disk[i].Ballot)
		b = appendBallot(b, s.vote[i].Ballot)
		b = append(b, s.vote[i].Value...)
		b = append(b, '|')
	}
	for i := range s.prop {
		p := &s.prop[i]
		b = binary.AppendUvarint(b, p.maxRound)
		b = binary.AppendUvarint(b, p.seen)
		b = append(b, byte(p.phase))
		switch p.phase {
		case phasePreparing:
			b = appendBallot(b, p.ballot)
			b = binary.AppendUvarint(b, uint64(p.promises))
			b = appendBallot(b, p.highest.Ballot)
			b = append(b, p.highest.Value...)
		case phaseAccepting:
			b = appendBallot(b, p.ballot)
			b = binary.AppendUvarint(b, uint64(p.votes))
			b = append(b, p.value...)
		case phaseDecided:
			b = append(b, p.value...)
		}
		b = append(b, '|')
	}
	for _, l := range s.learn {
		for _, t := range l.tallies {
			b = appendBallot(b, t.ballot)
			b = append(b, t.value...)
			b = binary.AppendUvarint(b, uint64(t.voters))
		}
		if l.hasValue {
			b = append(b, '=')
			b = append(b, l.learned...)
		}
		b = append(b, '|')
	}
	for _, m := range s.net {
		b = append(b, m.key...)
		b = append(b, 0xff)
	}
	for _, v := range s.votes {
		b = append(b, byte(v.Slot))
		b = appendBallot(b, v.Ballot)
		b = append(b, v.Value...)
		b = append(b, 0xfe)
	}
	h := fnv.New128a()
	h.Write(b)
	var k [16]byte
	h.Sum(k[:0])
	return k
}

// check returns the invariants state n breaks, given the state p it was reached from.
func (mc *modelChecker) check(p, n *modelState) []violation {
	var vs []violation
	chosen := map[Value]bool{}
	type bv struct {
		b Ballot
		v Value
	}
	votes := map[bv]nodeSet{}
	for _, x := range n.votes {
		k := bv{x.Ballot, x.Value}
		votes[k] = votes[k].add(NodeID(x.Slot))
	}
	for k, s := range votes {
		// Chosen is defined with a true majority whatever quorum a faulty variant uses.
		if s.len() >= quorum(mc.cfg.acceptors, nil) {
			chosen[k.v] = true
		}
	}
	if len(chosen) > 1 {
		vs = append(vs, violation{invariant: invOneChosen, detail: fmt.Sprintf("chosen: %v", sortedValues(chosen))})
	}
	learned := func(who NodeID, v Value) {
		if !chosen[v] {
			vs = append(vs, violation{invariant: invLearnedChosen,
				detail: fmt.Sprintf("%s learned %s, which no majority accepted", nodeName(who), showValue(v))})
		}
	}
	for i, l := range n.learn {
		if l.hasValue {
			learned(l.id, l.learned)
			if old := p.learn[i]; old.hasValue && old.learned != l.learned {
				vs = append(vs, violation{invariant: invLearnedStable,
					detail: fmt.Sprintf("%s learned %s, then %s", nodeName(l.id), old.learned, l.learned)})
			}
		}
	}
	for i := range n.prop {
		if v, ok := n.prop[i].Decided(); ok {
			learned(n.prop[i].id, v)
		}
	}
	for i := range n.acc {
		if n.acc[i].promised.Less(p.acc[i].promised) {
			vs = append(vs, violation{invariant: invPromiseMonotone, detail: fmt.Sprintf("%s promised %s, then %s",
				nodeName(n.acc[i].id), p.acc[i].promised, n.acc[i].promised)})
		}
	}
	return vs
}

func sortedValues(m map[Value]bool) []Value {
	var vs []Value
	for v := range m {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// run explores the whole state space (states past a violation are explored too, so every
// broken invariant is reported, each with its shortest counterexample).
func (mc *modelChecker) run() modelResult {
	var res modelResult
	seen := map[[16]byte]int32{}
	parent := []int32{-1}
	via := []uint32{0}
	seen[mc.init.fingerprint()] = 0
	frontier := []modelState{mc.init}
	ids := []int32{0}
	reported := map[string]bool{}
	for len(frontier) > 0 {
		var next []modelState
		var nextIDs []int32
		for fi := range frontier {
			s := &frontier[fi]
			nActs := len(s.prop) + len(s.net) + len(s.acc)
			for k := range nActs {
				var a uint32
				switch {
				case k < len(s.prop):
					a = action(actStart, k)
				case k < len(s.prop)+len(s.net):
					a = action(actDeliver, k-len(s.prop))
				default:
					a = action(actRestart, k-len(s.prop)-len(s.net))
				}
				n, ok, _ := mc.apply(s, a, false)
				if !ok {
					continue
				}
				res.transitions++
				vs := mc.check(s, &n)
				fp := n.fingerprint()
				id, known := seen[fp]
				if !known {
					id = int32(len(parent))
					seen[fp] = id
					parent = append(parent, ids[fi])
					via = append(via, a)
					next = append(next, n)
					nextIDs = append(nextIDs, id)
				}
				for _, v := range vs {
					if reported[v.invariant] {
						continue
					}
					reported[v.invariant] = true
					if known { // reached by a different, no longer path: trace the edge itself
						v.trace = append(mc.replay(parent, via, ids[fi]), mc.describe(s, a))
					} else {
						v.trace = mc.replay(parent, via, id)
					}
					res.violations = append(res.violations, v)
				}
			}
		}
		if len(next) > 0 {
			res.depth++
		}
		if mc.progress != nil {
			mc.progress(res.depth, len(next), len(parent))
		}
		if mc.limit > 0 && len(parent) > mc.limit {
			break
		}
		if len(mc.cfg.stopAfter) > 0 && allReported(mc.cfg.stopAfter, reported) {
			break
		}
		frontier, ids = next, nextIDs
	}
	res.states = len(parent)
	return res
}

func (mc *modelChecker) describe(s *modelState, a uint32) string {
	_, _, d := mc.apply(s, a, true)
	return d
}

// replay rebuilds the path to state id by re-running the recorded actions from the start.
func (mc *modelChecker) replay(parent []int32, via []uint32, id int32) []string {
	var acts []uint32
	for ; id > 0; id = parent[id] {
		acts = append(acts, via[id])
	}
	slices.Reverse(acts)
	s := mc.init
	var trace []string
	for _, a := range acts {
		n, _, d := mc.apply(&s, a, true)
		trace = append(trace, d)
		s = n
	}
	return trace
}

func allReported(names []string, reported map[string]bool) bool {
	for _, n := range names {
		if !reported[n] {
			return false
		}
	}
	return true
}
