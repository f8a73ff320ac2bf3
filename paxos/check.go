package paxos

import "fmt"

// observer checks the safety invariants after every simulated step. It sees each Output
// before its messages leave, so it judges "chosen" from votes the moment they are cast —
// the same definition the paper uses: a value is chosen when a majority of acceptors
// accepted it under one ballot.
type observer struct {
	acceptors int                                // how many acceptors make a majority
	votes     map[uint64]map[ballotValue]nodeSet // slot → (ballot, value) → voters
	chosen    map[uint64]Value
	learned   map[NodeID]map[uint64]Value
	promised  map[NodeID]Ballot
	applied   map[uint64]Value  // the one log every replica's applied prefix must match
	lastApply map[NodeID]uint64 // per replica: the last slot applied
	isAcc     func(NodeID) bool
}

type ballotValue struct {
	b Ballot
	v Value
}

func newObserver(acceptors int, isAcceptor func(NodeID) bool) *observer {
	return &observer{acceptors: acceptors, isAcc: isAcceptor,
		votes: map[uint64]map[ballotValue]nodeSet{}, chosen: map[uint64]Value{},
		learned: map[NodeID]map[uint64]Value{}, promised: map[NodeID]Ballot{},
		applied: map[uint64]Value{}, lastApply: map[NodeID]uint64{}}
}

func (o *observer) observe(id NodeID, out Output) error {
	if o.isAcc(id) {
		for _, a := range out.Accepted {
			if err := o.vote(id, a); err != nil {
				return err
			}
		}
	}
	for _, a := range out.Learned {
		c, ok := o.chosen[a.Slot]
		if !ok || c != a.Value {
			return fmt.Errorf("%s: %s learned s%d=%s, which was not chosen", invLearnedChosen, nodeName(id), a.Slot, showValue(a.Value))
		}
		l := o.learned[id]
		if l == nil {
			l = map[uint64]Value{}
			o.learned[id] = l
		}
		if old, ok := l[a.Slot]; ok && old != a.Value {
			return fmt.Errorf("%s: %s learned s%d=%s, then %s", invLearnedStable, nodeName(id), a.Slot, showValue(old), showValue(a.Value))
		}
		l[a.Slot] = a.Value
	}
	for _, a := range out.Apply {
		if a.Slot != o.lastApply[id]+1 {
			return fmt.Errorf("slots applied in order: %s applied s%d after s%d", nodeName(id), a.Slot, o.lastApply[id])
		}
		o.lastApply[id] = a.Slot
		if c, ok := o.chosen[a.Slot]; !ok || c != a.Value {
			return fmt.Errorf("%s: %s applied s%d=%s, which was not chosen", invLearnedChosen, nodeName(id), a.Slot, showValue(a.Value))
		}
		if v, ok := o.applied[a.Slot]; ok && v != a.Value {
			return fmt.Errorf("applied prefixes agree: %s applied s%d=%s, another replica %s", nodeName(id), a.Slot, showValue(a.Value), showValue(v))
		}
		o.applied[a.Slot] = a.Value
	}
	return nil
}

// vote records one acceptor's vote and re-judges what its slot has chosen.
func (o *observer) vote(id NodeID, a Accepted) error {
	vs := o.votes[a.Slot]
	if vs == nil {
		vs = map[ballotValue]nodeSet{}
		o.votes[a.Slot] = vs
	}
	k := ballotValue{a.Ballot, a.Value}
	vs[k] = vs[k].add(id)
	if vs[k].len() < quorum(o.acceptors, nil) {
		return nil
	}
	if c, ok := o.chosen[a.Slot]; ok && c != a.Value {
		return fmt.Errorf("%s (and a chosen value never changes): s%d chose %s, now %s under %s",
			invOneChosen, a.Slot, showValue(c), showValue(a.Value), a.Ballot)
	}
	o.chosen[a.Slot] = a.Value
	return nil
}

// promise checks that a node's promise never went down, across restarts included.
func (o *observer) promise(id NodeID, b Ballot) error {
	if old := o.promised[id]; b.Less(old) {
		return fmt.Errorf("%s: %s promised %s, now %s", invPromiseMonotone, nodeName(id), old, b)
	}
	o.promised[id] = b
	return nil
}
