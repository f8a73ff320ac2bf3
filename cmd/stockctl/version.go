package main

import (
	"fmt"
	"io"
	"time"

	"github.com/flashstock/flashstock/internal/version"
)

// versionReport is what `stockctl version --json` prints.
type versionReport struct {
	Client  version.Info    `json:"client"`
	Members []memberVersion `json:"members,omitempty"`
	// ClusterError says why the members' versions are missing (no node answered).
	ClusterError string `json:"cluster_error,omitempty"`
}

type memberVersion struct {
	ID       string `json:"id"`
	Role     string `json:"role"`
	Version  string `json:"version"` // empty: the member did not answer
	Revision string `json:"revision,omitempty"`
}

// versionTimeout bounds the cluster part when --timeout is not given: the client's version
// should not wait ten seconds for a cluster that is not there.
const versionTimeout = 3 * time.Second

func runVersion(args []string, stdout, stderr io.Writer) error {
	c := newCLI("version", "version [flags]", `
Prints this stockctl's build (version, git revision, Go version) and, when the cluster at
--endpoints answers, each member's version as the member itself reports it: the check
that a rolling upgrade has reached every node. A cluster that does not answer is not an
error here: the client's version is printed anyway and the reason on stderr.

examples:
  stockctl version
  stockctl version --endpoints 10.0.0.1:4001 --json`, stdout, stderr)
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	if !c.isSet("timeout") {
		c.timeout = versionTimeout
	}
	out := versionReport{Client: version.Get()}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	if st, err := cl.ClusterStatus(ctx); err != nil {
		out.ClusterError = fmt.Sprintf("no member's version: the cluster at %s did not answer: %v", c.endpoints, err)
	} else {
		for _, n := range st.Nodes {
			out.Members = append(out.Members, memberVersion{ID: n.ID, Role: n.Role, Version: n.Version, Revision: n.Revision})
		}
	}
	if c.json {
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "stockctl %s\n", out.Client)
	if out.ClusterError != "" {
		fmt.Fprintf(stderr, "stockctl version: %s\n", out.ClusterError)
		return nil
	}
	fmt.Fprintln(stdout)
	rows := make([][]string, 0, len(out.Members))
	for _, m := range out.Members {
		rows = append(rows, []string{m.ID, m.Role, version.Label(m.Version, m.Revision)})
	}
	return writeTable(stdout, "ID\tROLE\tVERSION", rows)
}
