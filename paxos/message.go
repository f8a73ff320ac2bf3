package paxos

import (
	"fmt"
	"strings"
)

// MsgType is the kind of a message. The first four are the paper's phase 1a/1b/2a/2b; the
// rest are what a replicated log needs around them.
type MsgType uint8

// The messages. Nack is not in "Paxos Made Simple" (a proposer may simply wait), but the
// paper suggests it as an optimisation, and without it a pre-empted proposer only finds out
// by timing out.
const (
	MsgPrepare   MsgType = iota + 1 // 1a: "promise me nothing below Ballot"
	MsgPromise                      // 1b: the promise, with what the acceptor accepted so far
	MsgAccept                       // 2a: "accept Value in Slot under Ballot"
	MsgAccepted                     // 2b: the vote, sent to the proposer and the learners
	MsgNack                         // a refusal naming the higher ballot already promised
	MsgHeartbeat                    // Multi-Paxos: the leader is alive; Commit = its first unlearned slot
	MsgChosen                       // Multi-Paxos: Slot is chosen with Value (learners tell each other)
	MsgCatchUp                      // Multi-Paxos: "send me chosen slots from Slot on"
	MsgPropose                      // Multi-Paxos: a client command forwarded to the leader
)

var msgNames = [...]string{
	MsgPrepare: "prepare", MsgPromise: "promise", MsgAccept: "accept", MsgAccepted: "accepted",
	MsgNack: "nack", MsgHeartbeat: "heartbeat", MsgChosen: "chosen", MsgCatchUp: "catch-up",
	MsgPropose: "propose",
}

func (t MsgType) String() string {
	if int(t) < len(msgNames) && msgNames[t] != "" {
		return msgNames[t]
	}
	return fmt.Sprintf("msg(%d)", t)
}

// Message is everything that travels between roles. One struct for all types keeps the
// simulator, the model checker and the trace printer free of type switches; the comment on
// each MsgType says which fields it uses.
type Message struct {
	Type     MsgType
	From, To NodeID
	// Ballot is the ballot the message is about: the one being prepared, promised, proposed,
	// voted for or refused; the leader's ballot on a heartbeat.
	Ballot Ballot
	Slot   uint64 // accept, accepted, chosen; first slot of interest for prepare and catch-up
	Value  Value  // accept, accepted, chosen, propose
	// Prior is the higher ballot an acceptor already promised (nack).
	Prior Ballot
	// Entries are the acceptor's votes for slots at or above the prepare's Slot (promise).
	Entries []Accepted
	// Commit is the leader's first slot not yet known chosen (heartbeat).
	Commit uint64
}

// String is the short form a trace prints, e.g. "accept 2.n1 s3=v".
func (m Message) String() string {
	var b strings.Builder
	b.WriteString(m.Type.String())
	if m.Type != MsgPropose && m.Type != MsgChosen && m.Type != MsgCatchUp {
		b.WriteString(" " + m.Ballot.String())
	}
	switch m.Type {
	case MsgAccept, MsgAccepted, MsgChosen:
		fmt.Fprintf(&b, " s%d=%s", m.Slot, showValue(m.Value))
	case MsgPromise:
		if len(m.Entries) == 0 {
			b.WriteString(" (nothing accepted)")
		}
		for _, e := range m.Entries {
			fmt.Fprintf(&b, " s%d=%s@%s", e.Slot, showValue(e.Value), e.Ballot)
		}
	case MsgNack:
		b.WriteString(" promised " + m.Prior.String())
	case MsgHeartbeat:
		fmt.Fprintf(&b, " commit=%d", m.Commit)
	case MsgCatchUp:
		fmt.Fprintf(&b, " from s%d", m.Slot)
	case MsgPropose:
		b.WriteString(" " + showValue(m.Value))
	}
	return b.String()
}

// showValue renders a value for a trace. Multi-Paxos values are encoded commands; the demo
// installs a describer that decodes them, everything else prints the value itself.
func showValue(v Value) string {
	if v == Noop {
		return "no-op"
	}
	if valueDescriber != nil {
		return valueDescriber(v)
	}
	return string(v)
}

// valueDescriber turns encoded commands into words for traces. It is set once, at package
// initialisation (demo.go), and never changed.
var valueDescriber func(Value) string

// HardState is what a role must have on stable storage before any message it sends in the
// same Output leaves the process. Losing it breaks Paxos: an acceptor that forgets a promise
// may accept what it promised to refuse, and a proposer that forgets its round may reuse a
// ballot with a different value.
type HardState struct {
	Promised Ballot // acceptor: highest ballot promised (or accepted)
	MaxRound uint64 // proposer: highest round it has used
}

// Event explains one decision of a role, naming the rule it applies. Events are only built
// when a role is created with explain set (the demo and failing tests), never in the model
// checker's hot loop.
type Event struct {
	Node NodeID
	Rule string
	Text string
}

// Output is the result of feeding a role one message or one tick, in the style of
// etcd-io/raft's Ready. The host must, in this order: write HardState, Accepted and Learned
// to stable storage; hand Apply to the state machine; then send Msgs. Nothing in an Output
// has been done yet — the role does no I/O.
type Output struct {
	HardState *HardState // nil when unchanged
	Accepted  []Accepted // votes to persist (slot → ballot, value replaces the old vote)
	Learned   []Accepted // values this node has learned are chosen, to persist
	Apply     []Accepted // learned slots now contiguous: apply in order (Multi-Paxos)
	Msgs      []Message
	Events    []Event
}

func (o *Output) send(m Message) { o.Msgs = append(o.Msgs, m) }

// note records an Event when explaining is on. The text is built only then, so roles can
// explain themselves freely without slowing the model checker.
func (o *Output) note(explain bool, id NodeID, rule, format string, args ...any) {
	if explain {
		o.Events = append(o.Events, Event{Node: id, Rule: rule, Text: fmt.Sprintf(format, args...)})
	}
}
