package paxos

// singleConfig describes a single-decree Paxos group in the simulator: acceptors are nodes
// 1..A, proposers A+1..A+P (proposing "A", "B", ...), learners after them.
type singleConfig struct {
	acceptors, proposers, learners int
	net                            NetConfig
	timeoutTicks                   int // a proposer's base retry timeout
	explain                        bool
	faults                         *faults
}

// singleRun is a single-decree group running in a simulator.
type singleRun struct {
	*sim
	cfg                       singleConfig
	accIDs, propIDs, learnIDs []NodeID
}

func (c singleConfig) kind(id NodeID) string {
	switch {
	case int(id) <= c.acceptors:
		return "acceptor"
	case int(id) <= c.acceptors+c.proposers:
		return "proposer"
	}
	return "learner"
}

func newSingleRun(seed uint64, cfg singleConfig, tr *trace) *singleRun {
	if cfg.timeoutTicks == 0 {
		cfg.timeoutTicks = 8
	}
	r := &singleRun{cfg: cfg}
	id := NodeID(1)
	for range cfg.acceptors {
		r.accIDs = append(r.accIDs, id)
		id++
	}
	for range cfg.proposers {
		r.propIDs = append(r.propIDs, id)
		id++
	}
	for range cfg.learners {
		r.learnIDs = append(r.learnIDs, id)
		id++
	}
	n := int(id) - 1
	obs := newObserver(cfg.acceptors, func(id NodeID) bool { return int(id) <= cfg.acceptors })
	var s *sim
	build := func(id NodeID, d *disk) simNode {
		switch cfg.kind(id) {
		case "acceptor":
			a := NewAcceptor(id, d.hs, d.accepted[1], r.learnIDs)
			a.explain, a.faults = cfg.explain, cfg.faults
			return a
		case "proposer":
			i := int(id) - cfg.acceptors - 1
			p := NewProposer(id, Value(rune('A'+i)), r.accIDs, r.learnIDs, d.hs.MaxRound, s.nodeSeed(), cfg.timeoutTicks)
			p.explain, p.faults = cfg.explain, cfg.faults
			return p
		default:
			var learned *Value
			if v, ok := d.learned[1]; ok {
				learned = &v
			}
			l := NewLearner(id, cfg.acceptors, learned)
			l.explain, l.faults = cfg.explain, cfg.faults
			return l
		}
	}
	s = newSim(seed, n, cfg.net, obs, build)
	s.tr = tr
	s.boot()
	r.sim = s
	return r
}

// learned returns what every learner learned, and whether all of them learned something.
func (r *singleRun) learned() (map[NodeID]Value, bool) {
	got := map[NodeID]Value{}
	all := true
	for _, id := range r.learnIDs {
		v, ok := r.nodes[id].(*Learner).Learned()
		if ok {
			got[id] = v
		} else {
			all = false
		}
	}
	return got, all
}

// allLearned reports whether every learner has learned a value.
func (r *singleRun) allLearned() bool {
	_, all := r.learned()
	return all
}
