package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/proc"
	"github.com/flashstock/flashstock/node"
)

// devOptions are the flags of "stockd dev".
type devOptions struct {
	nodes           int
	groups          int
	baseDir         string
	keep            bool
	httpPort        int
	raftPort        int
	logLevel        string
	logJSON         bool
	readyTimeout    time.Duration
	shutdownTimeout time.Duration
}

func newDevFlagSet(o *devOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("stockd dev", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&o.nodes, "nodes", 3, "cluster size: 3 or 5")
	fs.IntVar(&o.groups, "groups", 1, "data `groups` of the cluster (n1 bootstraps them; above 1 adds the meta group, and the others join and get replicas)")
	fs.StringVar(&o.baseDir, "base-dir", "", "`dir` holding one data dir per node (default: a temp dir, removed on exit unless --keep)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp base dir on exit (a --base-dir you name is always kept)")
	fs.IntVar(&o.httpPort, "http-port", 4001, "HTTP `port` of the first node, the next ones count up; 0 picks free ports")
	fs.IntVar(&o.raftPort, "raft-port", 5001, "raft `port` of the first node, the next ones count up; 0 picks free ports")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log `level` of the nodes: trace, debug, info, warn or error")
	fs.BoolVar(&o.logJSON, "log-json", false, "log JSON lines instead of text")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 30*time.Second, "how long to wait for a leader and every member")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 15*time.Second, "bound of the graceful shutdown on Ctrl-C")
	return fs
}

func parseDevOptions(args []string) (*devOptions, error) {
	o := &devOptions{}
	fs := newDevFlagSet(o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, parseError(fs, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	if o.groups < 1 || o.groups > api.SlotCount {
		errs = append(errs, fmt.Errorf("--groups must be 1..%d, got %d", api.SlotCount, o.groups))
	}
	if o.nodes != 3 && o.nodes != 5 {
		errs = append(errs, fmt.Errorf("--nodes must be 3 or 5, got %d", o.nodes))
	}
	for name, p := range map[string]int{"http-port": o.httpPort, "raft-port": o.raftPort} {
		if p < 0 || p != 0 && p+o.nodes-1 > 65535 {
			errs = append(errs, fmt.Errorf("--%s %d: out of range", name, p))
		}
	}
	if hclog.LevelFromString(o.logLevel) == hclog.NoLevel {
		errs = append(errs, fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", o.logLevel))
	}
	if o.readyTimeout <= 0 || o.shutdownTimeout <= 0 {
		errs = append(errs, errors.New("--ready-timeout and --shutdown-timeout must be positive"))
	}
	return o, errors.Join(errs...)
}

// runDev runs "stockd dev": a whole cluster on loopback, each node its own stockd process.
func runDev(args []string, stdout, stderr io.Writer) int {
	o, err := parseDevOptions(args)
	if errors.Is(err, flag.ErrHelp) {
		printDevUsage(stdout)
		return 0
	}
	if err != nil {
		reportUsageError(stderr, "stockd dev", err)
		return exitUsage
	}

	sigs := notifySignals()
	term := &lockedWriter{w: stderr}
	logger := createLogger(o.logLevel, o.logJSON, term)
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "stockd dev: find this program to start the nodes with: %v\n", err)
		return exitFailure
	}
	if o.baseDir == "" {
		reportAbandoned(term, os.TempDir())
	}
	baseDir, removeBaseDir, err := createBaseDir(o)
	if err != nil {
		fmt.Fprintf(stderr, "stockd dev: %v\n", err)
		return exitFailure
	}
	defer removeBaseDir()
	release, err := claimBaseDir(term, baseDir, o)
	if err != nil {
		fmt.Fprintf(stderr, "stockd dev: %v\n", err)
		return exitFailure
	}
	defer release()

	c, err := newDevCluster(o, exe, baseDir, term)
	if err == nil {
		err = c.start(baseDir, !o.logJSON)
	}
	if err != nil {
		fmt.Fprintf(stderr, "stockd dev: %v\n", err)
		return exitFailure
	}
	defer c.kill() // no node outlives the parent, whichever way it returns
	var view *api.Cluster
	sig, err := untilSignal(sigs, o.readyTimeout, func(ctx context.Context) (err error) {
		view, err = c.waitReady(ctx)
		return err
	})
	if sig != nil || err != nil {
		if sig != nil {
			err = fmt.Errorf("interrupted by %v while waiting for the cluster", sig)
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout+devWaitTimeout)
		defer cancel()
		_ = c.shutdown(ctx)
		fmt.Fprintf(stderr, "stockd dev: %v\n", err)
		if sig == nil {
			hint := ""
			if o.httpPort != 0 || o.raftPort != 0 {
				hint = " (ports taken? --http-port 0 --raft-port 0 picks free ones)"
			}
			fmt.Fprintf(stderr, "The nodes' last lines%s:\n", hint)
			for _, n := range c.nodes {
				fmt.Fprint(stderr, n.out.recent())
			}
		}
		return exitFailure
	}

	printDevBanner(stdout, c, view, baseDir, o)
	c.serving.Store(true)
	for _, n := range c.nodes {
		n.out.show() // from now on a node's warnings are news, not start-up chatter
	}
	code := awaitShutdown(logger, sigs, c.allGone, func() int {
		fmt.Fprintln(term, "stockd dev: every node has exited")
		return exitFailure
	}, c.shutdown, o.shutdownTimeout+devWaitTimeout)
	if code == 0 {
		kept := "removed"
		if o.baseDir != "" || o.keep {
			kept = "kept in " + baseDir
		}
		fmt.Fprintf(stderr, "stockd dev: every node stopped cleanly; the data is %s.\n", kept)
	}
	return code
}

// createBaseDir makes the dir of the nodes' data dirs, and the function that removes it on
// exit when it is a temp dir nobody asked to keep.
func createBaseDir(o *devOptions) (dir string, remove func(), err error) {
	if o.baseDir != "" {
		// The members' raft addresses are in the data: a restart on free ports would start
		// nodes that can never reach each other.
		if (o.httpPort == 0 || o.raftPort == 0) && node.HasState(filepath.Join(o.baseDir, "n1")) {
			return "", nil, fmt.Errorf("--base-dir %s holds a cluster: restart it on the ports it was started with (--http-port and --raft-port other than 0)", o.baseDir)
		}
		if err := os.MkdirAll(o.baseDir, 0o700); err != nil {
			return "", nil, fmt.Errorf("--base-dir: %w", err)
		}
		return o.baseDir, func() {}, nil
	}
	dir, err = os.MkdirTemp("", "stockd-dev-")
	if err != nil {
		return "", nil, fmt.Errorf("create temp base dir: %w", err)
	}
	if o.keep {
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// waitReady waits until there is a leader and every node is a member, and in a multi-group
// cluster until every group has its replicas and a leader (proc.Ready), and returns the
// cluster view. A node that exits meanwhile (its port taken, say) ends the wait.
func (c *devCluster) waitReady(ctx context.Context) (*api.Cluster, error) {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.HTTPAddr
	}
	return proc.WaitReady(ctx, http.DefaultClient, addrs, c.procs()...)
}

// printDevBanner shows the nodes with their PIDs and a session to copy and paste.
func printDevBanner(w io.Writer, c *devCluster, view *api.Cluster, baseDir string, o *devOptions) {
	roles := map[string]string{}
	for _, m := range view.Nodes {
		roles[m.ID] = m.Role
	}
	if o.groups > 1 {
		fmt.Fprintf(w, "\nflashstock dev cluster is up: %d nodes, each its own stockd process, hosting the meta group (leader %s) and %d data groups (SKUs placed by slot, leaders spread)\n\n",
			len(c.nodes), view.Leader, o.groups)
	} else {
		fmt.Fprintf(w, "\nflashstock dev cluster is up: %d nodes, leader %s (term %d), each its own stockd process\n\n", len(c.nodes), view.Leader, view.Term)
	}
	leaderPID := 0
	for _, n := range c.nodes {
		fmt.Fprintf(w, "  %-3s pid %-7d %-8s http://%-21s raft %-21s data %s\n", n.ID, n.p.PID(), roles[n.ID], n.HTTPAddr, n.RaftAddr, n.DataDir)
		if n.ID == view.Leader {
			leaderPID = n.p.PID()
		}
	}
	var eps []string
	for _, n := range c.nodes {
		eps = append(eps, n.HTTPAddr)
	}
	a, b, last := c.nodes[0].HTTPAddr, c.nodes[min(1, len(c.nodes)-1)].HTTPAddr, c.nodes[len(c.nodes)-1].HTTPAddr
	fmt.Fprintf(w, `
Try it (any node answers; followers forward writes to the leader):
  curl -sS -X PUT  http://%[1]s/v1/skus/phone -d '{"stock":100,"per_user_limit":2}'
  curl -sS -X POST http://%[2]s/v1/skus/phone/deduct -d '{"qty":1,"request_id":"order-1","user_id":"alice"}'
  curl -sS -X POST http://%[2]s/v1/skus/phone/deduct -d '{"qty":1,"request_id":"order-1","user_id":"alice"}'   # a retry: duplicate, not sold twice
  curl -sS 'http://%[3]s/v1/skus/phone?consistency=strong'
  curl -sS 'http://%[3]s/v1/skus/phone?consistency=stale'
  curl -sS http://%[1]s/v1/cluster
  %[4]s --endpoints %[5]s cluster status
  %[6]s
  # the dashboard: http://%[1]s/ui/

`, a, b, last, stockctlCommand(c.exe), strings.Join(eps, ","), killHint(c, o, leaderPID, view.Leader))
	fmt.Fprintf(w, "Each node's log is %s/<id>.log; from here on, their warnings show below.\n", baseDir)
	switch {
	case o.baseDir == "" && !o.keep:
		fmt.Fprintln(w, "Press Ctrl-C to stop; the data dirs are removed on exit (--keep keeps them).")
	default:
		fmt.Fprintf(w, "Press Ctrl-C to stop; the data stays in %s.\n", baseDir)
	}
}

// killHint is the banner's line about killing the leader: the others take over. With
// several groups it first shows where their leaders are.
func killHint(c *devCluster, o *devOptions, leaderPID int, leader string) string {
	kill := fmt.Sprintf("kill -9 %d      # the leader, %s: the others elect a new one and go on serving", leaderPID, leader)
	if o.groups > 1 {
		return fmt.Sprintf("%s --endpoints %s group list   # the groups, each with its leader\n  %s", stockctlCommand(c.exe), c.nodes[0].HTTPAddr, kill)
	}
	return kill
}

// stockctlCommand is how to run stockctl from where the user is: the stockctl built next to
// this stockd (make build puts both in bin/), one on PATH, or go run from the repository.
func stockctlCommand(exe string) string {
	beside := filepath.Join(filepath.Dir(exe), "stockctl")
	if _, err := os.Stat(beside); err == nil {
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, beside); err == nil && !strings.HasPrefix(rel, "..") {
				if !strings.Contains(rel, string(filepath.Separator)) {
					rel = "." + string(filepath.Separator) + rel
				}
				return rel
			}
		}
		return beside
	}
	if _, err := exec.LookPath("stockctl"); err == nil {
		return "stockctl"
	}
	return "go run ./cmd/stockctl" // the README's way, from the repository's root
}

func printDevUsage(w io.Writer) {
	fmt.Fprint(w, `stockd dev runs a whole flashstock cluster on loopback for trying the API out: each
node is its own stockd process (kill -9 one, and the others go on). n1 bootstraps, the
others join through it. Ctrl-C stops every node gracefully; the nodes also stop if this
process dies. Each node logs to <base dir>/<id>.log; the terminal shows the nodes' warnings
from the banner on. STOCKD_* variables are not passed to the nodes: their flags are the
ones shown here.

Usage:
  stockd dev [flags]

Examples:
  stockd dev                                   # 3 nodes: HTTP 127.0.0.1:4001-4003, raft 5001-5003
  stockd dev --nodes 5 --http-port 0 --raft-port 0   # 5 nodes on free ports
  stockd dev --base-dir ./devdata              # data kept in ./devdata (restart with the same flags and fixed ports)
  stockd dev --groups 4                        # 3 nodes, the meta group and 4 data groups, leaders spread

Flags:
`)
	newDevFlagSet(&devOptions{}).VisitAll(func(f *flag.Flag) { printFlag(w, f) })
}

// devMarker is the file a running "stockd dev" keeps in its base dir and removes when it
// exits cleanly: found later with its process gone, it means an unclean exit (the parent
// killed) whose data is still there.
type devMarker struct {
	PID      int  `json:"pid"`
	Nodes    int  `json:"nodes"`
	HTTPPort int  `json:"http_port"` // 0: free ports, which a restart cannot reuse
	RaftPort int  `json:"raft_port"`
	Temp     bool `json:"temp"` // a temp dir, removed on a clean exit unless --keep
}

const devMarkerName = "dev.json"

func readDevMarker(dir string) (devMarker, bool) {
	var m devMarker
	b, err := os.ReadFile(filepath.Join(dir, devMarkerName))
	return m, err == nil && json.Unmarshal(b, &m) == nil && m.PID > 0
}

// processAlive reports whether pid is a running process (signal 0 checks without sending).
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}

// claimBaseDir refuses a base dir another "stockd dev" is running on, says so when the
// last one on it did not exit cleanly, and writes this run's marker; release removes it.
func claimBaseDir(w io.Writer, dir string, o *devOptions) (release func(), err error) {
	if m, ok := readDevMarker(dir); ok {
		if processAlive(m.PID) {
			return nil, fmt.Errorf("%s is in use by another stockd dev (pid %d)", dir, m.PID)
		}
		fmt.Fprintf(w, "stockd dev: the cluster in %s did not stop cleanly last time (stockd dev pid %d); starting it again from its data\n", dir, m.PID)
	}
	m := devMarker{PID: os.Getpid(), Nodes: o.nodes, HTTPPort: o.httpPort, RaftPort: o.raftPort, Temp: o.baseDir == ""}
	b, _ := json.Marshal(m)
	path := filepath.Join(dir, devMarkerName)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return func() { os.Remove(path) }, nil
}

// reportAbandoned tells about temp base dirs whose "stockd dev" died without cleaning up,
// and how --base-dir brings their data back.
func reportAbandoned(w io.Writer, tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, "stockd-dev-*"))
	for _, dir := range dirs {
		m, ok := readDevMarker(dir)
		if !ok || processAlive(m.PID) {
			continue
		}
		fmt.Fprintf(w, "stockd dev: an earlier stockd dev (pid %d) did not exit cleanly and left its %d nodes' data in %s.\n", m.PID, m.Nodes, dir)
		if m.HTTPPort == 0 || m.RaftPort == 0 {
			fmt.Fprintf(w, "  It ran on free ports, so it cannot be restarted; remove it: rm -r %s\n", dir)
			continue
		}
		ports := ""
		if m.HTTPPort != 4001 || m.RaftPort != 5001 {
			ports = fmt.Sprintf(" --http-port %d --raft-port %d", m.HTTPPort, m.RaftPort)
		}
		fmt.Fprintf(w, "  To bring it back: stockd dev --base-dir %s%s --nodes %d   (or drop it: rm -r %s)\n", dir, ports, m.Nodes, dir)
	}
}
