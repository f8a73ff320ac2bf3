package placement

import (
	"flag"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

var (
	simSeed  = flag.Int64("placement.seed", 0, "run TestPlan_ConvergesUnderChurn with this seed only")
	simSeeds = flag.Int64("placement.seeds", 100, "run TestPlan_ConvergesUnderChurn with seeds 1..N (10 with -short)")
)

// The planner's specification, checked on random histories: clusters of 1..7 nodes with
// 1..16 data groups grow, shrink, drain and lose nodes, and have replicas moved, leaders
// pinned and pins cleared by an operator, also in the middle of moves, while
// the planner's steps are carried out a random subset per round (some steps are slow), and
// BalanceLeaders' transfers once the planner has nothing left. After every step: the
// placement is valid (no node twice in a group, every slot owned, at most one move per
// data group), no removal or demotion leaves a group below its voter count, every node
// that hosts a data replica hosts the meta group (it joined the meta group first and
// leaves it last), no SKU changes group. Every plan has one step per group at most, so
// the meta group never changes two voters at once. At every fixpoint: each data group has
// min(3, active nodes) voters on good nodes, or all the good nodes and at most that many
// voters in all when there are fewer; the meta group is hosted by every active node and
// by a draining one only while it hosts data or must vote, and has metaVoterCount(active) voters on
// good nodes, or all the good nodes and at most that many voters in all; data replica and
// leader counts per good node are within one unless a group is pinned, and a pinned group
// is on its good pinned nodes, led by its pinned leader if that is good; every group is led
// by its preferred leader.
func TestPlan_ConvergesUnderChurn(t *testing.T) {
	n := *simSeeds
	if testing.Short() {
		n = 10
	}
	var seeds []int64
	for s := int64(1); s <= n; s++ {
		seeds = append(seeds, s)
	}
	if *simSeed != 0 {
		seeds = []int64{*simSeed}
	}
	var steps, events int
	defer func() { t.Logf("%d seeds: %d events, %d steps", len(seeds), events, steps) }()
	for _, seed := range seeds {
		s := newSim(t, seed)
		defer func() { steps += s.steps; events += len(s.trail) - s.steps }()
		if err := s.run(); err != nil {
			t.Fatalf("seed %d: %v\nrerun with: go test ./placement -run TestPlan_ConvergesUnderChurn -placement.seed %d\nlast events:\n%s",
				seed, err, seed, strings.Join(s.trail[max(0, len(s.trail)-30):], "\n"))
		}
	}
}

type sim struct {
	rnd    *rand.Rand
	p      *api.Placement
	up     map[string]bool // the nodes whose process runs
	nextID int
	skus   map[string]uint64 // SKU → its group at bootstrap
	trail  []string
	steps  int
}

func newSim(t *testing.T, seed int64) *sim {
	t.Helper()
	s := &sim{rnd: rand.New(rand.NewSource(seed)), up: map[string]bool{}, skus: map[string]uint64{}}
	var nodes []api.PlacementNode
	for range 1 + s.rnd.Intn(7) {
		nodes = append(nodes, s.newNode())
	}
	groups := 1 + s.rnd.Intn(16)
	p, err := Bootstrap(nodes, groups)
	if err != nil {
		t.Fatalf("seed %d: bootstrap %d nodes, %d groups: %v", seed, len(nodes), groups, err)
	}
	s.p = p
	for i := range 200 {
		sku := fmt.Sprintf("sku-%d-%d", seed, i)
		s.skus[sku] = p.GroupOf(sku).ID
	}
	s.logf("bootstrap %d nodes, %d data groups", len(nodes), groups)
	return s
}

func (s *sim) newNode() api.PlacementNode {
	s.nextID++
	id := fmt.Sprintf("n%02d", s.nextID)
	s.up[id] = true
	return api.PlacementNode{ID: id, RaftAddr: id + ":7000", HTTPAddr: id + ":8000"}
}

func (s *sim) logf(format string, args ...any) {
	s.trail = append(s.trail, fmt.Sprintf("v%d: ", s.p.Version)+fmt.Sprintf(format, args...))
}

func (s *sim) live() []string {
	var l []string
	for _, n := range s.p.Nodes {
		if s.up[n.ID] {
			l = append(l, n.ID)
		}
	}
	// The planner must not depend on the order it is told the live nodes in.
	s.rnd.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
	return l
}

func (s *sim) run() error {
	if err := s.settle(0); err != nil {
		return err
	}
	for range 12 {
		if err := s.event(); err != nil {
			return err
		}
		// Now and then the next event strikes before the planner is done.
		for s.rnd.Intn(3) == 0 {
			if err := s.settle(1 + s.rnd.Intn(4)); err != nil {
				return err
			}
			if err := s.event(); err != nil {
				return err
			}
		}
		if err := s.settle(0); err != nil {
			return err
		}
	}
	return nil
}

// event changes the cluster at random: a node joins, drains, comes back from draining,
// dies, comes back to life, or, once empty, leaves the placement.
func (s *sim) event() error {
	s.change()
	return s.checkSKUs()
}

func (s *sim) change() {
	var active, draining, down []string
	for _, n := range s.p.Nodes {
		switch {
		case !s.up[n.ID]:
			down = append(down, n.ID)
		case n.State == api.NodeActive:
			active = append(active, n.ID)
		default:
			draining = append(draining, n.ID)
		}
	}
	pick := func(ids []string) string { return ids[s.rnd.Intn(len(ids))] }
	switch k := s.rnd.Intn(9); {
	case k == 0 && len(s.p.Nodes) < 10:
		n := s.newNode()
		s.p = must(AddNode(s.p, n))
		s.logf("add %s", n.ID)
	case k == 1 && len(active) > 1:
		n := pick(active)
		s.p = must(SetNodeState(s.p, n, api.NodeDraining))
		s.logf("drain %s", n)
	case k == 2 && len(draining) > 0:
		n := pick(draining)
		s.p = must(SetNodeState(s.p, n, api.NodeActive))
		s.logf("undrain %s", n)
	case k == 3 && len(active) > 1:
		n := pick(active)
		if !s.survives(n) {
			return
		}
		s.up[n] = false
		for gi, g := range s.p.Groups {
			if g.Leader == n || g.Leader == "" {
				// raft elects one of the live voters
				var cands []string
				for _, v := range g.Voters() {
					if s.up[v] {
						cands = append(cands, v)
					}
				}
				s.p.Groups[gi].Leader = pick(cands)
			}
		}
		s.logf("kill %s", n)
	case k == 4 && len(down) > 0:
		n := pick(down)
		s.up[n] = true
		s.logf("revive %s", n)
	case k == 6 || k == 7:
		// An operator moves a replica or pins a leader, as the meta leader would let
		// him: checked against the placement, then against the live nodes.
		g := s.p.Groups[1+s.rnd.Intn(len(s.p.Groups)-1)]
		want := pinTarget(g)
		var q *api.Placement
		var err error
		var to string
		if k == 6 {
			from, to := pick(want), pick(append(active, draining...))
			q, err = MoveReplica(s.p, g.ID, from, to)
			s.logf("move group %d %s->%s: %v", g.ID, from, to, err)
		} else {
			to = pick(want)
			q, err = PinLeader(s.p, g.ID, to)
			s.logf("pin group %d leader %s: %v", g.ID, to, err)
		}
		if err == nil {
			if err = CheckLive(q, s.live(), g.ID, to); err == nil {
				s.p = q
			}
		}
	case k == 8:
		s.p = Unpin(s.p)
		s.logf("unpin")
	case k == 5:
		for _, n := range append(down, draining...) {
			if q, err := RemoveNode(s.p, n); err == nil {
				s.p = q
				s.logf("forget %s", n)
				return
			}
		}
	}
}

// survives reports whether every group keeps a live majority of voters without n: the
// simulation only kills what raft could survive.
func (s *sim) survives(n string) bool {
	for _, g := range s.p.Groups {
		vs := g.Voters()
		up := 0
		for _, v := range vs {
			if v != n && s.up[v] {
				up++
			}
		}
		if 2*up <= len(vs) {
			return false
		}
	}
	return true
}

// settle plans and steps until the planner and BalanceLeaders have nothing left (rounds
// 0), or for that many rounds.
func (s *sim) settle(rounds int) error {
	const limit = 2000
	for round := 0; rounds == 0 || round < rounds; round++ {
		if round == limit {
			return fmt.Errorf("no fixpoint after %d rounds", limit)
		}
		live := s.live()
		steps, err := Plan(s.p, live)
		if err != nil {
			return fmt.Errorf("plan: %w", err)
		}
		if err := s.checkPlan(steps, live); err != nil {
			return err
		}
		if len(steps) == 0 {
			if steps, err = BalanceLeaders(s.p, live); err != nil {
				return fmt.Errorf("balance leaders: %w", err)
			}
		}
		if len(steps) == 0 {
			return s.checkFixpoint()
		}
		// Steps of distinct groups are independent: carry out some of them, in any order.
		s.rnd.Shuffle(len(steps), func(i, j int) { steps[i], steps[j] = steps[j], steps[i] })
		for _, st := range steps[:1+s.rnd.Intn(len(steps))] {
			if err := s.step(st); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPlan: one step per group, and the same answer for the same input.
func (s *sim) checkPlan(steps []Step, live []string) error {
	seen := map[uint64]bool{}
	for _, st := range steps {
		if seen[st.Group] {
			return fmt.Errorf("plan moves group %d twice at once: %v", st.Group, steps)
		}
		seen[st.Group] = true
	}
	again, err := Plan(Clone(s.p), slices.Sorted(slices.Values(live)))
	if err != nil || !reflect.DeepEqual(again, steps) {
		return fmt.Errorf("plan is not deterministic: %v, then %v (%v)", steps, again, err)
	}
	return nil
}

// step carries out st and checks the invariants that hold after every step.
func (s *sim) step(st Step) error {
	s.steps++
	v := newView(s.p, s.live())
	q, err := Apply(s.p, st)
	if err != nil {
		return fmt.Errorf("apply %v: %w", st, err)
	}
	s.logf("%v", st)
	if err := Validate(q); err != nil {
		return fmt.Errorf("after %v: %w", st, err)
	}
	gi := slices.IndexFunc(q.Groups, func(g api.Group) bool { return g.ID == st.Group })
	r := v.r
	if q.Groups[gi].Kind == api.GroupMeta {
		r = metaVotersFor(len(slices.DeleteFunc(slices.Clone(s.p.Nodes), func(n api.PlacementNode) bool { return n.State != api.NodeActive })))
	}
	if (st.Kind == Remove || st.Kind == Demote) && s.p.Groups[gi].RoleOf(st.Node) == api.Voter && len(q.Groups[gi].Voters()) < r {
		return fmt.Errorf("%v leaves group %d %d voters, below its %d", st, st.Group, len(q.Groups[gi].Voters()), r)
	}
	s.p = q
	if err := s.checkMetaFirst(); err != nil {
		return fmt.Errorf("after %v: %w", st, err)
	}
	return s.checkSKUs()
}

// checkMetaFirst: every node that hosts a data replica hosts the meta group, so it reads
// the placement of every group it serves.
func (s *sim) checkMetaFirst() error {
	meta := s.p.Groups[0]
	for _, g := range s.p.Groups[1:] {
		for _, r := range g.Replicas {
			if meta.RoleOf(r.Node) == "" {
				return fmt.Errorf("%s hosts group %d, not the meta group", r.Node, g.ID)
			}
		}
	}
	return nil
}

// checkSKUs: no SKU ever leaves the group it was created in.
func (s *sim) checkSKUs() error {
	for sku, g := range s.skus {
		if got := s.p.GroupOf(sku).ID; got != g {
			return fmt.Errorf("%s moved from group %d to %d", sku, g, got)
		}
	}
	return nil
}

func (s *sim) checkFixpoint() error {
	v := newView(s.p, s.live())
	replicas, leaders := map[string]int{}, map[string]int{}
	for _, n := range v.goods {
		replicas[n], leaders[n] = 0, 0
	}
	if err := checkMetaFixpoint(s.p, v); err != nil {
		return err
	}
	for _, g := range s.p.Groups {
		if g.Kind == api.GroupMeta {
			if g.Leader != g.PreferredLeader {
				return fmt.Errorf("fixpoint: group %d led by %s, prefers %s", g.ID, g.Leader, g.PreferredLeader)
			}
			leaders[g.PreferredLeader]++
			continue
		}
		vs := g.Voters()
		if len(vs) != len(g.Replicas) || len(vs) > v.r {
			return fmt.Errorf("fixpoint: group %d has replicas %v, want %d voters", g.ID, g.Replicas, v.r)
		}
		good := 0
		for _, n := range vs {
			if v.good[n] {
				good++
				replicas[n]++
			}
		}
		if good != min(v.r, len(v.goods)) {
			return fmt.Errorf("fixpoint: group %d has %d replicas on good nodes, want %d", g.ID, good, min(v.r, len(v.goods)))
		}
		if g.Leader != g.PreferredLeader {
			return fmt.Errorf("fixpoint: group %d led by %s, prefers %s", g.ID, g.Leader, g.PreferredLeader)
		}
		leaders[g.PreferredLeader]++
	}
	if pinned, err := checkPins(s.p, v); pinned || err != nil {
		return err // pins may hold the loads apart
	}
	if err := withinOne("replicas", replicas); err != nil {
		return err
	}
	return withinOne("leaders", leaders)
}

// checkPins: a pinned group is on its good pinned nodes and led by its pinned leader if
// that is good. It reports whether any group is pinned.
func checkPins(p *api.Placement, v *view) (bool, error) {
	pinned := false
	for _, g := range p.Groups {
		if len(g.PinnedReplicas) == 0 {
			continue
		}
		pinned = true
		for _, n := range g.PinnedReplicas {
			if v.good[n] && g.RoleOf(n) != api.Voter {
				return true, fmt.Errorf("fixpoint: group %d pins %v, has %v", g.ID, g.PinnedReplicas, g.Replicas)
			}
		}
		if v.good[g.PinnedLeader] && g.PreferredLeader != g.PinnedLeader {
			return true, fmt.Errorf("fixpoint: group %d pins its leader to %s, prefers %s", g.ID, g.PinnedLeader, g.PreferredLeader)
		}
	}
	return pinned, nil
}

// checkMetaFixpoint: the meta group is on every active node, on a draining node only
// while that hosts data or its vote is needed (fewer good nodes than voters), and has its voter count on good nodes as far as there are good
// nodes (and no more voters in all).
func checkMetaFixpoint(p *api.Placement, v *view) error {
	g := p.Groups[0]
	for _, n := range p.Nodes {
		data := slices.ContainsFunc(p.Groups[1:], func(h api.Group) bool { return h.RoleOf(n.ID) != "" })
		if hosts := g.RoleOf(n.ID) != ""; hosts != (n.State == api.NodeActive || data || g.RoleOf(n.ID) == api.Voter) {
			return fmt.Errorf("fixpoint: %s node %s (data: %v) hosts the meta group: %v", n.State, n.ID, data, hosts)
		}
	}
	active := 0
	for _, n := range p.Nodes {
		if n.State == api.NodeActive {
			active++
		}
	}
	m := metaVotersFor(active)
	vs := g.Voters()
	good := 0
	for _, n := range vs {
		if v.good[n] {
			good++
		}
	}
	if len(vs) > m || good != min(m, len(v.goods)) {
		return fmt.Errorf("fixpoint: the meta group has voters %v, %d good, want %d", vs, good, min(m, len(v.goods)))
	}
	return nil
}

// metaVotersFor is the specification of the meta group's voter count with active nodes:
// up to five, never even.
func metaVotersFor(active int) int {
	return []int{0, 1, 1, 3, 3, 5}[min(active, 5)]
}

func withinOne(what string, count map[string]int) error {
	lo, hi := -1, -1
	for _, c := range count {
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	if hi-lo > 1 {
		return fmt.Errorf("fixpoint: %s per node %v differ by more than one", what, count)
	}
	return nil
}

func must(p *api.Placement, err error) *api.Placement {
	if err != nil {
		panic(err)
	}
	return p
}
