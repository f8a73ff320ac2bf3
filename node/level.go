package node

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// The apply level (fsm/level.go) rises only through the log, once every member's build
// knows the new level, as etcd decides its cluster version: the leader asks each member of
// the configuration (learners apply the log too) for the highest level its build applies
// (GET /v1/cluster/self, max_apply_level) and proposes SetLevel with the lowest answer. A
// member that does not answer, or whose build predates levels (it reports nothing: 0),
// holds the level where it is. So during a rolling upgrade the new rules start, on every
// replica at the same log index, only after the last member runs the new build.

// levelCheckInterval is how often a leader whose log is below its build's level asks again.
const levelCheckInterval = time.Second

// levelLoop asks again every levelCheckInterval while this node leads and its log is below
// its build's level; leadershipLoop also asks once as soon as a term is ready.
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
	if g.raft.State() != raft.Leader || g.fsm.Level() >= fsm.ApplyLevel {
		return
	}
	ctx, cancel := context.WithTimeout(g.ctx, levelCheckInterval)
	defer cancel()
	if err := g.raiseLevel(ctx); err != nil {
		g.log.Debug("apply level not raised", "level", g.fsm.Level(), "reason", err)
	}
}

// raiseLevel proposes the highest level every member's build knows, if it is above the
// log's.
func (g *Group) raiseLevel(ctx context.Context) error {
	cfg, _, err := g.configuration()
	if err != nil {
		return err
	}
	target := uint64(fsm.ApplyLevel)
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
		target = min(target, got.MaxApplyLevel)
	}
	if target <= g.fsm.Level() {
		return fmt.Errorf("a member's build applies up to level %d", target)
	}
	res, err := g.propose(ctx, fsm.Command{Kind: fsm.KindSetLevel, Level: target})
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("set level %d: %s", target, res.Message)
	}
	g.log.Info("raised the apply level: every member's build knows it", "level", target)
	return nil
}

// checkJoinerLevel refuses a member whose build applies a lower level than the log already
// uses: it would apply the log's newer rules the old way and diverge. A joiner that does not
// answer yet (an operator adding a node before starting it) is let in; the leader's level
// loop will not raise the level past it later.
func (g *Group) checkJoinerLevel(ctx context.Context, req api.JoinRequest) error {
	level := g.fsm.Level()
	if level == 0 || req.HTTPAddr == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	got, err := g.srv.askSelf(ctx, req.HTTPAddr)
	if err != nil {
		return nil
	}
	if got.MaxApplyLevel < level {
		return api.Errorf(api.FailedPrecondition, "member %q runs a build that applies up to level %d, and the cluster's log is at level %d: upgrade it first", req.ID, got.MaxApplyLevel, level)
	}
	return nil
}
