package paxos

// This file is the proposer side of a Multi-Paxos replica: campaigning (phase 1 for all
// slots at once), taking over a log, and running phase 2 slot after slot as a stable leader.

// campaign starts phase 1 with a ballot above everything seen. The replica promises its own
// ballot first — persisted with the round — so a restart can never reuse that ballot.
func (r *Replica) campaign(out *Output) {
	r.stepDown()
	r.resetElection() // a campaign that gets no answer is retried after a fresh timeout
	r.maxRound = max(r.promised.Round, r.maxRound, r.seenRound) + 1
	b := Ballot{Round: r.maxRound, Node: r.cfg.ID}
	r.raisePromise(b, out)
	r.role, r.ballot, r.leader = candidate, b, 0
	r.promises = nodeSet(0).add(r.cfg.ID)
	r.recovered = map[uint64]Accepted{}
	for _, a := range r.votesFrom(r.firstUnlearned) {
		r.recovered[a.Slot] = a
	}
	out.note(r.explain, r.cfg.ID, "1a", "election timeout: campaign with %s for every slot ≥ %d", b, r.firstUnlearned)
	if r.promises.len() >= r.quorum() {
		r.becomeLeader(out)
		return
	}
	r.sendPrepares(out)
}

// sendPrepares sends (or re-sends, to those that have not answered) the prepare.
func (r *Replica) sendPrepares(out *Output) {
	for _, p := range r.cfg.Peers {
		if !r.promises.has(p) {
			out.send(Message{Type: MsgPrepare, From: r.cfg.ID, To: p, Ballot: r.ballot, Slot: r.firstUnlearned})
		}
	}
}

// onPromise collects phase 1(b) answers: with a majority the candidate leads.
func (r *Replica) onPromise(m Message, out *Output) {
	if r.role != candidate || m.Ballot != r.ballot || r.promises.has(m.From) {
		return
	}
	r.promises = r.promises.add(m.From)
	for _, a := range m.Entries {
		// P2c, slot by slot: keep the vote with the highest ballot.
		if old, ok := r.recovered[a.Slot]; !ok || old.Ballot.Less(a.Ballot) {
			r.recovered[a.Slot] = a
		}
	}
	if r.promises.len() >= r.quorum() {
		r.becomeLeader(out)
	}
}

// becomeLeader takes over the log. Every slot from the first unlearned one up to the highest
// slot any promise mentioned gets a proposal under our ballot: the highest-ballot value
// reported (P2c — it may have been chosen), or a no-op for a hole nobody voted in (it was
// certainly not chosen, and the slots after it cannot be applied until it is filled).
func (r *Replica) becomeLeader(out *Output) {
	r.role, r.leader = leader, r.cfg.ID
	r.open = map[uint64]*proposal{}
	last := r.firstUnlearned - 1
	for s := range r.recovered {
		last = max(last, s)
	}
	for s := range r.learned {
		last = max(last, s)
	}
	reproposed, noops := 0, 0
	for s := r.firstUnlearned; s <= last; s++ {
		if _, ok := r.learned[s]; ok {
			continue
		}
		v := Noop
		if a, ok := r.recovered[s]; ok {
			v = a.Value
			reproposed++
		} else {
			noops++
		}
		r.propose(s, v, out)
	}
	r.nextSlot = last + 1
	r.recovered = nil
	out.note(r.explain, r.cfg.ID, "leader", "majority promised %s: lead from s%d, re-propose %d slot(s) (P2c), fill %d hole(s) with no-ops",
		r.ballot, r.firstUnlearned, reproposed, noops)
	r.heartbeat(out)
	r.fill(out)
}

// propose runs phase 2(a) for one slot. A leader is also an acceptor: it votes for its own
// proposal, persisting the vote like any other.
func (r *Replica) propose(slot uint64, v Value, out *Output) {
	p := &proposal{value: v}
	r.open[slot] = p
	a := Accepted{Slot: slot, Ballot: r.ballot, Value: v}
	if r.accepted[slot] != a {
		r.accepted[slot] = a
		out.Accepted = append(out.Accepted, a)
	}
	p.acks = p.acks.add(r.cfg.ID)
	for _, peer := range r.cfg.Peers {
		if peer != r.cfg.ID {
			out.send(Message{Type: MsgAccept, From: r.cfg.ID, To: peer, Ballot: r.ballot, Slot: slot, Value: v})
		}
	}
	r.maybeChosen(slot, p, out)
}

// fill proposes queued commands while the window has room. Phase 1 is not repeated: the
// promise we hold covers every slot.
func (r *Replica) fill(out *Output) {
	for len(r.queue) > 0 && r.nextSlot < r.firstUnlearned+uint64(r.cfg.Window) {
		v := r.queue[0]
		r.queue = r.queue[1:]
		out.note(r.explain, r.cfg.ID, "2a", "propose %s in s%d under %s, no phase 1 needed", showValue(v), r.nextSlot, r.ballot)
		r.propose(r.nextSlot, v, out)
		r.nextSlot++
	}
}

// onAccepted counts phase 2(b) votes for an open slot.
func (r *Replica) onAccepted(m Message, out *Output) {
	if r.role != leader || m.Ballot != r.ballot {
		return
	}
	p, ok := r.open[m.Slot]
	if !ok || p.acks.has(m.From) {
		return
	}
	p.acks = p.acks.add(m.From)
	r.maybeChosen(m.Slot, p, out)
}

func (r *Replica) maybeChosen(slot uint64, p *proposal, out *Output) {
	if p.acks.len() < r.quorum() {
		return
	}
	delete(r.open, slot)
	out.note(r.explain, r.cfg.ID, "chosen", "s%d=%s: a majority accepted it under %s", slot, showValue(p.value), r.ballot)
	r.learn(slot, p.value, out)
	for _, peer := range r.cfg.Peers {
		if peer != r.cfg.ID {
			out.send(Message{Type: MsgChosen, From: r.cfg.ID, To: peer, Slot: slot, Value: p.value})
		}
	}
	r.fill(out)
}

// onNack: a refusal of our current ballot means someone promised a higher one.
func (r *Replica) onNack(m Message, out *Output) {
	r.seenRound = max(r.seenRound, m.Prior.Round)
	if r.role != follower && m.Ballot == r.ballot && r.ballot.Less(m.Prior) {
		out.note(r.explain, r.cfg.ID, "pre-empted", "%s promised %s: step down from %s", nodeName(m.From), m.Prior, r.ballot)
		r.stepDown()
	}
}

// heartbeat tells followers we lead, and re-sends every open accept to those that have not
// voted: the network may have lost it, and the slot cannot be chosen without the votes.
func (r *Replica) heartbeat(out *Output) {
	for _, p := range r.open {
		p.age++
	}
	for _, peer := range r.cfg.Peers {
		if peer == r.cfg.ID {
			continue
		}
		out.send(Message{Type: MsgHeartbeat, From: r.cfg.ID, To: peer, Ballot: r.ballot, Commit: r.firstUnlearned})
		for _, s := range sortedSlots(r.open) {
			// Every other heartbeat: sooner would mostly duplicate accepts still in flight.
			if p := r.open[s]; !p.acks.has(peer) && p.age > 0 && p.age%2 == 0 {
				out.send(Message{Type: MsgAccept, From: r.cfg.ID, To: peer, Ballot: r.ballot, Slot: s, Value: p.value})
			}
		}
	}
}

// stepDown returns to follower. Queued commands are dropped: their clients retry through
// the next leader, with the same request ids.
func (r *Replica) stepDown() {
	if r.role == follower {
		return
	}
	r.role, r.open, r.queue, r.recovered, r.promises = follower, nil, nil, nil, 0
	r.leader = 0
	r.resetElection()
}

func sortedSlots(m map[uint64]*proposal) []uint64 {
	s := make([]uint64, 0, len(m))
	for k := range m {
		s = append(s, k)
	}
	for i := 1; i < len(s); i++ { // insertion sort: the window is small
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
