package paxos

import "math/rand/v2"

// proposerPhase is where a single-decree proposer is in its current ballot.
type proposerPhase uint8

const (
	phaseIdle      proposerPhase = iota // no ballot running (fresh, restarted, or pre-empted)
	phasePreparing                      // 1a sent, collecting promises
	phaseAccepting                      // 2a sent, collecting votes
	phaseDecided                        // a majority voted for our 2a: the value is chosen
)

// Proposer is the single-decree proposer of "Paxos Made Simple". It wants its own value
// chosen but will propose whatever the acceptors force on it (P2c): a proposer's job is to
// get *some* value chosen, never its own at any cost.
//
// Its only durable state is the highest round it has used, so it never issues the same
// ballot twice — with possibly a different value the second time.
type Proposer struct {
	id        NodeID
	acceptors []NodeID
	learners  []NodeID
	own       Value // the value it proposes when free to choose

	maxRound uint64 // durable
	seen     uint64 // highest round learned from a nack: the next ballot must beat it

	phase    proposerPhase
	ballot   Ballot
	promises nodeSet
	highest  Accepted // highest-ballot vote reported in promises of this ballot
	value    Value    // what we asked the acceptors to accept in phase 2
	votes    nodeSet

	// Retrying is the only liveness mechanism of single-decree Paxos. Timeouts are drawn
	// from a seeded generator so two duelling proposers stop colliding — deterministically.
	elapsed, timeout, baseTimeout int
	rng                           *rand.Rand

	explain bool
	faults  *faults
}

// NewProposer makes a proposer for value own that tells learners what it saw chosen.
// maxRound is its durable state (0 when fresh); seed and timeoutTicks drive its retries.
func NewProposer(id NodeID, own Value, acceptors, learners []NodeID, maxRound uint64, seed uint64, timeoutTicks int) *Proposer {
	p := &Proposer{id: id, own: own, acceptors: acceptors, learners: learners, maxRound: maxRound,
		baseTimeout: timeoutTicks, rng: rand.New(rand.NewPCG(seed, uint64(id)))}
	p.resetTimer()
	return p
}

func (p *Proposer) resetTimer() {
	p.elapsed = 0
	if p.baseTimeout > 0 {
		p.timeout = p.baseTimeout + p.rng.IntN(p.baseTimeout)
	}
}

// Decided reports the value this proposer saw chosen, if any.
func (p *Proposer) Decided() (Value, bool) { return p.value, p.phase == phaseDecided }

// Tick advances the proposer's clock; when its ballot has taken too long — lost messages,
// a crashed majority, a rival with a higher ballot — it starts over with a higher one.
func (p *Proposer) Tick() Output {
	if p.baseTimeout == 0 {
		return Output{}
	}
	p.elapsed++
	if p.elapsed < p.timeout {
		return Output{}
	}
	if p.phase == phaseDecided {
		// The votes a learner counts may all have been lost, and nobody would ever send
		// them again: keep telling the learners what was chosen.
		var out Output
		p.resetTimer()
		p.tellLearners(&out)
		return out
	}
	return p.Start()
}

// tellLearners announces the chosen value: Lamport's "distinguished learner" shortcut, with
// the proposer that counted the majority playing that part.
func (p *Proposer) tellLearners(out *Output) {
	for _, l := range p.learners {
		out.send(Message{Type: MsgChosen, From: p.id, To: l, Slot: 1, Value: p.value})
	}
}

// Start begins phase 1(a) with a ballot higher than any this proposer used or saw.
func (p *Proposer) Start() Output {
	var out Output
	p.resetTimer()
	round := max(p.maxRound, p.seen) + 1
	p.maxRound = round
	// Persist the round before the prepare leaves: a proposer that restarts and reuses a
	// ballot could get two different values accepted under one ballot number.
	out.HardState = &HardState{MaxRound: round}
	p.ballot = Ballot{Round: round, Node: p.id}
	p.phase, p.promises, p.votes, p.highest, p.value = phasePreparing, 0, 0, Accepted{}, ""
	out.note(p.explain, p.id, "1a", "start ballot %s, above every round used or seen", p.ballot)
	for _, a := range p.acceptors {
		out.send(Message{Type: MsgPrepare, From: p.id, To: a, Ballot: p.ballot, Slot: 1})
	}
	return out
}

// Step handles one message addressed to the proposer.
func (p *Proposer) Step(m Message) Output {
	var out Output
	if m.Ballot != p.ballot {
		// Replies to an abandoned ballot carry no information about the current one.
		if m.Type == MsgNack && m.Prior.Round > p.seen {
			p.seen = m.Prior.Round
		}
		return out
	}
	switch m.Type {
	case MsgPromise:
		p.promise(m, &out)
	case MsgAccepted:
		p.accepted(m, &out)
	case MsgNack:
		if p.phase == phasePreparing || p.phase == phaseAccepting {
			p.seen = max(p.seen, m.Prior.Round)
			p.phase = phaseIdle
			out.note(p.explain, p.id, "pre-empted", "%s promised %s: abandon %s, retry after a timeout",
				nodeName(m.From), m.Prior, p.ballot)
		}
	}
	return out
}

// promise collects phase 1(b) answers and, with a majority, issues phase 2(a).
func (p *Proposer) promise(m Message, out *Output) {
	if p.phase != phasePreparing || p.promises.has(m.From) {
		return
	}
	p.promises = p.promises.add(m.From)
	for _, e := range m.Entries {
		if p.highest.Ballot.Less(e.Ballot) {
			p.highest = e
		}
	}
	if p.promises.len() < quorum(len(p.acceptors), p.faults) {
		return
	}
	// P2c: "there is a set S consisting of a majority of acceptors such that either (a) no
	// acceptor in S has accepted any proposal numbered less than n, or (b) v is the value of
	// the highest-numbered proposal among all proposals numbered less than n accepted by
	// the acceptors in S." The promises are S; p.highest is that proposal.
	p.value = p.own
	if !p.highest.Ballot.IsZero() && (p.faults == nil || !p.faults.ignorePromiseValues) {
		p.value = p.highest.Value
		out.note(p.explain, p.id, "P2c", "majority promised %s; must propose %s, accepted at %s",
			p.ballot, showValue(p.value), p.highest.Ballot)
	} else {
		out.note(p.explain, p.id, "P2c", "majority promised %s and none accepted anything: free to propose %s",
			p.ballot, showValue(p.value))
	}
	p.phase = phaseAccepting
	for _, a := range p.acceptors {
		out.send(Message{Type: MsgAccept, From: p.id, To: a, Ballot: p.ballot, Slot: 1, Value: p.value})
	}
}

// accepted counts phase 2(b) votes for our ballot: a majority means the value is chosen.
func (p *Proposer) accepted(m Message, out *Output) {
	if p.phase != phaseAccepting || p.votes.has(m.From) {
		return
	}
	p.votes = p.votes.add(m.From)
	if p.votes.len() < quorum(len(p.acceptors), p.faults) {
		return
	}
	p.phase = phaseDecided
	out.Learned = []Accepted{{Slot: 1, Ballot: p.ballot, Value: p.value}}
	out.note(p.explain, p.id, "chosen", "a majority accepted %s=%s: the value is chosen", p.ballot, showValue(p.value))
	p.tellLearners(out)
}
