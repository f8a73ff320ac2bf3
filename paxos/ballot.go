package paxos

import "strconv"

// NodeID names a participant. Ids are small positive integers so that a set of them fits in
// a bitmask and a trace stays readable; 0 means "nobody".
type NodeID int

// Ballot is a proposal number. Paxos only needs ballots to be totally ordered and never
// shared by two proposers, so a ballot is a round that each proposer raises, with the
// proposer's id as the tie-breaker: two proposers can pick the same round, never the same
// ballot. The zero Ballot is below every real one and means "none".
type Ballot struct {
	Round uint64
	Node  NodeID
}

// Less orders ballots by round, then by node.
func (b Ballot) Less(o Ballot) bool {
	if b.Round != o.Round {
		return b.Round < o.Round
	}
	return b.Node < o.Node
}

// IsZero reports whether b is the "no ballot" value.
func (b Ballot) IsZero() bool { return b == Ballot{} }

// String prints "round.node", e.g. "2.n1"; "-" for none.
func (b Ballot) String() string {
	if b.IsZero() {
		return "-"
	}
	return strconv.FormatUint(b.Round, 10) + "." + nodeName(b.Node)
}

// nodeName is the name a trace uses. Roles share one id space; the simulator decides which
// ids are acceptors and which proposers, so the name is neutral.
func nodeName(id NodeID) string { return "n" + strconv.Itoa(int(id)) }

// Value is what consensus is reached on: in single-decree demos a short word, in Multi-Paxos
// an encoded fsm.Command. A string is immutable and comparable, so a value can be shared
// between roles and checked for equality without copying.
type Value string

// Noop is the value a Multi-Paxos leader proposes to fill a hole it found on take-over: it
// lets the log behind the hole be applied without inventing a command.
const Noop Value = ""

// Accepted is one acceptor vote: the value it accepted for a slot and under which ballot.
// Single-decree Paxos uses slot 1 only.
type Accepted struct {
	Slot   uint64
	Ballot Ballot
	Value  Value
}

// quorum is the size of a majority of n. Any two majorities of the same n acceptors share
// at least one acceptor — the whole of Paxos's safety rests on that one member, who carries
// what was accepted in an earlier ballot into the later one.
func quorum(n int, f *faults) int {
	if f != nil && f.quorumOfOne {
		return 1
	}
	return n/2 + 1
}

// nodeSet is a set of node ids as a bitmask: cheap to copy, which the model checker does
// millions of times.
type nodeSet uint64

func (s nodeSet) has(id NodeID) bool    { return s&(1<<uint(id)) != 0 }
func (s nodeSet) add(id NodeID) nodeSet { return s | 1<<uint(id) }
func (s nodeSet) len() int {
	n := 0
	for ; s != 0; s &= s - 1 {
		n++
	}
	return n
}
