package paxos

// Acceptor is the single-decree acceptor of "Paxos Made Simple": the memory of the
// protocol. Its whole state is three fields, all durable: the highest ballot it promised,
// and the ballot and value it last accepted. It answers messages and never acts on its own.
type Acceptor struct {
	id       NodeID
	learners []NodeID
	promised Ballot
	accepted Accepted // Ballot is zero until the first accept
	explain  bool
	faults   *faults
}

// NewAcceptor makes an acceptor that starts from the durable state a previous incarnation
// left (zero values for a fresh one) and sends its votes to the given learners.
func NewAcceptor(id NodeID, hs HardState, accepted Accepted, learners []NodeID) *Acceptor {
	return &Acceptor{id: id, learners: learners, promised: hs.Promised, accepted: accepted}
}

// restore is what a restart leaves of an acceptor: only what it persisted.
func (a *Acceptor) restore(hs HardState, acc Accepted) {
	a.promised, a.accepted = hs.Promised, acc
}

// Promised is the highest ballot this acceptor promised; it must never decrease.
func (a *Acceptor) Promised() Ballot { return a.promised }

// Tick does nothing: an acceptor is purely reactive, which is why any number of them can
// fail and recover without coordination.
func (a *Acceptor) Tick() Output { return Output{} }

// Step handles one message addressed to the acceptor.
func (a *Acceptor) Step(m Message) Output {
	var out Output
	switch m.Type {
	case MsgPrepare:
		a.prepare(m, &out)
	case MsgAccept:
		a.accept(m, &out)
	}
	return out
}

// prepare is phase 1(b).
func (a *Acceptor) prepare(m Message, out *Output) {
	if m.Ballot.Less(a.promised) {
		// Answering would be harmless but useless; the nack saves the proposer a timeout.
		out.note(a.explain, a.id, "P1b", "refuse prepare %s: already promised %s", m.Ballot, a.promised)
		out.send(Message{Type: MsgNack, From: a.id, To: m.From, Ballot: m.Ballot, Prior: a.promised})
		return
	}
	// "If an acceptor receives a prepare request with number n greater than that of any
	// prepare request to which it has already responded, then it responds with a promise
	// not to accept any more proposals numbered less than n and with the highest-numbered
	// proposal (if any) that it has accepted." An equal ballot is a duplicate of the prepare
	// already answered; answering it again repeats the same promise.
	a.promised = m.Ballot
	if a.faults == nil || !a.faults.forgetPromiseOnRestart {
		// The promise must be on disk before it is sent: a restarted acceptor that forgot it
		// could accept a lower ballot, and the proposer has already counted on it.
		out.HardState = &HardState{Promised: a.promised}
	}
	reply := Message{Type: MsgPromise, From: a.id, To: m.From, Ballot: m.Ballot}
	if !a.accepted.Ballot.IsZero() {
		reply.Entries = []Accepted{a.accepted}
		out.note(a.explain, a.id, "P1b", "promise %s, reporting accepted %s@%s so the proposer must keep it",
			m.Ballot, showValue(a.accepted.Value), a.accepted.Ballot)
	} else {
		out.note(a.explain, a.id, "P1b", "promise %s: nothing below it will be accepted; nothing accepted yet", m.Ballot)
	}
	out.send(reply)
}

// accept is phase 2(b).
func (a *Acceptor) accept(m Message, out *Output) {
	below := m.Ballot.Less(a.promised)
	if below && (a.faults == nil || !a.faults.acceptBelowPromise) {
		// P1a: "An acceptor can accept a proposal numbered n iff it has not responded to a
		// prepare request having a number greater than n."
		out.note(a.explain, a.id, "P1a", "refuse accept %s: promised %s", m.Ballot, a.promised)
		out.send(Message{Type: MsgNack, From: a.id, To: m.From, Ballot: m.Ballot, Prior: a.promised})
		return
	}
	if !below {
		// Accepting n is also a promise for n: nothing lower may be accepted from now on.
		a.promised = m.Ballot
	}
	a.accepted = Accepted{Slot: 1, Ballot: m.Ballot, Value: m.Value}
	out.HardState = &HardState{Promised: a.promised}
	out.Accepted = []Accepted{a.accepted}
	out.note(a.explain, a.id, "P1a", "accept %s=%s: no higher promise stands in the way", m.Ballot, showValue(m.Value))
	vote := Message{Type: MsgAccepted, From: a.id, Ballot: m.Ballot, Slot: 1, Value: m.Value}
	vote.To = m.From
	out.send(vote)
	for _, l := range a.learners {
		if l != m.From {
			vote.To = l
			out.send(vote)
		}
	}
}
