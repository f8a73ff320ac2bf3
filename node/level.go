package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
	"github.com/flashstock/flashstock/placement/meta"
)

// The apply level (fsm/level.go) rises only through the log, once every member's build
// knows the new level, as etcd decides its cluster version: the leader asks each member of
// the configuration (learners apply the log too) for the highest level its build applies
// (GET /v1/cluster/self, max_apply_level) and proposes SetLevel with the lowest answer. A
// member that does not answer, or whose build predates levels (it reports nothing: 0),
// holds the level where it is. So during a rolling upgrade the new rules start, on every
// replica at the same log index, only after the last member runs the new build.
//
// The meta group's log has a level of its own under the same rule (placement/meta/level.go:
// the operator's pins need meta level 1), asked as max_meta_level and raised by the meta
// command set_level: the code below serves both, reading each through the group's own
// accessors (logLevel, buildLevel, reportedLevel, proposeLevel).

// levelCheckInterval is how often a leader whose log is below its build's level asks again.
const levelCheckInterval = time.Second

// levelLoop asks again every levelCheckInterval while this node leads and its log is below
// its build's level; in a data group leadershipLoop also asks once as soon as a term is
// ready, and in the meta group a command that needs the level asks at once (awaitLevel).
func (g *Group) levelLoop() {
	g.every(levelCheckInterval, func() bool {
		g.checkLevel()
		return true
	})
}

// checkLevel raises the apply level if this node leads and every member's build allows it.
// Once the log is at this build's level it returns at once; until then it waits at most
// levelCheckInterval for the members, since leadershipLoop waits for it.
func (g *Group) checkLevel() {
	if g.raft.State() != raft.Leader || g.logLevel() >= g.buildLevel() {
		return
	}
	ctx, cancel := context.WithTimeout(g.ctx, levelCheckInterval)
	defer cancel()
	if err := g.raiseLevel(ctx); err != nil {
		g.log.Debug(g.levelName()+" not raised", "level", g.logLevel(), "reason", err)
	}
}

// raiseLevel proposes the highest level every member's build knows, if it is above the
// log's.
func (g *Group) raiseLevel(ctx context.Context) error {
	cfg, _, err := g.configuration()
	if err != nil {
		return err
	}
	target, holder := g.buildLevel(), g.cfg.ID
	for _, s := range cfg.Servers {
		if string(s.ID) == g.cfg.ID {
			continue
		}
		addr := g.memberHTTP(string(s.ID))
		if addr == "" {
			return fmt.Errorf("member %s has no known HTTP address yet", s.ID)
		}
		got, err := g.srv.askSelf(ctx, addr)
		if err != nil {
			return fmt.Errorf("member %s: %w", s.ID, err)
		}
		if l := g.reportedLevel(got); l < target {
			target, holder = l, string(s.ID)
		}
	}
	if target <= g.logLevel() {
		return fmt.Errorf("member %s runs a build that knows %s %d", holder, g.levelName(), target)
	}
	if err := g.proposeLevel(ctx, target); err != nil {
		return fmt.Errorf("set %s %d: %w", g.levelName(), target, err)
	}
	g.log.Info("raised the "+g.levelName()+": every member's build knows it", "level", target)
	return nil
}

// awaitLevel returns nil once the log is at level need, for a command of a kind that
// needs it (kind), proposed on the leader. A log below a level this build knows is raised
// at once if every member allows, rather than at the level loop's next round, so that a
// cluster of this build serves the command straight after it starts. Otherwise the
// command is refused: written, it would stop the replicas of the members still on a
// build that cannot decode it.
func (g *Group) awaitLevel(ctx context.Context, kind string, need uint64) error {
	if g.logLevel() >= need {
		return nil
	}
	reason := fmt.Errorf("member %s (the leader) runs a build that knows %s %d", g.cfg.ID, g.levelName(), g.buildLevel())
	if need <= g.buildLevel() {
		ctx, cancel := context.WithTimeout(ctx, levelCheckInterval)
		reason = g.raiseLevel(ctx)
		cancel()
		if g.logLevel() >= need {
			return nil
		}
	}
	return levelRefusal(kind, g.levelName(), need, g.logLevel(), reason)
}

// levelRefusal is the answer to a command of a kind the log's level does not know yet,
// with why the level is not raised when known.
func levelRefusal(kind, levelName string, need, level uint64, reason error) error {
	msg := fmt.Sprintf("%s needs %s %d and the cluster is at %d: it has not finished upgrading (every member must run a build that knows the level; see GET /v1/cluster)", kind, levelName, need, level)
	if reason != nil {
		msg += ": " + reason.Error()
	}
	return &api.Error{Code: api.FailedPrecondition, Message: msg}
}

// checkJoinerLevel refuses a member whose build applies a lower level than the log already
// uses: it would apply the log's newer rules the old way and diverge. A joiner that does not
// answer yet (an operator adding a node before starting it) is let in; the leader's level
// loop will not raise the level past it later.
func (g *Group) checkJoinerLevel(ctx context.Context, req api.JoinRequest) error {
	return g.srv.checkBuildLevel(ctx, req.ID, req.HTTPAddr, g.levelName(), "the cluster's log", g.logLevel(), g.reportedLevel, false)
}

// checkBuildLevel is the one rule for letting a node into a log at a level: node id,
// answering at httpAddr, is refused when its build applies less than level (of the kind
// levelName, held by where; reported reads its build's highest from its report), since
// its replica would meet the level and stop. A node that does not answer is let in
// unless mustAnswer: a join may come before its node starts, while a replica given to a
// node that cannot say what it applies may be one it stops on.
func (n *Node) checkBuildLevel(ctx context.Context, id, httpAddr, levelName, where string, level uint64, reported func(api.Node) uint64, mustAnswer bool) error {
	if level == 0 {
		return nil
	}
	got, err := api.Node{}, errors.New("no known HTTP address")
	if httpAddr != "" {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		got, err = n.askSelf(ctx, httpAddr)
		cancel()
	}
	switch {
	case err != nil && mustAnswer:
		return api.Errorf(api.FailedPrecondition, "node %q does not say which %s its build knows (%v), and %s is at %d: it gets no replica until it answers", id, levelName, err, where, level)
	case err != nil:
		return nil
	}
	if l := reported(got); l < level {
		return buildLevelRefusal(id, levelName, l, where, level)
	}
	return nil
}

// buildLevelRefusal refuses node id, whose build knows levelName l, where a log (where)
// is at level.
func buildLevelRefusal(id, levelName string, l uint64, where string, level uint64) error {
	return api.Errorf(api.FailedPrecondition, "node %q runs a build that knows %s %d, and %s is at %d: upgrade it first", id, levelName, l, where, level)
}

// checkDataReplicaLevel refuses node pn as a member of data group g (a placement step
// that adds or promotes it) while its build applies less than g's log level. Unlike a
// joiner it must answer: the controller gives replicas only to nodes that do. The meta
// group's members are checked when they join (addPlacementNode).
func (g *Group) checkDataReplicaLevel(ctx context.Context, pn *api.PlacementNode) error {
	if g.isMeta() {
		return nil
	}
	return g.srv.checkBuildLevel(ctx, pn.ID, pn.HTTPAddr, g.levelName(), fmt.Sprintf("group %d's log", g.id), g.logLevel(), g.reportedLevel, true)
}

// dataLevel is the highest apply level among the data groups this node hosts: a node
// whose build knows less would stop on a replica of the one at that level.
func (n *Node) dataLevel() uint64 {
	var level uint64
	for _, g := range n.dataGroups() {
		if g.failed() == nil {
			level = max(level, g.fsm.Level())
		}
	}
	return level
}

// The level of g's log: a data group's fsm level or the meta group's, each with its own
// count, report field and command.

func (g *Group) levelName() string {
	if g.isMeta() {
		return "meta apply level"
	}
	return dataLevelName
}

// dataLevelName names a data group's level in messages.
const dataLevelName = "apply level"

// dataReported is the highest data apply level a node's build applies, as it reports it.
func dataReported(n api.Node) uint64 { return n.MaxApplyLevel }

// logLevel is the level in force in this replica's state machine.
func (g *Group) logLevel() uint64 {
	if g.isMeta() {
		return g.meta.Level()
	}
	return g.fsm.Level()
}

// buildLevel is the highest level this node's build applies.
func (g *Group) buildLevel() uint64 {
	if g.isMeta() {
		return g.srv.maxMetaLevel()
	}
	return g.srv.maxApplyLevel()
}

// reportedLevel is the highest level a member's build applies, as it reports it.
func (g *Group) reportedLevel(n api.Node) uint64 {
	if g.isMeta() {
		return n.MaxMetaLevel
	}
	return dataReported(n)
}

// proposeLevel writes the entry that raises the log's level.
func (g *Group) proposeLevel(ctx context.Context, level uint64) error {
	if g.isMeta() {
		res, err := g.proposeMeta(ctx, meta.Command{Kind: meta.SetLevel, Level: level})
		if err == nil {
			err = res.Err
		}
		return err
	}
	res, err := g.propose(ctx, fsm.Command{Kind: fsm.KindSetLevel, Level: level})
	if err == nil && !res.OK() {
		err = fmt.Errorf("%s", res.Message)
	}
	return err
}

// maxApplyLevel is the highest data apply level this node's build knows.
func (n *Node) maxApplyLevel() uint64 {
	if n.cfg.olderDataBuild {
		return 0
	}
	return fsm.ApplyLevel
}

// maxMetaLevel is the highest meta apply level this node's build knows.
func (n *Node) maxMetaLevel() uint64 {
	if n.cfg.olderMetaBuild {
		return 0
	}
	return meta.ApplyLevel
}
