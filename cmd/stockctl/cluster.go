package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/version"
)

var clusterCommand = group("cluster", "show and change the cluster's membership", []sub{
	{"status", "list the members with their roles and progress", runClusterStatus},
	{"join", "add a running node to the cluster", runClusterJoin},
	{"leave", "remove a member from the cluster", runClusterLeave},
	{"transfer-leader", "hand leadership to another member", runClusterTransfer},
})

func runClusterStatus(args []string, stdout, stderr io.Writer) error {
	c := newCLI("cluster status", "cluster status [flags]", `
Lists the members as the leader sees them: role, voter or nonvoter, applied log index,
milliseconds since each heard from the leader, and the version each runs (as it reports
it: during a rolling upgrade, the members not yet upgraded). A member that does not
answer shows role "unknown", applied index "-" and version "-".

examples:
  stockctl cluster status
  stockctl cluster status --endpoints flashstock.internal:4001 --json`, stdout, stderr)
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	st, err := cl.ClusterStatus(ctx)
	if err != nil {
		return c.explain(err)
	}
	if c.json {
		return writeJSON(stdout, st)
	}
	leader := st.Leader
	if leader == "" {
		leader = "(none)"
	}
	fmt.Fprintf(stdout, "leader: %s  term: %d\n", leader, st.Term)
	if line := groupsLine(st); line != "" {
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintln(stdout)
	rows := make([][]string, 0, len(st.Nodes))
	for _, n := range st.Nodes {
		contact := "-"
		if n.LastContactMS >= 0 {
			contact = strconv.FormatInt(n.LastContactMS, 10) + "ms"
		}
		// A member the leader cannot reach reports nothing: its applied index is unknown,
		// and 0 would read as an empty log.
		applied := "-"
		if n.Role != api.RoleUnknown {
			applied = strconv.FormatUint(n.AppliedIndex, 10)
		}
		rows = append(rows, []string{n.ID, dash(n.HTTPAddr), n.RaftAddr, n.Role, n.Suffrage, applied, contact,
			version.Label(n.Version, n.Revision)})
	}
	return writeTable(stdout, "ID\tHTTP\tRAFT\tROLE\tSUFFRAGE\tAPPLIED\tLAST CONTACT\tVERSION", rows)
}

func runClusterJoin(args []string, stdout, stderr io.Writer) error {
	c := newCLI("cluster join", "cluster join --id ID --raft-addr HOST:PORT --http-addr HOST:PORT [--nonvoter] [flags]", `
Adds a node that is already running (started without --bootstrap or --join) to the
cluster, as a voter or, with --nonvoter, a nonvoter that receives the log but does not vote.
Joining a member that is already there with the same addresses succeeds.

examples:
  stockctl cluster join --id n4 --raft-addr 10.0.0.4:5001 --http-addr 10.0.0.4:4001
  stockctl cluster join --id r1 --raft-addr 10.0.1.9:5001 --http-addr 10.0.1.9:4001 --nonvoter`, stdout, stderr)
	var req api.JoinRequest
	c.fs.StringVar(&req.ID, "id", "", "the new member's id (required)")
	c.fs.StringVar(&req.RaftAddr, "raft-addr", "", "its raft address, host:port (required)")
	c.fs.StringVar(&req.HTTPAddr, "http-addr", "", "its HTTP API address, host:port (required)")
	c.fs.BoolVar(&req.Nonvoter, "nonvoter", false, "join as a nonvoter, without a vote")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"id", req.ID}, {"raft-addr", req.RaftAddr}, {"http-addr", req.HTTPAddr}} {
		if f.v == "" {
			return c.usageError("--%s is required", f.name)
		}
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	if err := cl.AddMember(ctx, req); err != nil {
		return c.explain(err)
	}
	if c.json {
		return writeJSON(stdout, map[string]string{"status": "ok", "joined": req.ID})
	}
	fmt.Fprintf(stdout, "member %s joined (raft %s, http %s)\n", req.ID, req.RaftAddr, req.HTTPAddr)
	return nil
}

func runClusterLeave(args []string, stdout, stderr io.Writer) error {
	c := newCLI("cluster leave", "cluster leave <id> [flags]", `
Removes a member from the cluster; the node stops once it learns it was removed. A removal
that would leave fewer healthy voters than a majority of the remaining ones is refused
(exit status 4) unless --force; removing the last voter is always refused.

examples:
  stockctl cluster leave n3
  stockctl cluster leave n2 --force   # n3's API is down but its raft runs`, stdout, stderr)
	force := c.fs.Bool("force", false, "remove even if the remaining voters look unable to form a majority")
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	remove := cl.RemoveMember
	if *force {
		remove = cl.ForceRemoveMember
	}
	if err := remove(ctx, pos[0]); err != nil {
		return c.explain(err)
	}
	if c.json {
		return writeJSON(stdout, map[string]string{"status": "ok", "removed": pos[0]})
	}
	fmt.Fprintf(stdout, "member %s removed\n", pos[0])
	return nil
}

func runClusterTransfer(args []string, stdout, stderr io.Writer) error {
	c := newCLI("cluster transfer-leader", "cluster transfer-leader [--to ID] [--group N] [flags]", `
Hands leadership to the member --to, or to the most up-to-date follower without it: before
maintenance on the leader's machine, for instance.

A multi-group cluster (bootstrapped with --groups above 1) has one leader per raft group:
--group names the one to move (0 is the meta group; "stockctl group list" shows them), and
is required there. Its placement controller steers each group's leadership back to the
group's preferred leader, so such a move lasts until it does.

examples:
  stockctl cluster transfer-leader
  stockctl cluster transfer-leader --to n2
  stockctl cluster transfer-leader --group 3 --to n2`, stdout, stderr)
	to := c.fs.String("to", "", "the member to lead (default: the leader picks)")
	group := c.fs.Uint64("group", 1, "the raft group whose leadership moves (required in a multi-group cluster)")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	if c.isSet("group") {
		err = cl.TransferGroupLeadership(ctx, *group, *to)
	} else {
		err = cl.TransferLeadership(ctx, *to)
	}
	if err != nil {
		return c.explain(err)
	}
	if c.json {
		out := map[string]any{"status": "ok", "to": *to}
		if c.isSet("group") {
			out["group"] = *group
		}
		return writeJSON(stdout, out)
	}
	what := "leadership"
	if c.isSet("group") {
		what = fmt.Sprintf("group %d's leadership", *group)
	}
	if *to == "" {
		fmt.Fprintf(stdout, "%s transferred\n", what)
	} else {
		fmt.Fprintf(stdout, "%s transferred to %s\n", what, *to)
	}
	return nil
}
