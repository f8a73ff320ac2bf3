package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/flashstock/flashstock/api"
)

// The operator's moves under load (issue 17, "move a replica and a leader under load",
// "remove a node under load"): each scenario asks through the API, as stockctl would, waits
// for the layout to settle as asked, checks it where the placement and raft end (the
// members' own reports, their data dirs), and ends with every check of e.finish.

// mgMoveReplica moves one data group's replica from a node hosting it to one that does
// not (POST /v1/groups/{id}/move) under load: the placement must end with the group's
// voters as asked, the destination's replica running and following or leading, and the
// source's replica stopped with its files deleted.
func mgMoveReplica(e *env) []Op { return moveReplica(e, false) }

// mgMoveReplicaKill is mgMoveReplica with the destination SIGKILLed as soon as the move is
// recorded and started again a moment later: the controller's steps toward it fail
// meanwhile (its nonvoter cannot catch up, a promotion waits), and it must carry the
// move out once the node is back, with no replica of the group lost on the way.
func mgMoveReplicaKill(e *env) []Op { return moveReplica(e, true) }

func moveReplica(e *env, killTo bool) []Op {
	e.startLoad()
	e.sleep(time.Second)
	data := e.layout.Data()
	g := data[e.rng.IntN(len(data))].ID
	hosts := e.layout.Hosts(g)
	from := hosts[e.rng.IntN(len(hosts))]
	others := membersWithout(e.members, hosts...)
	to := others[e.rng.IntN(len(others))]
	want := append(membersWithout(hosts, from), to)
	slices.Sort(want)

	cl := e.client(e.c.HTTPAddrs(e.members...))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.events.fault("move group %d's replica %s -> %s (replicas %v)", g, from, to, hosts)
	start := time.Now()
	ch, err := cl.MoveReplica(ctx, g, from, to)
	if err != nil {
		e.fatal("move group %d %s -> %s: %v", g, from, to, err)
	}
	e.events.add("move recorded at placement v%d, %d steps planned", ch.PlacementVersion, len(ch.Steps))
	if killTo {
		m := e.c.Member(to)
		e.events.fault("SIGKILL %s, the move's destination", to)
		e.c.Kill(m)
		e.sleep(time.Duration(500+e.rng.IntN(1500)) * time.Millisecond)
		e.c.Start(m)
	}
	lay := e.settleTo(ctx, fmt.Sprintf("moving group %d's replica %s -> %s", g, from, to), ch.PlacementVersion, func(l Layout) string {
		if got := l.Hosts(g); !slices.Equal(got, want) {
			return fmt.Sprintf("group %d on %v, want %v", g, got, want)
		}
		return ""
	})
	e.events.add("group %d moved in %v: %s", g, time.Since(start).Round(time.Millisecond), lay)
	e.checkHostedBy(ctx, g, to, true)
	e.checkHostedBy(ctx, g, from, false)
	e.checkGroupFiles(ctx, e.c.Member(from), g)
	e.waitPreferredLeaders(ctx)
	if _, err := e.waitGroupsProgress(15 * time.Second); err != nil {
		e.fail("PROGRESS after moving group %d: %v", g, err)
	}
	e.sleep(e.scale(2 * time.Second)) // load on the new layout
	return e.finish()
}

// mgPinLeader pins a data group's leadership to one of its followers (POST
// /v1/groups/{id}/leader) under load: the placement must make that node the group's
// preferred leader and raft must elect it, as the members themselves report, and it must
// stay there while the controller balances the other groups around it. Balance (POST
// /v1/placement/balance) then clears the pin, and the leaderships are spread again.
func mgPinLeader(e *env) []Op {
	e.startLoad()
	e.sleep(time.Second)
	lay := e.currentLayout()
	data := lay.Data()
	grp := data[e.rng.IntN(len(data))]
	followers := membersWithout(lay.Hosts(grp.ID), grp.Leader)
	to := followers[e.rng.IntN(len(followers))]

	cl := e.client(e.c.HTTPAddrs(e.members...))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.events.fault("pin group %d's leadership to %s (led by %s)", grp.ID, to, grp.Leader)
	start := time.Now()
	ch, err := cl.PinLeader(ctx, grp.ID, to)
	if err != nil {
		e.fatal("pin group %d's leader to %s: %v", grp.ID, to, err)
	}
	e.events.add("pin recorded at placement v%d, %d steps planned", ch.PlacementVersion, len(ch.Steps))
	check := func(l Layout) string {
		pg := l.Group(grp.ID)
		if pg.PreferredLeader != to || pg.Leader != to {
			return fmt.Sprintf("group %d preferred %q, led by %q, want %s", grp.ID, pg.PreferredLeader, pg.Leader, to)
		}
		return ""
	}
	e.settleTo(ctx, fmt.Sprintf("pinning group %d's leadership to %s", grp.ID, to), ch.PlacementVersion, check)
	e.events.add("group %d led by %s in %v", grp.ID, to, time.Since(start).Round(time.Millisecond))
	e.waitPreferredLeaders(ctx)
	if why := check(e.layout); why != "" {
		e.fail("PIN: once the leaderships are spread: %s", why)
	}
	if _, err := e.waitGroupsProgress(15 * time.Second); err != nil {
		e.fail("PROGRESS after pinning group %d's leadership: %v", grp.ID, err)
	}
	// Balance clears the pin: the placement must carry none, and the controller spread
	// every leadership again, that group's included.
	e.events.fault("balance: clear every pin")
	if ch, err = cl.Balance(ctx, false); err != nil {
		e.fatal("balance: %v", err)
	}
	e.settleTo(ctx, "balancing", ch.PlacementVersion, func(l Layout) string {
		for _, g := range l.Data() {
			if g.PinnedLeader != "" || g.PinnedReplicas != nil {
				return fmt.Sprintf("group %d still pinned: leader %q, replicas %v", g.ID, g.PinnedLeader, g.PinnedReplicas)
			}
		}
		return ""
	})
	e.waitPreferredLeaders(ctx)
	if _, err := e.waitGroupsProgress(15 * time.Second); err != nil {
		e.fail("PROGRESS after balancing: %v", err)
	}
	e.sleep(e.scale(2 * time.Second))
	return e.finish()
}

// mgDrainNode drains a member leading the most data groups under load (DELETE
// /v1/cluster/members/{id}: 202, draining): the controller moves its leaderships and
// replicas off and unlists it, and its process stops itself with exit code 3, which here
// is the expected end, not a crash. Every data group must then have its three voters on
// the other members and the drained node none of its data groups' files.
func mgDrainNode(e *env) []Op {
	e.startLoad()
	e.sleep(time.Second)
	lay := e.currentLayout()
	// One of the members leading the most groups, picked by the seed: TopLeader's lowest
	// id would always drain the bootstrapping n1.
	counts := lay.LeadCounts(e.members)
	top := slices.DeleteFunc(slices.Clone(e.members), func(id string) bool { return counts[id] < counts[lay.TopLeader(e.members)] })
	victim := e.c.Member(top[e.rng.IntN(len(top))])
	rest := membersWithout(e.members, victim.ID)

	cl := e.client(e.c.HTTPAddrs(rest...))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e.events.fault("drain %s, leader of %d data groups (%s)", victim.ID, lay.LeadCounts(e.members)[victim.ID], leadersString(lay.Leaders()))
	start := time.Now()
	if err := cl.RemoveMember(ctx, victim.ID); err != nil {
		e.fatal("drain %s: %v", victim.ID, err)
	}
	if err := victim.proc.Wait(ctx); err != nil {
		e.fatal("DRAIN: %v", err)
	}
	e.events.add("%s exited on its own after %v: %v", victim.ID, time.Since(start).Round(time.Millisecond), victim.proc.Err())
	if code := victim.proc.ExitCode(); code != 3 {
		e.fail("DRAIN: %s exited with code %d, want 3 (removed from the cluster)", victim.ID, code)
	}
	// From here on the victim is out of the configuration: finish's heal must not start it
	// again, and the end checks read the other members.
	e.members = rest
	after := e.settle(ctx, "after draining "+victim.ID)
	e.events.add("%s drained and the cluster settled in %v", victim.ID, time.Since(start).Round(time.Millisecond))
	for _, g := range after.Data() {
		voters := 0
		for _, r := range g.Replicas {
			if r.Role != api.Nonvoter {
				voters++
			}
		}
		if hosts := after.Hosts(g.ID); voters != 3 || slices.Contains(hosts, victim.ID) {
			e.fail("DRAIN: group %d has %d voters on %v, want 3 on %v", g.ID, voters, hosts, rest)
		}
		e.checkGroupFiles(ctx, victim, g.ID)
	}
	e.waitPreferredLeaders(ctx)
	if _, err := e.waitGroupsProgress(15 * time.Second); err != nil {
		e.fail("PROGRESS after draining %s: %v", victim.ID, err)
	}
	e.sleep(e.scale(2 * time.Second))
	return e.finish()
}

// settleTo waits until the cluster settles at placement version v or later in a layout
// that want accepts (it returns why not: ""), records it and returns it. A layout that
// settled before the members applied version v is not the asked one; one that settles
// otherwise is a failure of the scenario.
func (e *env) settleTo(ctx context.Context, what string, v uint64, want func(Layout) string) Layout {
	e.t.Helper()
	start := time.Now()
	for {
		lay, why := e.c.Settled(ctx, e.members, e.groups)
		if why == "" && lay.Version < v {
			why = fmt.Sprintf("settled at placement v%d, before v%d", lay.Version, v)
		}
		if why == "" {
			why = want(lay)
		}
		if why == "" {
			e.layout = lay
			e.events.add("%s: settled as asked in %v; %s", what, time.Since(start).Round(time.Millisecond), lay)
			return lay
		}
		if pause(ctx, 200*time.Millisecond) != nil {
			e.fatal("%s: not settled as asked after %v: %s", what, time.Since(start).Round(time.Millisecond), why)
		}
	}
}

// checkHostedBy checks, by the member's own report, that member id hosts a running
// replica of group g (a voter that follows or leads) or, with hosts false, none.
func (e *env) checkHostedBy(ctx context.Context, g uint64, id string, hosts bool) {
	e.t.Helper()
	self, err := e.c.Self(ctx, e.c.Member(id))
	if err != nil {
		e.fail("read %s's groups: %v", id, err)
		return
	}
	i := slices.IndexFunc(self.Groups, func(ng api.NodeGroup) bool { return ng.ID == g })
	switch {
	case hosts && i < 0:
		e.fail("MOVE: %s hosts no replica of group %d (it hosts %+v)", id, g, self.Groups)
	case hosts && self.Groups[i].Role != api.RoleFollower && self.Groups[i].Role != api.RoleLeader:
		e.fail("MOVE: %s's replica of group %d is %q", id, g, self.Groups[i].Role)
	case !hosts && i >= 0:
		e.fail("MOVE: %s still hosts a replica of group %d (%+v)", id, g, self.Groups[i])
	}
}

// checkGroupFiles checks that member m keeps none of data group g's files: its dir under
// groups/, or for group 1, whose files are the data dir's root, its raft log and state
// (node/removal.go). The deletion follows the member learning of its removal, so it is
// waited for, bounded by ctx and 10 s.
func (e *env) checkGroupFiles(ctx context.Context, m *Member, g uint64) {
	e.t.Helper()
	paths := []string{filepath.Join(m.DataDir, "groups", strconv.FormatUint(g, 10))}
	if g == 1 {
		paths = []string{filepath.Join(m.DataDir, "raft.db"), filepath.Join(m.DataDir, "raft-wal"), filepath.Join(m.DataDir, "state.db")}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		left := ""
		for _, p := range paths {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				left = p
				break
			}
		}
		if left == "" {
			return
		}
		if pause(ctx, 100*time.Millisecond) != nil {
			e.fail("FILES: %s still keeps group %d's %s", m.ID, g, left)
			return
		}
	}
}
