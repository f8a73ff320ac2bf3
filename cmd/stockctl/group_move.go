package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// waitPoll is how often --wait reads the cluster.
const waitPoll = 500 * time.Millisecond

func runGroupMove(args []string, stdout, stderr io.Writer) error {
	c := newCLI("group move", "group move <group> --from NODE --to NODE [--wait] [flags]", `
Moves data group <group>'s replica from node --from to node --to. The move is recorded in
the placement as a pin, and the placement controller carries it out in single raft
steps: it adds --to as a nonvoter, promotes it once it has caught up, hands leadership
away from --from if it leads, and removes --from. The pin holds, the other groups
balanced around it, until 'stockctl group balance' clears it. The command answers once
the move is recorded and prints the steps the controller is expected to take; with
--wait it then polls the cluster until the group's voters show the move done, within
--timeout.

Refused, with the placement rule named: an unknown group or node (exit 4), the meta
group, --to a voter of the group already (already_replica), --from not one (not_replica),
--to draining (node_draining) or not answering (node_down), a move that would leave the
group without a live majority (no_quorum), a move off the group's pinned leader
(pinned_leader), a group the controller is moving a replica of (group_moving: ask again
shortly).

examples:
  stockctl group move 2 --from n1 --to n4
  stockctl group move 2 --from n1 --to n4 --wait --timeout 2m`, stdout, stderr)
	from := c.fs.String("from", "", "the node whose replica moves (required)")
	to := c.fs.String("to", "", "the node it moves to (required)")
	wait := c.fs.Bool("wait", false, "wait until the move is done, within --timeout")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	id, err := c.groupID(pos[0])
	if err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return c.usageError("--from and --to are required")
	}
	if *from == *to {
		return c.usageError("--from and --to name the same node %q", *from)
	}
	return c.placementChange(stdout, *wait,
		func(ctx context.Context, cl *client.Client) (api.PlacementChange, error) {
			return cl.MoveReplica(ctx, id, *from, *to)
		},
		func(_ context.Context, _ *client.Client, st api.Cluster) (bool, string) {
			g := findGroup(st, id)
			if g == nil {
				return false, fmt.Sprintf("group %d is not in the placement", id)
			}
			done := g.RoleOf(*to) == api.Voter && g.RoleOf(*from) == "" && !slices.ContainsFunc(g.Replicas, func(r api.Replica) bool { return r.Role == api.Nonvoter })
			return done, fmt.Sprintf("group %d: replicas %s", id, replicaList(*g))
		},
		fmt.Sprintf("group %d: replica moved from %s to %s", id, *from, *to))
}

func runGroupLeader(args []string, stdout, stderr io.Writer) error {
	c := newCLI("group leader", "group leader <group> <node> [--wait] [flags]", `
Pins data group <group>'s leadership to <node>, one of the voters the group is steered to
(the destination of a move counts: the leadership follows it there). The group's voters
are pinned with it. The placement controller makes <node> the group's preferred leader
and transfers leadership to it, and brings it back there after an election, until
'stockctl group balance' clears the pin. With --wait it polls the cluster until <node>
leads the group, within --timeout.

examples:
  stockctl group leader 2 n3
  stockctl group leader 2 n3 --wait`, stdout, stderr)
	wait := c.fs.Bool("wait", false, "wait until the node leads the group, within --timeout")
	pos, err := c.parse(args, 2, 2)
	if err != nil {
		return err
	}
	id, err := c.groupID(pos[0])
	if err != nil {
		return err
	}
	node := pos[1]
	return c.placementChange(stdout, *wait,
		func(ctx context.Context, cl *client.Client) (api.PlacementChange, error) {
			return cl.PinLeader(ctx, id, node)
		},
		func(_ context.Context, _ *client.Client, st api.Cluster) (bool, string) {
			g := findGroup(st, id)
			if g == nil {
				return false, fmt.Sprintf("group %d is not in the placement", id)
			}
			// The answering node shows the live leader of the groups it hosts only: the
			// preferred leader is the controller's, and the live one, when shown, must agree.
			done := g.PreferredLeader == node && (g.Leader == node || g.Leader == "")
			return done, fmt.Sprintf("group %d: leader %s, preferred %s", id, dash(g.Leader), g.PreferredLeader)
		},
		fmt.Sprintf("group %d: led by %s", id, node))
}

func runGroupBalance(args []string, stdout, stderr io.Writer) error {
	c := newCLI("group balance", "group balance [--dry-run] [--wait] [flags]", `
Clears every pin that 'group move' and 'group leader' made, so that the placement
controller balances every group's replicas and leaders over the nodes again now, and
prints the steps it is expected to take (none: every group is where it should be). With
--dry-run it changes nothing and only prints them. With --wait it polls until the
controller has no step left and every group is led by its preferred leader, within
--timeout.

examples:
  stockctl group balance --dry-run
  stockctl group balance --wait --timeout 5m`, stdout, stderr)
	dry := c.fs.Bool("dry-run", false, "print the steps, change nothing")
	wait := c.fs.Bool("wait", false, "wait until the controller has nothing left to do, within --timeout")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	if *dry && *wait {
		return c.usageError("--dry-run changes nothing to wait for")
	}
	return c.placementChange(stdout, *wait,
		func(ctx context.Context, cl *client.Client) (api.PlacementChange, error) {
			return cl.Balance(ctx, *dry)
		},
		func(ctx context.Context, cl *client.Client, st api.Cluster) (bool, string) {
			// The controller's forecast from the placement as it is now: a dry run again.
			left, err := cl.Balance(ctx, true)
			if err != nil {
				return false, err.Error()
			}
			led := true
			for _, g := range st.Groups {
				led = led && (g.Leader == "" || g.Leader == g.PreferredLeader)
			}
			return len(left.Steps) == 0 && led, fmt.Sprintf("%d steps left", len(left.Steps))
		},
		"balanced")
}

// groupID reads a group id argument.
func (c *cli) groupID(arg string) (uint64, error) {
	id, err := strconv.ParseUint(arg, 10, 64)
	if err != nil {
		return 0, c.usageError("group must be a number (see stockctl group list), got %q", arg)
	}
	return id, nil
}

// placementChange sends an operator's change, prints what the controller will do, and
// with wait polls the cluster until done says so; the wait shares --timeout with the
// change.
func (c *cli) placementChange(stdout io.Writer, wait bool, change func(context.Context, *client.Client) (api.PlacementChange, error),
	done func(context.Context, *client.Client, api.Cluster) (bool, string), doneMsg string) error {
	cl, ctx, release, err := c.connect()
	if err != nil {
		return err
	}
	defer release()
	out, err := change(ctx, cl)
	if err != nil {
		return c.explain(err)
	}
	if !wait {
		if c.json {
			return writeJSON(stdout, out)
		}
		printSteps(stdout, out)
		return nil
	}
	if !c.json {
		printSteps(stdout, out)
	}
	for {
		st, err := cl.ClusterStatus(ctx)
		if err == nil {
			ok, state := done(ctx, cl, st)
			if ok {
				if c.json {
					return writeJSON(stdout, struct {
						api.PlacementChange
						Done bool `json:"done"`
					}{out, true})
				}
				fmt.Fprintln(stdout, doneMsg)
				return nil
			}
			err = fmt.Errorf("not done: %s", state)
		}
		select {
		case <-ctx.Done():
			return c.explain(fmt.Errorf("waited --timeout %v: %w (%w)", c.timeout, context.DeadlineExceeded, err))
		case <-time.After(waitPoll):
		}
	}
}

func printSteps(w io.Writer, out api.PlacementChange) {
	fmt.Fprintf(w, "placement version %d\n", out.PlacementVersion)
	if len(out.Steps) == 0 {
		fmt.Fprintln(w, "no steps: every group is where it should be")
		return
	}
	rows := make([][]string, len(out.Steps))
	for i, s := range out.Steps {
		rows[i] = []string{strconv.Itoa(i + 1), strconv.FormatUint(s.Group, 10), s.Kind, s.Node}
	}
	_ = writeTable(w, "STEP\tGROUP\tKIND\tNODE", rows)
}

func findGroup(st api.Cluster, id uint64) *api.Group {
	for i := range st.Groups {
		if st.Groups[i].ID == id {
			return &st.Groups[i]
		}
	}
	return nil
}
