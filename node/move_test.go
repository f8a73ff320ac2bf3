package node

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/testcluster"
	"github.com/flashstock/flashstock/placement"
)

// groupRaft is group id's raft configuration as its leader sees it (sorted voters,
// nonvoters) and the leader's id; an error while no running replica leads it. A replica
// the group removed may still run with the configuration it last knew (stopping it is the
// node's business once the removal committed), so only the leader's view counts.
func groupRaft(c *testCluster, id uint64) (voters, nonvoters []string, leader string, err error) {
	for _, n := range c.Nodes() {
		g := n.group(id)
		if g == nil || g.failed() != nil || n.ctx.Err() != nil || g.raft.State() != raft.Leader {
			continue
		}
		f := g.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			return nil, nil, "", err
		}
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters = append(voters, string(s.ID))
			} else {
				nonvoters = append(nonvoters, string(s.ID))
			}
		}
		slices.Sort(voters)
		slices.Sort(nonvoters)
		return voters, nonvoters, n.cfg.ID, nil
	}
	return nil, nil, "", fmt.Errorf("group %d has no leader", id)
}

// settledPlacement: every running node applied the meta leader's placement, the planner
// has nothing left with every node live, and each data group's raft has the placement's
// voters and is led by its preferred leader.
func settledPlacement(c *testCluster, ids []string) (*api.Placement, error) {
	var p *api.Placement
	for _, n := range c.Nodes() {
		if n.metaGroup != nil && n.metaGroup.raft.State() == raft.Leader {
			p = n.placement.Load()
		}
	}
	if p == nil {
		return nil, errors.New("no meta leader with a placement")
	}
	for _, n := range c.Nodes() {
		if q := n.placement.Load(); q == nil || q.Version != p.Version {
			return nil, fmt.Errorf("%s has not applied placement version %d", n.ID(), p.Version)
		}
	}
	if steps, err := placement.Plan(p, ids); err != nil || len(steps) > 0 {
		return nil, fmt.Errorf("version %d: planner still has %v %v", p.Version, steps, err)
	}
	for _, pg := range p.Groups {
		if pg.Kind != api.GroupData {
			continue
		}
		vs, nvs, leader, err := groupRaft(c, pg.ID)
		if err != nil {
			return nil, err
		}
		var want []string
		for _, r := range pg.Replicas {
			want = append(want, r.Node)
		}
		if !slices.Equal(vs, want) || len(nvs) > 0 || leader != pg.PreferredLeader {
			return nil, fmt.Errorf("group %d: raft voters %v nonvoters %v leader %s; placement %v leader %s", pg.ID, vs, nvs, leader, want, pg.PreferredLeader)
		}
	}
	return p, nil
}

// deductLoad deducts one unit at a time from each SKU (one worker per SKU, round robin
// over the nodes) until stopped or perSKU requests are sent; a request that fails is sent
// again with its request id until it is answered.
type deductLoad struct {
	c      *testCluster
	perSKU int
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	ids    map[string][]string // sku → request ids sent
	errs   []string
}

func startDeductLoad(c *testCluster, skus []string, perSKU int) *deductLoad {
	l := &deductLoad{c: c, perSKU: perSKU, stop: make(chan struct{}), ids: map[string][]string{}}
	for _, sku := range skus {
		l.wg.Go(func() { l.run(sku) })
	}
	return l
}

func (l *deductLoad) run(sku string) {
	nodes := l.c.Nodes()
	for i := range l.perSKU {
		select {
		case <-l.stop:
			return
		default:
		}
		id := fmt.Sprintf("load-%s-%d", sku, i)
		l.mu.Lock()
		l.ids[sku] = append(l.ids[sku], id)
		l.mu.Unlock()
		for try := 0; try < 100; try++ {
			n := nodes[(i+try)%len(nodes)]
			_, err := l.c.call(n.HTTPAddr(), "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 1, RequestID: id, UserID: "load"}, nil)
			if err == nil {
				break
			}
			var ae *api.Error
			if errors.As(err, &ae) && !ae.Code.Retryable() {
				l.mu.Lock()
				l.errs = append(l.errs, fmt.Sprintf("%s %s: %v", sku, id, err))
				l.mu.Unlock()
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// finish stops the load and checks exactly once: every request id sent, sent again,
// answers duplicate (each was applied, once), and each SKU has lost exactly one unit per
// request id.
func (l *deductLoad) finish(t *testing.T, stock int64) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	for _, e := range l.errs {
		t.Errorf("load: %s", e)
	}
	addr := l.c.Node(0).HTTPAddr()
	total := 0
	for sku, ids := range l.ids {
		total += len(ids)
		for _, id := range ids {
			var again api.DeductResponse
			l.c.mustCall(addr, "POST", "/v1/skus/"+sku+"/deduct", api.DeductRequest{Qty: 1, RequestID: id, UserID: "load"}, &again)
			if !again.Duplicate {
				t.Errorf("%s %s: the retry after the load applied again (%+v): it was lost the first time", sku, id, again)
			}
		}
		var s api.SKU
		l.c.mustCall(addr, "GET", "/v1/skus/"+sku, nil, &s)
		if want := stock - int64(len(ids)); s.Available != want {
			t.Errorf("%s: %d available after %d deductions of one from %d, want %d", sku, s.Available, len(ids), stock, want)
		}
	}
	t.Logf("load: %d deductions over %d SKUs, each applied exactly once", total, len(l.ids))
}

// wantRule asserts that err is the api error code whose message names rule.
func wantRule(t *testing.T, what string, err error, code api.Code, rule placement.Rule) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != code || !strings.Contains(ae.Message, string(rule)) {
		t.Errorf("%s: %v; want %s naming %s", what, err, code, rule)
	}
}

// An operator moves a replica and a leader in a 4-node, 3-group cluster under a little
// load: the move ends with the destination a voter of the group's raft and the source
// gone from it, the leader on the node asked for, each carried out by the controller in
// single steps through any node's API (forwarded to the meta leader), and held there by
// the pins while the controller goes on; exactly once holds for every deduction sent
// meanwhile. The routes refuse what cannot be done with the placement's rules; balance
// clears the pins and the controller settles the cluster again.
func TestMultiGroup_OperatorMovesAReplicaAndALeader(t *testing.T) {
	testcluster.SkipShort(t)
	c, ids, p := newFourNodeCluster(t)
	n1 := c.Node(0)

	_, by := skusByGroup(t, n1, 48)
	var skus []string
	for id := uint64(1); id <= 3; id++ {
		skus = append(skus, by[id][0])
		c.mustCall(n1.HTTPAddr(), "PUT", "/v1/skus/"+by[id][0], map[string]any{"stock": 10000}, nil)
	}
	load := startDeductLoad(c, skus, 2000)

	// The move: group 1's replica on its leader (so leadership moves too) to the node
	// that has none, asked through a node that is not the meta leader.
	g1 := p.Groups[1]
	from := g1.PreferredLeader
	to := ""
	for _, id := range ids {
		if !slices.ContainsFunc(g1.Replicas, func(r api.Replica) bool { return r.Node == id }) {
			to = id
		}
	}
	var via *Node
	for _, n := range c.Nodes() {
		if n.metaGroup.raft.State() != raft.Leader {
			via = n
		}
	}
	var moved api.PlacementChange
	c.mustCall(via.HTTPAddr(), "POST", "/v1/groups/1/move", api.MoveRequest{From: from, To: to}, &moved)
	if moved.PlacementVersion <= p.Version || !slices.Contains(moved.Steps, api.PlannedStep{Group: 1, Kind: "add_nonvoter", Node: to}) {
		t.Errorf("move answer %+v: want a newer version than %d and group 1's add_nonvoter %s first", moved, p.Version, to)
	}
	wantVoters := slices.Sorted(slices.Values(append(slices.DeleteFunc(g1.Voters(), func(n string) bool { return n == from }), to)))

	// The leader: group 2's leadership to a voter that does not lead it.
	g2 := p.Groups[2]
	lead := ""
	for _, n := range g2.Voters() {
		if n != g2.PreferredLeader {
			lead = n
		}
	}
	c.mustCall(c.Node(1).HTTPAddr(), "POST", "/v1/groups/2/leader", api.LeaderRequest{Node: lead}, nil)

	eventually(t, 90*time.Second, func() error {
		vs, nvs, leader, err := groupRaft(c, 1)
		switch {
		case err != nil:
			return err
		case !slices.Equal(vs, wantVoters) || len(nvs) > 0 || leader == from:
			return fmt.Errorf("group 1: voters %v nonvoters %v leader %s; want voters %v, not led by %s", vs, nvs, leader, wantVoters, from)
		}
		if _, _, leader, err = groupRaft(c, 2); err != nil || leader != lead {
			return fmt.Errorf("group 2 led by %s (%v), want %s", leader, err, lead)
		}
		_, err = settledPlacement(c, ids)
		return err
	})
	load.finish(t, 10000)

	// Held: the controller goes on and leaves both where they were put (a live leader an
	// election moved on this busy machine is brought back to the preferred one).
	eventually(t, 30*time.Second, func() (err error) { p, err = settledPlacement(c, ids); return err })
	if g := p.Groups[1]; !slices.Equal(g.PinnedReplicas, wantVoters) || !slices.Equal(g.Voters(), wantVoters) {
		t.Errorf("group 1 after the move: %+v", g)
	}
	if g := p.Groups[2]; g.PinnedLeader != lead || g.PreferredLeader != lead {
		t.Errorf("group 2 after the leader pin: %+v", g)
	}

	// Refusals, each with its code and rule, through a node that forwards.
	addr := via.HTTPAddr()
	post := func(path string, body any) error {
		_, err := c.call(addr, "POST", path, body, nil)
		return err
	}
	wantRule(t, "unknown group", post("/v1/groups/9/move", api.MoveRequest{From: "n1", To: "n2"}), api.NotFound, placement.ErrUnknownGroup)
	wantRule(t, "unknown node", post("/v1/groups/1/move", api.MoveRequest{From: to, To: "n9"}), api.NotFound, placement.ErrUnknownNode)
	wantRule(t, "the meta group", post("/v1/groups/0/move", api.MoveRequest{From: "n1", To: "n2"}), api.InvalidArgument, placement.ErrMetaPin)
	wantRule(t, "to a voter", post("/v1/groups/1/move", api.MoveRequest{From: wantVoters[0], To: wantVoters[1]}), api.FailedPrecondition, placement.ErrAlreadyReplica)
	wantRule(t, "leader not a voter", post("/v1/groups/1/leader", api.LeaderRequest{Node: from}), api.FailedPrecondition, placement.ErrNotReplica)
	wantRule(t, "off the pinned leader", post("/v1/groups/2/move", api.MoveRequest{From: lead, To: otherThan(ids, p.Groups[2].Voters())}), api.FailedPrecondition, placement.ErrPinnedLeader)
	if _, err := c.call(addr, "POST", "/v1/groups/1/move", api.MoveRequest{From: "n1"}, nil); !errors.Is(err, &api.Error{Code: api.InvalidArgument}) {
		t.Errorf("a move without a destination: %v", err)
	}
	// Asked again, the move is the same wish: answered at the same version.
	var again api.PlacementChange
	c.mustCall(addr, "POST", "/v1/groups/1/move", api.MoveRequest{From: from, To: to}, &again)
	if again.PlacementVersion != p.Version || len(again.Steps) != 0 {
		t.Errorf("the move asked again: %+v, want version %d and no steps", again, p.Version)
	}

	// Balance: a dry run changes nothing; then the pins go and the controller settles.
	var dry api.PlacementChange
	c.mustCall(addr, "POST", "/v1/placement/balance", api.BalanceRequest{DryRun: true}, &dry)
	if dry.PlacementVersion != p.Version {
		t.Errorf("dry run: version %d, want %d", dry.PlacementVersion, p.Version)
	}
	var bal api.PlacementChange
	c.mustCall(addr, "POST", "/v1/placement/balance", api.BalanceRequest{}, &bal)
	if bal.PlacementVersion != p.Version+1 || !slices.Equal(bal.Steps, dry.Steps) {
		t.Errorf("balance: %+v; want version %d and the dry run's steps %+v", bal, p.Version+1, dry.Steps)
	}
	eventually(t, 90*time.Second, func() error {
		p, err := settledPlacement(c, ids)
		if err != nil {
			return err
		}
		for _, g := range p.Groups {
			if len(g.PinnedReplicas) > 0 || g.PinnedLeader != "" {
				return fmt.Errorf("group %d still pinned", g.ID)
			}
		}
		return nil
	})

	// A destination that does not answer is refused: the move would wait on it.
	eventually(t, 30*time.Second, func() (err error) { p, err = settledPlacement(c, ids); return err })
	g3 := p.Groups[3]
	down := otherThan(ids, g3.Voters())
	c.Node(slices.Index(ids, down)).Kill()
	var src string
	for _, n := range g3.Voters() {
		if n != g3.PreferredLeader {
			src = n
		}
	}
	eventually(t, 30*time.Second, func() error {
		_, err := c.call(c.Node(slices.Index(ids, g3.PreferredLeader)).HTTPAddr(), "POST", "/v1/groups/3/move", api.MoveRequest{From: src, To: down}, nil)
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code.Retryable() {
			return err // the meta leader was on the node killed: an election
		}
		wantRule(t, "to a node that is down", err, api.FailedPrecondition, placement.ErrNodeDown)
		return nil
	})
}

// newFourNodeCluster grows a --groups 3 cluster from n1 to n1..n4 and waits until the
// controller has settled it.
func newFourNodeCluster(t *testing.T) (*testCluster, []string, *api.Placement) {
	t.Helper()
	// Four nodes of four groups each on a shared machine: raft timings that a loaded
	// scheduler does not turn into elections, so that what moves is what was asked.
	patient := func(cfg *Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = time.Second, time.Second, time.Second
	}
	c := newCluster(t, 1, func(cfg *Config) { cfg.Groups = 3; patient(cfg) })
	n1 := c.Node(0)
	waitPlacement(t, n1)
	for _, id := range []string{"n2", "n3", "n4"} {
		cfg := c.NewConfig(id)
		cfg.Join = []string{n1.HTTPAddr()}
		patient(&cfg)
		c.Add(cfg)
	}
	ids := []string{"n1", "n2", "n3", "n4"}
	var p *api.Placement
	eventually(t, 120*time.Second, func() (err error) { p, err = settledPlacement(c, ids); return err })
	return c, ids, p
}

// A data group's leadership that an election (here a transfer the controller did not
// ask for) moved off its preferred leader comes back to it, also when the meta leader,
// which runs the controller, hosts no replica of the group and cannot see its leader.
func TestMultiGroup_LeadershipReturnsWhereTheMetaLeaderIsNotAReplica(t *testing.T) {
	testcluster.SkipShort(t)
	c, ids, p := newFourNodeCluster(t)
	var m *Node
	for _, n := range c.Nodes() {
		if n.metaGroup.raft.State() == raft.Leader {
			m = n
		}
	}
	var g *api.Group
	for i, pg := range p.Groups {
		if pg.Kind == api.GroupData && !slices.ContainsFunc(pg.Replicas, func(r api.Replica) bool { return r.Node == m.cfg.ID }) {
			g = &p.Groups[i]
		}
	}
	if g == nil {
		// Make one: move the meta leader's replica of a group it does not lead away.
		for _, pg := range p.Groups {
			if pg.Kind == api.GroupData && pg.PreferredLeader != m.cfg.ID {
				c.mustCall(m.HTTPAddr(), "POST", fmt.Sprintf("/v1/groups/%d/move", pg.ID), api.MoveRequest{From: m.cfg.ID, To: otherThan(ids, pg.Voters())}, nil)
				eventually(t, 90*time.Second, func() (err error) { p, err = settledPlacement(c, ids); return err })
				g = &p.Groups[pg.ID]
				break
			}
		}
	}
	var other string
	for _, n := range (*g).Voters() {
		if n != g.PreferredLeader {
			other = n
		}
	}
	// The answer comes once the transfer is done; the controller's next idle pass is
	// half a second away, so the look is at once. A look that finds the group between
	// leaders (a voter promoted moments before may call an election of its own as the
	// leadership moves) tells nothing either way: wait until the preferred leader leads
	// again (the controller's doing) and transfer again.
	host := c.Node(slices.Index(ids, g.PreferredLeader))
	for attempt := 1; ; attempt++ {
		eventually(t, 30*time.Second, func() error {
			if _, _, l, err := groupRaft(c, g.ID); err != nil || l != g.PreferredLeader {
				return fmt.Errorf("group %d led by %s (%v), preferred %s", g.ID, l, err, g.PreferredLeader)
			}
			return nil
		})
		c.mustCall(host.HTTPAddr(), "POST", fmt.Sprintf("/v1/groups/%d/membership", g.ID), api.MembershipRequest{Op: "transfer_leader", Node: other}, nil)
		_, _, l, err := groupRaft(c, g.ID)
		if err == nil && l == other {
			break
		}
		if err == nil || attempt == 3 {
			t.Fatalf("group %d after a transfer to %s (attempt %d): led by %s (%v)", g.ID, other, attempt, l, err)
		}
	}
	eventually(t, 30*time.Second, func() error {
		if _, _, l, err := groupRaft(c, g.ID); err != nil || l != g.PreferredLeader {
			return fmt.Errorf("group %d led by %s (%v), preferred %s; the meta leader is %s", g.ID, l, err, g.PreferredLeader, m.cfg.ID)
		}
		return nil
	})
}

// otherThan is the first of ids not in these.
func otherThan(ids, these []string) string {
	for _, id := range ids {
		if !slices.Contains(these, id) {
			return id
		}
	}
	return ""
}

// A removal the controller sends to the leader of the node removed (an election gave it
// the leadership back after the recorded transfer) hands the leadership over: the removal
// is refused there, nothing is removed, and the controller's next try reaches a leader
// that can carry it out, rather than retrying on this one until some election moves it.
func TestMultiGroup_RemovingTheLeaderHandsItOver(t *testing.T) {
	testcluster.SkipShort(t)
	c := newMultiGroup(t, 2)
	n1 := c.Node(0)
	for _, id := range []string{"n2", "n3"} {
		cfg := c.NewConfig(id)
		cfg.Join = []string{n1.HTTPAddr()}
		c.Add(cfg)
	}
	ids := []string{"n1", "n2", "n3"}
	var leader string
	eventually(t, 90*time.Second, func() error {
		vs, nvs, l, err := groupRaft(c, 1)
		if err != nil || !slices.Equal(vs, ids) || len(nvs) > 0 {
			return fmt.Errorf("group 1: voters %v nonvoters %v (%v)", vs, nvs, err)
		}
		leader = l
		return nil
	})
	_, err := c.call(c.Node(slices.Index(ids, leader)).HTTPAddr(), "POST", "/v1/groups/1/membership",
		api.MembershipRequest{Op: "remove", Node: leader}, nil)
	if !errors.Is(err, &api.Error{Code: api.FailedPrecondition}) {
		t.Fatalf("remove the leader %s through itself: %v, want failed_precondition", leader, err)
	}
	// The answer waits for the new leader; the controller may send it back to its
	// preferred leader a moment later, so the look is at once.
	vs, _, now, err := groupRaft(c, 1)
	if err != nil || now == leader || !slices.Equal(vs, ids) {
		t.Errorf("after the refused removal: leader %s (was %s), voters %v, %v; want another leader and nothing removed", now, leader, vs, err)
	}
}
