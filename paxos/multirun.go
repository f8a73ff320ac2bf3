package paxos

import (
	"fmt"
	"path/filepath"

	"github.com/flashstock/flashstock/fsm"
)

// This file runs the inventory state machine on Multi-Paxos in the simulator: each replica
// owns its own fsm file, decided slot s is fsm log index s, and slots are applied strictly
// in order. Clients retry a command until some replica applies it, so one command may be
// decided in two slots; the fsm's exactly-once table makes the second a no-op.

// multiConfig describes a Multi-Paxos group in the simulator.
type multiConfig struct {
	replicas   int
	leaders    int // replicas 1..leaders may lead; 0 means all
	net        NetConfig
	window     int
	retryTicks int // a client re-sends a command not applied after this long
	explain    bool
	dir        string // where the fsm files live
}

// clientCmd is one command a client wants applied, and what became of it.
type clientCmd struct {
	value   Value
	id      string
	sentAt  int
	target  NodeID
	done    bool
	result  fsm.Result // the first result any replica produced for it
	retries int
}

type multiRun struct {
	*sim
	cfg      multiConfig
	machines []*fsm.Machine
	pending  []*clientCmd
	byID     map[string]*clientCmd
	fatal    error // a storage failure: not an invariant, but the run cannot go on
}

func machinePath(dir string, id NodeID) string {
	return filepath.Join(dir, fmt.Sprintf("%s.fsm", nodeName(id)))
}

func newMultiRun(seed uint64, cfg multiConfig, tr *trace) (*multiRun, error) {
	if cfg.retryTicks == 0 {
		cfg.retryTicks = 40
	}
	r := &multiRun{cfg: cfg, machines: make([]*fsm.Machine, cfg.replicas+1), byID: map[string]*clientCmd{}}
	var peers []NodeID
	for id := 1; id <= cfg.replicas; id++ {
		peers = append(peers, NodeID(id))
		m, err := fsm.Open(machinePath(cfg.dir, NodeID(id)), fsm.Options{NoSync: true})
		if err != nil {
			return nil, err
		}
		r.machines[id] = m
	}
	obs := newObserver(cfg.replicas, func(NodeID) bool { return true })
	r.sim = newSim(seed, cfg.replicas, cfg.net, obs, func(id NodeID, d *disk) simNode {
		rc := NewReplica(Config{ID: id, Peers: peers, CanLead: cfg.leaders == 0 || int(id) <= cfg.leaders,
			Window: cfg.window, Seed: r.nodeSeed()},
			Durable{HardState: d.hs, Accepted: d.accepted, Learned: d.learned}, r.machines[id].AppliedIndex())
		rc.explain = cfg.explain
		return rc
	})
	r.tr = tr
	r.apply = r.applyEntries
	r.boot()
	return r, nil
}

// applyEntries is the host's half of "decided slots applied strictly in order": the entries
// arrive in slot order from the replica, and the fsm skips any at or below its applied
// index, so a replay after a restart changes nothing.
func (r *multiRun) applyEntries(id NodeID, slots []Accepted) error {
	m := r.machines[id]
	entries := make([]fsm.Entry, len(slots))
	for i, a := range slots {
		entries[i] = fsm.Entry{Index: a.Slot, Data: []byte(a.Value)}
	}
	results, err := m.ApplyBatch(entries)
	if err != nil {
		r.fatal = err
		return fmt.Errorf("apply: %w", err)
	}
	if err := m.CheckInvariants(); err != nil {
		return fmt.Errorf("fsm invariants: %w", err)
	}
	for i, a := range slots {
		if a.Value == Noop {
			continue
		}
		cmd, err := fsm.Decode([]byte(a.Value))
		if err != nil {
			return fmt.Errorf("s%d holds an undecodable command: %w", a.Slot, err)
		}
		if c := r.byID[cmd.RequestID]; c != nil && !c.done {
			c.done, c.result = true, results[i]
		}
	}
	return nil
}

// submit queues a command; the client sends it at the next tick and retries until applied.
func (r *multiRun) submit(cmd fsm.Command) error {
	cmd.Time = 1_700_000_000_000 + int64(r.now)*10 // the proposer's clock: virtual, 10 ms a tick
	b, err := fsm.Encode(cmd)
	if err != nil {
		return err
	}
	c := &clientCmd{value: Value(b), id: cmd.RequestID, sentAt: -1 << 30}
	r.pending = append(r.pending, c)
	r.byID[cmd.RequestID] = c
	return nil
}

// step sends or re-sends client commands, then ticks the simulator. A client sends to the
// replica it last saw lead, else to a replica picked by the simulator's generator.
func (r *multiRun) step() {
	for _, c := range r.pending {
		if c.done || r.now-c.sentAt < r.cfg.retryTicks || r.err != nil {
			continue
		}
		if c.sentAt >= 0 {
			c.retries++
		}
		c.sentAt = r.now
		c.target = r.pickTarget()
		if c.target != 0 {
			r.handle(c.target, r.nodes[c.target].(*Replica).Propose(c.value))
		}
	}
	r.tick()
}

func (r *multiRun) pickTarget() NodeID {
	for id := 1; id < len(r.nodes); id++ {
		if r.up[id] && r.nodes[id].(*Replica).IsLeader() {
			return NodeID(id)
		}
	}
	var live []NodeID
	for id := 1; id < len(r.nodes); id++ {
		if r.up[id] {
			live = append(live, NodeID(id))
		}
	}
	if len(live) == 0 {
		return 0
	}
	return live[r.rng.IntN(len(live))]
}

// runUntil steps until done or maxTicks pass.
func (r *multiRun) runUntil(maxTicks int, done func() bool) bool {
	for end := r.now + maxTicks; r.now < end && r.err == nil; {
		if done() {
			return true
		}
		r.step()
	}
	return r.err == nil && done()
}

// clientsDone reports whether every submitted command has been applied somewhere.
func (r *multiRun) clientsDone() bool {
	for _, c := range r.pending {
		if !c.done {
			return false
		}
	}
	return true
}

// converged reports whether every live replica has applied the same prefix, and clients
// are done: the end state of a healed run.
func (r *multiRun) converged() bool {
	if !r.clientsDone() {
		return false
	}
	var idx uint64
	first := true
	for id := 1; id < len(r.nodes); id++ {
		if !r.up[id] {
			continue
		}
		a := r.machines[id].AppliedIndex()
		if !first && a != idx {
			return false
		}
		idx, first = a, false
		rp := r.nodes[id].(*Replica)
		if rp.FirstUnlearned()-1 != a {
			return false
		}
	}
	return true
}

// crashNode crashes a replica, closing its fsm file as a killed process would leave it.
func (r *multiRun) crashNode(id NodeID) {
	if !r.up[id] {
		return
	}
	r.crash(id)
	if err := r.machines[id].Close(); err != nil {
		r.fatal = err
	}
}

// restartNode reopens the replica's fsm file and rebuilds it from its disk.
func (r *multiRun) restartNode(id NodeID) {
	if r.up[id] {
		return
	}
	m, err := fsm.Open(machinePath(r.cfg.dir, id), fsm.Options{NoSync: true})
	if err != nil {
		r.fatal = err
		return
	}
	r.machines[id] = m
	r.restart(id)
}

// close closes every fsm file.
func (r *multiRun) close() {
	for id := 1; id < len(r.machines); id++ {
		if r.up[id] && r.machines[id] != nil {
			_ = r.machines[id].Close()
		}
	}
}

// decidedLog is the agreed log of applied slots, 1..n, as the observer saw it.
func (r *multiRun) decidedLog() []fsm.Entry {
	var log []fsm.Entry
	for s := uint64(1); ; s++ {
		v, ok := r.obs.applied[s]
		if !ok {
			return log
		}
		log = append(log, fsm.Entry{Index: s, Data: []byte(v)})
	}
}
