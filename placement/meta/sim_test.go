package meta_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

var (
	simSeed  = flag.Uint64("meta.seed", 0, "run TestMachine_DrivesThePlanner with this seed only")
	simSeeds = flag.Uint64("meta.seeds", 50, "run TestMachine_DrivesThePlanner with seeds 1..N (5 with -short)")
)

// entry is one entry of a simulated meta log.
type entry struct {
	index uint64
	data  []byte
}

// metaSim is the meta group of a cluster whose nodes join, drain, undrain and leave while
// a controller drives the planner through the log, as the meta group's leader will:
// Plan from the placement it reads, carry the steps out, record each with From chained
// from the version the previous one made, and plan again until nothing is left. Now and
// then a controller that lost the leadership proposes a command it planned from an older
// version.
type metaSim struct {
	rnd    *rand.Rand
	m      *meta.Machine
	log    []entry
	nextID int
	trail  []string
}

func (s *metaSim) logf(format string, args ...any) {
	s.trail = append(s.trail, fmt.Sprintf(format, args...))
}

// propose appends c to the log and applies it.
func (s *metaSim) propose(c meta.Command) (meta.Result, error) {
	b, err := meta.Encode(c)
	if err != nil {
		return meta.Result{}, fmt.Errorf("encode %+v: %w", c, err)
	}
	e := entry{index: uint64(len(s.log)) + 1, data: b}
	s.log = append(s.log, e)
	res := s.m.Apply(e.index, e.data)
	s.logf("%d: %s -> version %d, %v", e.index, b, res.Version, res.Err)
	return res, nil
}

// commit proposes c, which must apply and move the placement to a valid next version.
func (s *metaSim) commit(c meta.Command) error {
	before := s.m.Version()
	res, err := s.propose(c)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return fmt.Errorf("%s from version %d refused: %w", c.Kind, c.From, res.Err)
	}
	p := s.m.Placement()
	if p.Version != before+1 || res.Version != p.Version {
		return fmt.Errorf("%s: version %d -> %d (result %d), want +1", c.Kind, before, p.Version, res.Version)
	}
	if err := placement.Validate(&p); err != nil {
		return fmt.Errorf("%s made an invalid placement: %w", c.Kind, err)
	}
	return nil
}

// stale proposes c planned from an older version: it must be refused and change nothing.
func (s *metaSim) stale(c meta.Command) error {
	before := s.m.Placement()
	res, err := s.propose(c)
	if err != nil {
		return err
	}
	if !errors.Is(res.Err, placement.ErrStale) || res.Version != before.Version {
		return fmt.Errorf("a command planned from version %d at version %d: %v, version %d: want stale", c.From, before.Version, res.Err, res.Version)
	}
	if after := s.m.Placement(); !reflect.DeepEqual(before, after) {
		return fmt.Errorf("a stale command changed the placement")
	}
	return nil
}

func (s *metaSim) newNode() api.PlacementNode {
	s.nextID++
	id := fmt.Sprintf("n%02d", s.nextID)
	return api.PlacementNode{ID: id, RaftAddr: "127.0.0.1:" + fmt.Sprint(7000+s.nextID), HTTPAddr: "127.0.0.1:" + fmt.Sprint(8000+s.nextID)}
}

// converge runs the controller until the planner has nothing left.
func (s *metaSim) converge() error {
	for round := 0; ; round++ {
		if round > 200 {
			return fmt.Errorf("the planner still has steps after %d rounds", round)
		}
		p := s.m.Placement()
		live := make([]string, len(p.Nodes))
		for i, n := range p.Nodes {
			live[i] = n.ID
		}
		steps, err := placement.Plan(&p, live)
		if err != nil {
			return fmt.Errorf("plan: %w", err)
		}
		if len(steps) == 0 {
			return nil
		}
		from := p.Version
		for i, st := range steps {
			if err := s.commit(meta.Command{Kind: meta.RecordStep, From: from, Step: &st}); err != nil {
				return err
			}
			from++
			if i == 0 && s.rnd.IntN(3) == 0 {
				// The controller before this one planned the same round.
				if err := s.stale(meta.Command{Kind: meta.RecordStep, From: p.Version, Step: &steps[len(steps)-1]}); err != nil {
					return err
				}
			}
		}
	}
}

func (s *metaSim) run() error {
	var boot []api.PlacementNode
	for range 1 + s.rnd.IntN(5) {
		boot = append(boot, s.newNode())
	}
	if err := s.commit(meta.Command{Kind: meta.Bootstrap, Nodes: boot, DataGroups: 1 + s.rnd.IntN(8)}); err != nil {
		return err
	}
	for range 12 {
		if err := s.converge(); err != nil {
			return err
		}
		if err := s.event(); err != nil {
			return err
		}
	}
	return s.converge()
}

// event changes the cluster: a node joins, one drains or undrains, a drained one leaves.
func (s *metaSim) event() error {
	p := s.m.Placement()
	var active, draining []string
	for _, n := range p.Nodes {
		if n.State == api.NodeActive {
			active = append(active, n.ID)
		} else {
			draining = append(draining, n.ID)
		}
	}
	from := p.Version
	switch k := s.rnd.IntN(4); {
	case k == 0 || len(p.Nodes) < 2:
		n := s.newNode()
		return s.commit(meta.Command{Kind: meta.AddNode, From: from, Node: &n})
	case k == 1 && len(active) > 1:
		return s.commit(meta.Command{Kind: meta.SetNodeState, From: from, NodeID: active[s.rnd.IntN(len(active))], State: api.NodeDraining})
	case k == 2 && len(draining) > 0:
		return s.commit(meta.Command{Kind: meta.SetNodeState, From: from, NodeID: draining[s.rnd.IntN(len(draining))], State: api.NodeActive})
	case len(draining) > 0:
		// Converged: the planner has moved every replica off a draining node.
		return s.commit(meta.Command{Kind: meta.RemoveNode, From: from, NodeID: draining[s.rnd.IntN(len(draining))]})
	}
	return nil
}

func simSeedList() []uint64 {
	if *simSeed != 0 {
		return []uint64{*simSeed}
	}
	n := *simSeeds
	if testing.Short() {
		n = 5
	}
	var seeds []uint64
	for s := uint64(1); s <= n; s++ {
		seeds = append(seeds, s)
	}
	return seeds
}

func runSim(t *testing.T, seed uint64) *metaSim {
	t.Helper()
	s := &metaSim{rnd: rand.New(rand.NewPCG(seed, 17)), m: meta.New()}
	if err := s.run(); err != nil {
		t.Fatalf("seed %d: %v\nrerun with: go test ./placement/meta -run %s -meta.seed %d\nlast entries:\n%s",
			seed, err, t.Name(), seed, strings.Join(s.trail[max(0, len(s.trail)-20):], "\n"))
	}
	return s
}

// The machine carries the planner's whole life: bootstrap, nodes joining, draining,
// undraining and leaving, and the controller's steps until the planner has nothing left.
// Every command the controller records applies, the placement validates after each and
// its version grows by one; every command planned from an older version is refused and
// changes nothing.
func TestMachine_DrivesThePlanner(t *testing.T) {
	kinds := map[string]int{}
	for _, seed := range simSeedList() {
		s := runSim(t, seed)
		for _, e := range s.log {
			c, _ := meta.Decode(e.data)
			kinds[string(c.Kind)]++
			if c.Step != nil {
				kinds[string(c.Step.Kind)]++
			}
		}
	}
	t.Logf("%d seeds, entries by kind: %v", len(simSeedList()), kinds)
}

// The same log gives byte-identical snapshots: applied straight through, and applied
// from a snapshot taken part way by another machine, as a replica that restarts or
// catches up from a snapshot does.
func TestApply_SameLogSameSnapshot(t *testing.T) {
	for _, seed := range simSeedList()[:min(10, len(simSeedList()))] {
		s := runSim(t, seed)
		want := snapshot(t, s.m)
		straight := meta.New()
		for _, e := range s.log {
			straight.Apply(e.index, e.data)
		}
		half := len(s.log) / 2
		first := meta.New()
		for _, e := range s.log[:half] {
			first.Apply(e.index, e.data)
		}
		restored := meta.New()
		if err := restored.Restore(snapshot(t, first)); err != nil {
			t.Fatal(err)
		}
		for _, e := range s.log { // from the start: entries the snapshot covers are skipped
			restored.Apply(e.index, e.data)
		}
		for name, m := range map[string]*meta.Machine{"straight": straight, "restored": restored} {
			if got := snapshot(t, m); !bytes.Equal(got, want) {
				t.Errorf("seed %d: the %s replica's snapshot differs", seed, name)
			}
			if !slices.Equal([]uint64{m.Applied(), m.Version()}, []uint64{s.m.Applied(), s.m.Version()}) {
				t.Errorf("seed %d: the %s replica is at index %d version %d, want %d and %d", seed, name, m.Applied(), m.Version(), s.m.Applied(), s.m.Version())
			}
		}
	}
}
