package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flashstock/flashstock/api"
)

// JoinError is NewContext's failure when no join address described the cluster in time:
// the node cannot tell whether it joins a single-group cluster or a multi-group one, and
// guessing wrong would leave it a member of neither (a multi-group joiner must open a meta
// group replica before it serves, and one that did not is never placed).
type JoinError struct {
	Join   []string      // the addresses asked
	Waited time.Duration // how long the node asked
	// Last is each address's last failure, joined.
	Last error
	// Cause is why the node stopped asking: context.DeadlineExceeded once JoinTimeout
	// passed, context.Canceled when NewContext's context ended.
	Cause error
}

func (e *JoinError) Error() string {
	return fmt.Sprintf("join: no member at %s described the cluster within %v (%v); start a member there, or fix --join: %v",
		strings.Join(e.Join, ","), e.Waited.Round(time.Millisecond), e.Cause, e.Last)
}

func (e *JoinError) Unwrap() []error { return []error{e.Cause, e.Last} }

// joinKindWarnEvery paces the warnings of a joiner still waiting for its cluster.
const joinKindWarnEvery = 10 * time.Second

// joiningMultiGroup asks the join addresses what kind of cluster this new node joins,
// before any group is opened: a multi-group cluster needs an empty meta group replica
// here, which only exists if it is opened now (routes read metaGroup unlocked). It asks
// again, with a backoff, until one answers: nodes may start in any order, and a joiner
// that guessed a single-group cluster when the one it joins has several would never be
// placed. JoinTimeout and ctx bound the wait; then NewContext fails with a *JoinError,
// which stockd turns into an exit its supervisor restarts it from.
func (n *Node) joiningMultiGroup(ctx context.Context) (bool, error) {
	if n.cfg.JoinTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.JoinTimeout)
		defer cancel()
	}
	start := time.Now()
	warned := start
	backoff := 100 * time.Millisecond
	for {
		var errs []error
		for _, addr := range n.cfg.Join {
			multi, err := n.clusterKind(ctx, addr)
			if err == nil {
				return multi, nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		}
		if time.Since(warned) >= joinKindWarnEvery {
			warned = time.Now()
			n.log.Warn("no join address has described the cluster yet; still asking", "join", n.cfg.Join,
				"waited", time.Since(start).Round(time.Second), "error", errors.Join(errs...))
		}
		select {
		case <-ctx.Done():
			return false, &JoinError{Join: n.cfg.Join, Waited: time.Since(start), Last: errors.Join(errs...), Cause: ctx.Err()}
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// clusterKind asks the member at addr whether its cluster has several groups. A member of
// a multi-group cluster that has not loaded its placement yet shows no groups and is
// asked again (an error); one of a build before groups existed shows no "groups" at all,
// and its cluster has one.
func (n *Node) clusterKind(ctx context.Context, addr string) (multi bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	var cl struct {
		Groups           []api.Group `json:"groups"` // nil: absent, an older build's answer
		PlacementVersion uint64      `json:"placement_version"`
	}
	if err := n.getJSON(ctx, addr, "/v1/cluster", &cl); err != nil {
		return false, err
	}
	switch {
	case cl.PlacementVersion > 0:
		n.log.Info("joining a multi-group cluster", "via", addr, "placement_version", cl.PlacementVersion)
		return true, nil
	case cl.Groups == nil || len(cl.Groups) > 0:
		return false, nil
	}
	return false, errors.New("the member has not loaded its cluster's placement yet")
}
