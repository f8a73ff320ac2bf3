// Command stockd runs a flashstock node, or with "stockd dev" a whole local cluster.
//
// main is a chain of steps: parse options, create the logger and the node config, start
// the node, log when a leader is elected, and wait for a signal to shut down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/internal/version"
	"github.com/flashstock/flashstock/node"
	"github.com/flashstock/flashstock/transport"
	"github.com/flashstock/flashstock/ui"
)

// Exit codes. exitRemoved is distinct so that a supervisor can tell a node that must not
// be restarted (deploy/systemd/stockd.service: RestartPreventExitStatus) from a failure
// worth a restart; docs/OPERATIONS.md lists them and `stockd --help` prints them.
const (
	exitFailure = 1 // start-up failed, or the node stopped on a fatal error
	exitUsage   = 2 // bad flags or configuration
	exitRemoved = 3 // removed from the cluster: restarting would not make it a member again
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main with its arguments and outputs passed in; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "dev":
			return runDev(args[1:], stdout, stderr)
		case "restore":
			return runRestore(args[1:], stdout, stderr)
		case "recover":
			return runRecover(args[1:], stdout, stderr)
		case "migrate-log":
			return runMigrateLog(args[1:], stdout, stderr)
		case "version", "--version", "-version":
			fmt.Fprintf(stdout, "stockd %s\n", version.Get())
			return 0
		}
	}

	opts, err := parseOptions(args, os.LookupEnv, os.ReadFile)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return 0
	}
	if err != nil {
		reportUsageError(stderr, "stockd", err)
		return exitUsage
	}

	sigs := notifySignals()
	logger := createLogger(opts.logLevel, opts.logJSON, stderr)
	cfg, err := createNodeConfig(opts, logger)
	if err != nil {
		logger.Error("invalid configuration", "error", err)
		return exitUsage
	}

	stopFaults, err := startFaults(&cfg, &opts.faults, logger)
	if err != nil {
		logger.Error("invalid configuration", "error", err)
		return exitUsage
	}
	defer stopFaults()

	logStartPlan(logger, cfg)
	// A joiner waits in start-up for its cluster to answer (--join-timeout): a signal
	// meanwhile ends the wait rather than waiting behind it.
	var n *node.Node
	sig, err := untilSignal(sigs, math.MaxInt64, func(ctx context.Context) (err error) {
		n, err = node.NewContext(ctx, cfg)
		return err
	})
	if sig != nil && errors.Is(err, context.Canceled) {
		logger.Info("stopped by a signal during start-up", "signal", sig.String(), "error", err)
		return 0
	}
	if err != nil {
		logger.Error("start-up failed", "error", err)
		return exitFailure
	}
	if sig != nil {
		// It came as the node finished starting: stop it as awaitShutdown would have.
		ctx, cancel := context.WithTimeout(context.Background(), opts.shutdownTimeout)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			logger.Error("shutdown finished with errors", "error", err)
			return exitFailure
		}
		return 0
	}

	go logLeaderElected(logger, n)
	return awaitShutdown(logger, sigs, n.Done(), func() int { return stoppedCode(logger, n.Removed()) }, n.Shutdown, opts.shutdownTimeout)
}

// stoppedCode reports a node that stopped on its own and returns the exit code for it.
func stoppedCode(logger hclog.Logger, removed bool) int {
	if removed {
		logger.Error("removed from the cluster: exiting with code 3, which tells a supervisor not to restart this node (it would not be a member again)",
			"exit_code", exitRemoved)
		return exitRemoved
	}
	logger.Error("stopped on its own (a fatal error; see above)")
	return exitFailure
}

// createLogger builds the one logger of the process; the node and raft log through it.
func createLogger(level string, json bool, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "stockd",
		Level:      hclog.LevelFromString(level),
		JSONFormat: json,
		Output:     w,
	})
}

// createNodeConfig turns options into a node.Config, loading the TLS and token files if
// any.
func createNodeConfig(o *options, logger hclog.Logger) (node.Config, error) {
	cfg := o.nodeConfig()
	cfg.Logger = logger
	cfg.UI = ui.Handler()
	if o.raftTLSCert != "" {
		server, client, err := transport.MutualTLS(o.raftTLSCert, o.raftTLSKey, o.raftTLSCA)
		if err != nil {
			return node.Config{}, fmt.Errorf("--raft-tls-cert/--raft-tls-key/--raft-tls-ca: %w", err)
		}
		cfg.RaftTLS, cfg.RaftClientTLS = server, client
	}
	if err := applySecurity(&cfg, o); err != nil {
		return node.Config{}, err
	}
	if rw, _ := o.dialRewrites(); len(rw) > 0 {
		logger.Warn("raft dials are rewritten (test harness setting)", "rewrites", o.raftDialRewrite.String())
		cfg.RaftDial = rewritingDialer(rw)
	}
	// A replica that cannot go on stops at once, with the exit code documented for a fatal
	// error (not node's default, which a library cannot choose for us).
	cfg.OnFatal = func(err error) {
		logger.Error("fatal: stopping so this replica cannot diverge", "error", err, "exit_code", exitFailure)
		os.Exit(exitFailure)
	}
	if err := cfg.Validate(); err != nil {
		return node.Config{}, o.describe(err)
	}
	return cfg, nil
}

// nodeConfig is the node.Config the options give, before any file is read: what check
// validates.
func (o *options) nodeConfig() node.Config {
	cfg := node.DefaultConfig()
	cfg.ID = o.id
	cfg.DataDir = o.dataDir
	cfg.HTTPAddr = o.httpAddr
	cfg.HTTPAdvertise = o.httpAdvertise
	cfg.RaftAddr = o.raftAddr
	cfg.RaftAdvertise = o.raftAdvertise
	cfg.Bootstrap = o.bootstrap
	cfg.Join = o.join
	cfg.JoinAsNonvoter = o.joinAsNonvoter
	cfg.JoinTimeout = o.joinTimeout
	cfg.Groups = o.groups
	cfg.HeartbeatTimeout = o.heartbeatTimeout
	cfg.ElectionTimeout = o.electionTimeout
	cfg.LeaderLeaseTimeout = o.leaderLeaseTimeout
	cfg.CommitTimeout = o.commitTimeout
	cfg.MaxAppendEntries = o.maxAppendEntries
	cfg.SnapshotThreshold = o.snapshotThreshold
	cfg.SnapshotInterval = o.snapshotInterval
	cfg.TrailingLogs = o.trailingLogs
	cfg.LogStore = o.raftLogStore
	cfg.WALSegmentSize = o.walSegmentSize
	cfg.MaxInflight = o.maxInflight
	cfg.RequestTimeout = o.requestTimeout
	cfg.ExpireInterval = o.expireInterval
	cfg.DedupWindow = o.dedupWindow
	cfg.LedgerMax = o.ledgerMax
	cfg.RateLimit, _ = parseRate(o.rateLimit) // a bad rate is check's to report, in the flag's syntax
	cfg.RateBurst = o.rateBurst
	cfg.EnablePprof = o.pprof
	cfg.StockMetricsSKUs = o.stockMetricsSKUs
	cfg.StockMetricsTop = o.stockMetricsTop
	cfg.DiskStallTimeout = o.diskStallTimeout
	return cfg
}

// rewritingDialer dials rw[addr] instead of addr when there is one.
func rewritingDialer(rw map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{KeepAlive: 15 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if via, ok := rw[addr]; ok {
			addr = via
		}
		return d.DialContext(ctx, network, addr)
	}
}

// logStartPlan says who this node is and how it will find its cluster.
func logStartPlan(logger hclog.Logger, cfg node.Config) {
	logger.Info("starting stockd", "version", version.Get().String(), "id", cfg.ID, "data_dir", cfg.DataDir,
		"http_addr", cfg.HTTPAddr, "raft_addr", cfg.RaftAddr, "tls", cfg.RaftTLS != nil)
	switch {
	case node.HasState(cfg.DataDir):
		logger.Info("data dir holds raft state: rejoining the cluster from it (--bootstrap and --join are not needed again)")
	case cfg.Bootstrap:
		logger.Info("bootstrapping a new cluster with this node as its first member")
	case len(cfg.Join) > 0:
		logger.Info("joining an existing cluster", "via", strings.Join(cfg.Join, ","), "nonvoter", cfg.JoinAsNonvoter)
	default:
		logger.Warn("neither --bootstrap nor --join: this node waits until a member adds it (stockctl cluster join)")
	}
}

// logLeaderElected logs once when this node first knows a leader, and reminds every
// leaderWaitReport while it does not. It returns when the node stops.
func logLeaderElected(logger hclog.Logger, n *node.Node) {
	const leaderWaitReport = 10 * time.Second
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), leaderWaitReport)
		leader, err := n.WaitLeader(ctx)
		cancel()
		switch {
		case err == nil:
			logger.Info("leader elected", "leader", leader, "self", leader == n.ID(), "after", time.Since(start).Round(time.Millisecond))
			return
		case errors.Is(err, context.DeadlineExceeded):
			logger.Warn("still no leader; is a quorum of members up?", "waiting", time.Since(start).Round(time.Second))
		default: // the node stopped
			return
		}
	}
}

// reportUsageError prints a usage error, one problem per line, and where help is.
func reportUsageError(w io.Writer, prog string, err error) {
	lines := strings.Split(err.Error(), "\n")
	if len(lines) == 1 {
		fmt.Fprintf(w, "%s: %s\n", prog, lines[0])
	} else {
		fmt.Fprintf(w, "%s: %d problems:\n", prog, len(lines))
		for _, l := range lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	fmt.Fprintf(w, "Run '%s --help' for usage.\n", prog)
}
