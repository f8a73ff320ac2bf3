package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/node"
	"github.com/flashstock/flashstock/ui"
)

// devOptions are the flags of "stockd dev".
type devOptions struct {
	nodes           int
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

// runDev runs "stockd dev": a whole cluster on loopback in this one process.
func runDev(args []string, stdout, stderr io.Writer) int {
	o, err := parseDevOptions(args)
	if errors.Is(err, flag.ErrHelp) {
		printDevUsage(stdout)
		return 0
	}
	if err != nil {
		reportUsageError(stderr, "stockd dev", err)
		return 2
	}

	sigs := notifySignals()
	logger := createLogger(o.logLevel, o.logJSON, stderr)
	baseDir, removeBaseDir, err := createBaseDir(o)
	if err != nil {
		fmt.Fprintf(stderr, "stockd dev: %v\n", err)
		return 1
	}
	defer removeBaseDir()

	c, err := startDevCluster(o, baseDir, logger)
	if err != nil {
		fmt.Fprintf(stderr, "stockd dev: %v\n", err)
		return 1
	}
	var view *api.Cluster
	sig, err := untilSignal(sigs, o.readyTimeout, func(ctx context.Context) (err error) {
		view, err = c.waitReady(ctx)
		return err
	})
	if sig != nil || err != nil {
		if sig != nil {
			err = fmt.Errorf("interrupted by %v while waiting for the cluster", sig)
		}
		fmt.Fprintf(stderr, "stockd dev: %v\n", err)
		ctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
		defer cancel()
		c.shutdown(ctx)
		return 1
	}

	printDevBanner(stdout, c, view, baseDir, o)
	return awaitShutdown(logger, sigs, nil, nil, c.shutdown, o.shutdownTimeout)
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

// devCluster is the nodes of "stockd dev", n1 first.
type devCluster struct {
	nodes []*node.Node
}

// startDevCluster starts n1 with --bootstrap, then the others joining through n1.
func startDevCluster(o *devOptions, baseDir string, logger hclog.Logger) (*devCluster, error) {
	c := &devCluster{}
	for i := range o.nodes {
		cfg := node.DefaultConfig()
		cfg.UI = ui.Handler()
		cfg.ID = "n" + strconv.Itoa(i+1)
		cfg.DataDir = filepath.Join(baseDir, cfg.ID)
		cfg.HTTPAddr = devAddr(o.httpPort, i)
		cfg.RaftAddr = devAddr(o.raftPort, i)
		cfg.Logger = logger
		if i == 0 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = []string{c.nodes[0].HTTPAddr()}
		}
		n, err := node.New(cfg)
		if err != nil {
			c.shutdown(context.Background())
			hint := ""
			if o.httpPort != 0 || o.raftPort != 0 {
				hint = " (ports taken? --http-port 0 --raft-port 0 picks free ones)"
			}
			return nil, fmt.Errorf("start %s: %w%s", cfg.ID, err, hint)
		}
		c.nodes = append(c.nodes, n)
	}
	return c, nil
}

// devAddr is the loopback address of node i counting up from port, or a free port.
func devAddr(port, i int) string {
	if port == 0 {
		return "127.0.0.1:0"
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port+i))
}

// waitReady waits until there is a leader and every node is a member, and returns the
// cluster view.
func (c *devCluster) waitReady(ctx context.Context) (*api.Cluster, error) {
	if _, err := c.nodes[0].WaitLeader(ctx); err != nil {
		return nil, err
	}
	url := "http://" + c.nodes[0].HTTPAddr() + "/v1/cluster"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		view, err := getCluster(ctx, http.DefaultClient, url)
		if err == nil {
			err = checkDevView(view, len(c.nodes))
		}
		if err == nil {
			return view, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster not ready: %w", last)
		case <-tick.C:
		}
	}
}

// checkDevView says why a cluster view is not ready yet: no leader, a member missing, or
// a member whose role is unknown (not answering, or its address not yet replicated).
func checkDevView(view *api.Cluster, want int) error {
	if view.Leader == "" {
		return errors.New("no leader yet")
	}
	if len(view.Nodes) != want {
		return fmt.Errorf("%d of %d nodes are members", len(view.Nodes), want)
	}
	for _, m := range view.Nodes {
		if m.Role == api.RoleUnknown || m.Role == "" {
			return fmt.Errorf("member %s does not answer yet", m.ID)
		}
	}
	return nil
}

// shutdown stops every node at once, bounded by ctx; a leader hands over first.
func (c *devCluster) shutdown(ctx context.Context) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() {
			if err := n.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", n.ID(), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// getCluster reads GET /v1/cluster.
func getCluster(ctx context.Context, hc *http.Client, url string) (*api.Cluster, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var view api.Cluster
	if err := json.NewDecoder(resp.Body).Decode(&view); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return &view, nil
}

// printDevBanner shows the endpoints and a session to copy and paste.
func printDevBanner(w io.Writer, c *devCluster, view *api.Cluster, baseDir string, o *devOptions) {
	roles := map[string]string{}
	for _, m := range view.Nodes {
		roles[m.ID] = m.Role
	}
	fmt.Fprintf(w, "\nflashstock dev cluster is up: %d nodes, leader %s (term %d)\n\n", len(c.nodes), view.Leader, view.Term)
	for _, n := range c.nodes {
		fmt.Fprintf(w, "  %-3s %-8s http://%-21s raft %-21s data %s\n", n.ID(), roles[n.ID()], n.HTTPAddr(), n.RaftAddr(), filepath.Join(baseDir, n.ID()))
	}
	a, b, last := c.nodes[0].HTTPAddr(), c.nodes[1].HTTPAddr(), c.nodes[len(c.nodes)-1].HTTPAddr()
	fmt.Fprintf(w, `
Try it (any node answers; followers forward writes to the leader):
  curl -sS -X PUT  http://%[1]s/v1/skus/phone -d '{"stock":100,"per_user_limit":2}'
  curl -sS -X POST http://%[2]s/v1/skus/phone/deduct -d '{"qty":1,"request_id":"order-1","user_id":"alice"}'
  curl -sS -X POST http://%[2]s/v1/skus/phone/deduct -d '{"qty":1,"request_id":"order-1","user_id":"alice"}'   # a retry: duplicate, not sold twice
  curl -sS 'http://%[3]s/v1/skus/phone?consistency=strong'
  curl -sS 'http://%[3]s/v1/skus/phone?consistency=stale'
  curl -sS http://%[1]s/v1/cluster
  stockctl --endpoints %[1]s,%[2]s,%[3]s cluster status

`, a, b, last)
	switch {
	case o.baseDir == "" && !o.keep:
		fmt.Fprintln(w, "Press Ctrl-C to stop; the data dirs are removed on exit (--keep keeps them).")
	default:
		fmt.Fprintf(w, "Press Ctrl-C to stop; the data stays in %s.\n", baseDir)
	}
}

func printDevUsage(w io.Writer) {
	fmt.Fprint(w, `stockd dev runs a whole flashstock cluster on loopback in this one process, for trying
the API out. n1 bootstraps, the others join through it; Ctrl-C stops every node.

Usage:
  stockd dev [flags]

Examples:
  stockd dev                                   # 3 nodes: HTTP 127.0.0.1:4001-4003, raft 5001-5003
  stockd dev --nodes 5 --http-port 0 --raft-port 0   # 5 nodes on free ports
  stockd dev --base-dir ./devdata              # data kept in ./devdata (restart with the same flags and fixed ports)

Flags:
`)
	newDevFlagSet(&devOptions{}).VisitAll(func(f *flag.Flag) { printFlag(w, f) })
}
