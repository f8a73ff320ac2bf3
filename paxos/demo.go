package paxos

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flashstock/flashstock/fsm"
)

// DemoConfig is what `stockctl paxos demo` runs. The same configuration and seed always
// print the same output, byte for byte.
type DemoConfig struct {
	Mode      string  // "single" (one value) or "multi" (a flash sale on the inventory fsm)
	Acceptors int     // single: acceptors; multi: replicas (each acceptor, learner, maybe leader)
	Proposers int     // single: competing proposers; multi: how many replicas may lead
	Drop      float64 // probability a message is lost
	Duplicate float64 // probability a message is delivered twice
	Crash     bool    // crash a node mid-run (an acceptor; in multi mode the leader) and restart it
	Partition bool    // cut a node off (a proposer with one acceptor; in multi the leader), then heal
	Seed      uint64
	Format    string // "text" or "mermaid"
}

// Validate names every broken rule of the configuration.
func (c DemoConfig) Validate() error {
	var errs []error
	if c.Mode != "single" && c.Mode != "multi" {
		errs = append(errs, fmt.Errorf("mode %q: want single or multi", c.Mode))
	}
	if c.Acceptors < 1 || c.Acceptors > 9 {
		errs = append(errs, fmt.Errorf("acceptors %d: want 1..9", c.Acceptors))
	}
	if c.Proposers < 1 || c.Proposers > 9 || (c.Mode == "multi" && c.Proposers > c.Acceptors) {
		errs = append(errs, fmt.Errorf("proposers %d: want 1..9 (in multi mode at most the replicas)", c.Proposers))
	}
	if c.Drop < 0 || c.Drop >= 1 || c.Duplicate < 0 || c.Duplicate >= 1 {
		errs = append(errs, errors.New("drop and duplicate are probabilities in [0, 1)"))
	}
	if c.Format != "text" && c.Format != "mermaid" {
		errs = append(errs, fmt.Errorf("format %q: want text or mermaid", c.Format))
	}
	return errors.Join(errs...)
}

// RunDemo runs one demo and writes its trace to w. It fails if the run broke an invariant
// (which would be a bug in this package) or did not finish.
func RunDemo(w io.Writer, c DemoConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	tr := &trace{w: w, mermaid: c.Format == "mermaid", quiet: map[MsgType]bool{MsgHeartbeat: true}}
	net := NetConfig{Drop: c.Drop, Duplicate: c.Duplicate, MinDelay: 1, MaxDelay: 3}
	if tr.mermaid {
		fmt.Fprintln(w, "sequenceDiagram")
		n := c.Acceptors
		if c.Mode == "single" {
			n += c.Proposers + 1
		}
		for id := 1; id <= n; id++ {
			fmt.Fprintf(w, "    participant %s\n", nodeName(NodeID(id)))
		}
	}
	if c.Mode == "single" {
		return demoSingle(w, tr, c, net)
	}
	return demoMulti(w, tr, c, net)
}

func (t *trace) headerf(format string, args ...any) {
	if t.mermaid {
		fmt.Fprintf(t.w, "    Note over n1: %s\n", mermaidText(fmt.Sprintf(format, args...)))
		return
	}
	fmt.Fprintf(t.w, "# "+format+"\n", args...)
}

func span(from, n int) string {
	if n == 1 {
		return nodeName(NodeID(from))
	}
	return nodeName(NodeID(from)) + "–" + nodeName(NodeID(from+n-1))
}

func demoSingle(w io.Writer, tr *trace, c DemoConfig, net NetConfig) error {
	tr.headerf("single-decree Paxos, seed %d: acceptors %s, proposers %s (proposing A, B, ...), learner %s",
		c.Seed, span(1, c.Acceptors), span(c.Acceptors+1, c.Proposers), span(c.Acceptors+c.Proposers+1, 1))
	tr.headerf("network: drop %.2f, duplicate %.2f, delay 1-3 ticks; crash %v, partition %v", c.Drop, c.Duplicate, c.Crash, c.Partition)
	r := newSingleRun(c.Seed, singleConfig{acceptors: c.Acceptors, proposers: c.Proposers, learners: 1,
		net: net, explain: true}, tr)
	if c.Partition {
		// The first proposer with one acceptor: a minority that must not decide alone.
		r.isolate(1, r.propIDs[0])
	}
	idle := func() bool { return false }
	if c.Crash {
		r.run(9, idle)
		r.crash(1)
		r.run(12, idle)
		r.restart(1)
	}
	if c.Partition {
		r.run(30-r.now, idle)
		r.heal()
	}
	done := r.run(2000, r.allLearned)
	if r.err != nil {
		return r.err
	}
	if !done {
		return fmt.Errorf("seed %d: nothing learned in time", c.Seed)
	}
	got, _ := r.learned()
	v := got[r.learnIDs[0]]
	tr.notef(r.now, nil, "chosen: %s (learned by %s at t=%d after %d steps)", showValue(v), nodeName(r.learnIDs[0]), r.now, r.steps)
	tr.notef(r.now, nil, "checked after every step: %s, %s, %s, %s", invOneChosen, invLearnedChosen, invLearnedStable, invPromiseMonotone)
	return nil
}

func demoMulti(w io.Writer, tr *trace, c DemoConfig, net NetConfig) error {
	dir, err := os.MkdirTemp("", "paxos-demo-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	const stock, buyers = 2, 4
	tr.headerf("Multi-Paxos running the inventory fsm, seed %d: replicas %s (%s may lead)", c.Seed, span(1, c.Acceptors), span(1, c.Proposers))
	tr.headerf("flash sale: %d phones, %d buyers; network: drop %.2f, duplicate %.2f, delay 1-3 ticks; crash %v, partition %v",
		stock, buyers, c.Drop, c.Duplicate, c.Crash, c.Partition)
	r, err := newMultiRun(c.Seed, multiConfig{replicas: c.Acceptors, leaders: c.Proposers, net: net, window: 4,
		retryTicks: 30, explain: true, dir: dir}, tr)
	if err != nil {
		return err
	}
	defer r.close()
	if err := r.submit(fsm.Command{Kind: fsm.KindCreateSKU, RequestID: "create", SKU: "phone", Qty: stock}); err != nil {
		return err
	}
	if !r.runUntil(2000, r.clientsDone) {
		return fmt.Errorf("seed %d: the SKU was never created: %v", c.Seed, r.err)
	}
	for b := range buyers {
		if err := r.submit(fsm.Command{Kind: fsm.KindDeduct, RequestID: fmt.Sprintf("buy-%d", b+1), SKU: "phone",
			Qty: 1, UserID: fmt.Sprintf("u%d", b+1)}); err != nil {
			return err
		}
	}
	idle := func() bool { return false }
	lead := r.pickTarget()
	r.runUntil(4, idle)
	if c.Crash && lead != 0 {
		r.crashNode(lead)
		r.runUntil(40, idle)
		r.restartNode(lead)
	}
	if c.Partition && lead != 0 {
		r.isolate(lead)
		r.runUntil(50, idle)
		r.heal()
	}
	done := r.runUntil(5000, r.converged)
	if r.err != nil {
		return r.err
	}
	if r.fatal != nil {
		return r.fatal
	}
	if !done {
		return fmt.Errorf("seed %d: the replicas did not converge in time", c.Seed)
	}
	log := r.decidedLog()
	tr.notef(r.now, nil, "decided log (%d slots, applied in order on every replica):", len(log))
	first := map[string]uint64{}
	for _, e := range log {
		note := ""
		if cmd, err := fsm.Decode(e.Data); err == nil {
			if s, ok := first[cmd.RequestID]; ok {
				note = fmt.Sprintf("   (a retry, decided again: same request id as s%d, so the fsm applies it once)", s)
			} else {
				first[cmd.RequestID] = e.Index
			}
		}
		tr.notef(r.now, nil, "  s%d: %s%s", e.Index, showValue(Value(e.Data)), note)
	}
	for _, cl := range r.pending {
		res := string(cl.result.Code)
		if cl.retries > 0 {
			res += fmt.Sprintf(" after %d retr%s", cl.retries, map[bool]string{true: "y", false: "ies"}[cl.retries == 1])
		}
		tr.notef(r.now, nil, "  %s → %s", cl.id, res)
	}
	var hashes []string
	for id := 1; id < len(r.machines); id++ {
		h, err := r.machines[id].StateHash()
		if err != nil {
			return err
		}
		hashes = append(hashes, fmt.Sprintf("%s %x", nodeName(NodeID(id)), h[:4]))
	}
	sku, err := r.machines[1].GetSKU("phone")
	if err != nil {
		return err
	}
	tr.notef(r.now, nil, "phone: available %d, sold %d of %d — state hash %s", sku.Available, sku.Sold, stock, strings.Join(hashes, ", "))
	tr.notef(r.now, nil, "checked after every step (%d steps): %s per slot, %s, %s, applied prefixes agree, fsm invariants hold",
		r.steps, invOneChosen, invLearnedChosen, invPromiseMonotone)
	return nil
}

// describeCommand renders an encoded fsm command for traces; values that are not commands
// (the single-decree demo's words) print as they are.
func describeCommand(v Value) string {
	cmd, err := fsm.Decode([]byte(v))
	if err != nil {
		return string(v)
	}
	switch cmd.Kind {
	case fsm.KindCreateSKU:
		return fmt.Sprintf("create(%s,%d)", cmd.SKU, cmd.Qty)
	case fsm.KindDeduct:
		return fmt.Sprintf("deduct(%s,%d,%s)", cmd.SKU, cmd.Qty, cmd.UserID)
	}
	return fmt.Sprintf("%s[%s]", cmd.Kind, cmd.RequestID)
}

func init() { valueDescriber = describeCommand }
