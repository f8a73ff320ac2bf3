package paxos

// Learner finds out which value was chosen by counting 2(b) votes: a value is chosen when a
// majority of acceptors accepted it under the same ballot. Votes are tallied per ballot,
// never added up across ballots: "chosen" — and the safety argument, P2 — is about one
// majority in one ballot.
type Learner struct {
	id       NodeID
	nAccept  int
	tallies  []tally // sorted by ballot; few ballots are ever live
	learned  Value
	hasValue bool
	explain  bool
	faults   *faults
}

type tally struct {
	ballot Ballot
	value  Value
	voters nodeSet
}

// NewLearner makes a learner for a group of n acceptors, restarting with a value it had
// already learned (and persisted) if any.
func NewLearner(id NodeID, nAcceptors int, learned *Value) *Learner {
	l := &Learner{id: id, nAccept: nAcceptors}
	if learned != nil {
		l.learned, l.hasValue = *learned, true
	}
	return l
}

// Learned reports the value learned, if any.
func (l *Learner) Learned() (Value, bool) { return l.learned, l.hasValue }

// Tick does nothing: learning is driven by votes.
func (l *Learner) Tick() Output { return Output{} }

// Step counts a vote, or takes the word of a proposer that counted a majority itself.
func (l *Learner) Step(m Message) Output {
	var out Output
	if m.Type == MsgChosen {
		if !l.hasValue || l.learned != m.Value {
			l.learned, l.hasValue = m.Value, true
			out.Learned = []Accepted{{Slot: 1, Value: m.Value}}
			out.note(l.explain, l.id, "learn", "%s saw a majority accept %s: learned it", nodeName(m.From), showValue(m.Value))
		}
		return out
	}
	if m.Type != MsgAccepted {
		return out
	}
	i := 0
	for i < len(l.tallies) && l.tallies[i].ballot.Less(m.Ballot) {
		i++
	}
	if i == len(l.tallies) || l.tallies[i].ballot != m.Ballot {
		l.tallies = append(l.tallies, tally{})
		copy(l.tallies[i+1:], l.tallies[i:])
		l.tallies[i] = tally{ballot: m.Ballot, value: m.Value}
	}
	t := &l.tallies[i]
	if t.voters.has(m.From) {
		return out // a duplicated vote is still one vote
	}
	t.voters = t.voters.add(m.From)
	if t.voters.len() != quorum(l.nAccept, l.faults) {
		return out
	}
	// A correct learner never sees a second value reach a majority; with a broken variant it
	// can, and reporting it lets the checkers catch it.
	if l.hasValue && l.learned == t.value {
		return out
	}
	l.learned, l.hasValue = t.value, true
	out.Learned = []Accepted{{Slot: 1, Ballot: t.ballot, Value: t.value}}
	out.note(l.explain, l.id, "learn", "a majority voted %s=%s: learned it", t.ballot, showValue(t.value))
	return out
}

// clone copies the learner for the model checker; tallies are the only shared part.
func (l *Learner) clone() *Learner {
	c := *l
	c.tallies = append([]tally(nil), l.tallies...)
	return &c
}
