package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/node"
)

// envPrefix starts the environment variable of every flag: --data-dir is STOCKD_DATA_DIR.
const envPrefix = "STOCKD_"

// options are stockd's settings once the command line, the environment and the config file
// have been merged. Precedence: flag > environment > config file > default.
type options struct {
	configFile string

	id            string
	dataDir       string
	httpAddr      string
	httpAdvertise string
	raftAddr      string
	raftAdvertise string

	bootstrap      bool
	join           addrList
	joinAsNonvoter bool
	joinTimeout    time.Duration
	groups         int

	heartbeatTimeout   time.Duration
	electionTimeout    time.Duration
	leaderLeaseTimeout time.Duration
	commitTimeout      time.Duration
	maxAppendEntries   int
	snapshotThreshold  uint64
	snapshotInterval   time.Duration
	trailingLogs       uint64
	raftLogStore       string
	walSegmentSize     int

	maxInflight    int
	requestTimeout time.Duration
	expireInterval time.Duration
	dedupWindow    time.Duration
	ledgerMax      uint64

	raftTLSCert string
	raftTLSKey  string
	raftTLSCA   string

	httpTLSCert string
	httpTLSKey  string
	httpTLSCA   string
	tokenFile   string
	authReads   string
	rateLimit   string
	rateBurst   int

	pprof            bool
	stockMetricsSKUs addrList
	stockMetricsTop  int
	diskStallTimeout time.Duration

	// raftDialRewrite maps peer raft addresses to other addresses to dial instead: the
	// chaos suite puts a fault-injecting proxy on every directed link this way.
	raftDialRewrite addrList

	logLevel        string
	logJSON         bool
	shutdownTimeout time.Duration

	faults faultOptions // only the faults build has any

	// setBy names how the user wrote each flag whose value came from the environment or
	// the config file (see mergeSources), for error messages.
	setBy map[string]string
}

// newFlagSet binds every option to a flag whose default comes from node.DefaultConfig. The
// flag names are also the config file keys and, upper-cased, the environment variables.
func newFlagSet(o *options) *flag.FlagSet {
	d := node.DefaultConfig()
	fs := flag.NewFlagSet("stockd", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse errors are returned, help is printed by the caller

	fs.StringVar(&o.configFile, "config", "", "JSON `file` of settings keyed by flag name, e.g. {\"id\":\"n1\",\"join\":\"127.0.0.1:4001\"}")

	fs.StringVar(&o.id, "id", "", "member `id`, stable across restarts (required)")
	fs.StringVar(&o.dataDir, "data-dir", "", "`dir` for the raft log, snapshots and state; created if missing (required)")
	fs.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:4001", "`host:port` the HTTP API listens on")
	fs.StringVar(&o.httpAdvertise, "http-advertise", "", "`host:port` clients and peers use to reach the API (default: the bound address)")
	fs.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:5001", "`host:port` raft listens on")
	fs.StringVar(&o.raftAdvertise, "raft-advertise", "", "`host:port` peers dial for raft (default: the bound address)")

	fs.BoolVar(&o.bootstrap, "bootstrap", false, "start a new cluster with this node as its first member (ignored once the node has data)")
	fs.Var(&o.join, "join", "comma list of HTTP `addrs` of existing members to join through (ignored once the node has data)")
	fs.BoolVar(&o.joinAsNonvoter, "join-as-nonvoter", false, "join as a nonvoter that receives the log but does not vote")
	fs.DurationVar(&o.joinTimeout, "join-timeout", d.JoinTimeout, "how long a new node waits for a --join address to describe the cluster before it exits with 1 (0: no bound)")
	fs.IntVar(&o.groups, "groups", d.Groups, "`G` data groups for a cluster this node bootstraps (more than 1 adds the meta group); a restart must give the number the data dir was created with")

	fs.DurationVar(&o.heartbeatTimeout, "heartbeat-timeout", d.HeartbeatTimeout, "raft: follower silence before it starts an election")
	fs.DurationVar(&o.electionTimeout, "election-timeout", d.ElectionTimeout, "raft: candidate silence before it tries again")
	fs.DurationVar(&o.leaderLeaseTimeout, "leader-lease-timeout", d.LeaderLeaseTimeout, "raft: how long a leader leads without hearing from a quorum (at most --heartbeat-timeout)")
	fs.DurationVar(&o.commitTimeout, "commit-timeout", d.CommitTimeout, "raft: longest wait before a heartbeat carries the commit index")
	fs.IntVar(&o.maxAppendEntries, "max-append-entries", d.MaxAppendEntries, "raft: most entries per AppendEntries and per state machine batch (1..1024)")
	fs.Uint64Var(&o.snapshotThreshold, "snapshot-threshold", d.SnapshotThreshold, "raft: log entries since the last snapshot that trigger a new one")
	fs.DurationVar(&o.snapshotInterval, "snapshot-interval", d.SnapshotInterval, "raft: how often to check --snapshot-threshold")
	fs.Uint64Var(&o.trailingLogs, "trailing-logs", d.TrailingLogs, "raft: log entries kept after a snapshot for slow followers")
	fs.StringVar(&o.raftLogStore, "raft-log-store", node.LogStoreBolt, "raft log `store`: bolt (raft-boltdb, two fsyncs an append) or wal (raft-wal, one); a data dir keeps its kind (stockd migrate-log converts it)")
	fs.IntVar(&o.walSegmentSize, "raft-wal-segment-size", 0, "with --raft-log-store wal: segment file size in `bytes` (0: raft-wal's 64 MiB); the wal frees compacted entries a whole segment at a time")

	fs.IntVar(&o.maxInflight, "max-inflight", d.MaxInflight, "proposals waiting for commit on the leader before mutations get 429 overloaded")
	fs.DurationVar(&o.requestTimeout, "request-timeout", d.RequestTimeout, "bound of a request whose client set no deadline")
	fs.DurationVar(&o.expireInterval, "expire-interval", d.ExpireInterval, "how often the leader releases expired holds")
	fs.DurationVar(&o.dedupWindow, "dedup-window", d.DedupWindow, "how long a request_id is remembered (fixed when the state file is created)")
	fs.Uint64Var(&o.ledgerMax, "ledger-retention", d.LedgerMax, "movements the audit ledger keeps across all SKUs, oldest dropped first (fixed when the state file is created)")

	fs.StringVar(&o.raftTLSCert, "raft-tls-cert", "", "PEM `file` of this node's certificate: turns on mutual TLS between nodes")
	fs.StringVar(&o.raftTLSKey, "raft-tls-key", "", "PEM `file` of this node's private key (with --raft-tls-cert)")
	fs.StringVar(&o.raftTLSCA, "raft-tls-ca", "", "PEM `file` of the cluster CA that signed every node certificate (with --raft-tls-cert)")

	fs.StringVar(&o.httpTLSCert, "http-tls-cert", "", "PEM `file` of the HTTP API's certificate: serves https, and members call each other over https (needs serverAuth and clientAuth usages; stockctl certs makes such)")
	fs.StringVar(&o.httpTLSKey, "http-tls-key", "", "PEM `file` of the HTTP API's private key (with --http-tls-cert)")
	fs.StringVar(&o.httpTLSCA, "http-tls-ca", "", "PEM `file` of a CA: clients (and members) must present a certificate it signed; members trust only it (optional)")
	fs.StringVar(&o.tokenFile, "token-file", "", "`file` of bearer tokens, lines \"role token\" with role admin, app or read: turns on auth (the same file on every member)")
	fs.StringVar(&o.authReads, "auth-reads", "token", "with --token-file, whether reads need a token: `token` or public")
	fs.StringVar(&o.rateLimit, "rate-limit", "", "per-client request `rate` to /v1/, e.g. 200/s or 6000/m (a client is its token, else its IP; a batch counts its items); empty: unlimited")
	fs.IntVar(&o.rateBurst, "rate-burst", 0, "requests a client may make at once under --rate-limit (default: one second's worth)")

	fs.BoolVar(&o.pprof, "pprof", false, "serve Go profiles at /debug/pprof/ (admin token with --token-file)")
	fs.Var(&o.stockMetricsSKUs, "stock-metrics-skus", "comma list of `SKUs` whose stock /metrics reports (per-SKU series are opt-in)")
	fs.IntVar(&o.stockMetricsTop, "stock-metrics-top", 0, "also report the stock of the `N` best-selling SKUs on /metrics (at most 1000)")
	fs.DurationVar(&o.diskStallTimeout, "disk-stall-timeout", d.DiskStallTimeout, "a raft log write longer than this marks the node unready and makes a leader step aside; 0: no watchdog")

	fs.Var(&o.raftDialRewrite, "raft-dial-rewrite", "comma list of `PEER=VIA` raft addresses: dial VIA whenever raft dials PEER (fault-injection proxies in tests; not for production)")

	fs.StringVar(&o.logLevel, "log-level", "info", "log `level`: trace, debug, info, warn or error")
	fs.BoolVar(&o.logJSON, "log-json", false, "log JSON lines instead of text")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 15*time.Second, "bound of a graceful shutdown after SIGTERM or SIGINT")
	addFaultFlags(fs, &o.faults)
	return fs
}

// parseOptions merges args, the environment (lookupEnv) and the config file (read with
// readFile) into options and checks them. It returns flag.ErrHelp when help was asked for.
// Every error names the flag, environment variable or config key at fault.
func parseOptions(args []string, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, parseError(fs, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: stockd takes only flags (did you mean --data-dir %s?)", fs.Arg(0), fs.Arg(0))
	}
	setBy, err := mergeSources(fs, lookupEnv, readFile)
	if err != nil {
		return nil, err
	}
	o.setBy = setBy
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// mergeSources gives every flag not set on the command line its value from the environment,
// or else from the config file. It returns how the user wrote each flag it set that way:
// STOCKD_DATA_DIR (--data-dir), or key "data-dir" (--config n1.json).
func mergeSources(fs *flag.FlagSet, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (map[string]string, error) {
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	fromEnv := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := lookupEnv(envName(f.Name)); ok && v != "" {
			fromEnv[f.Name] = v
		}
	})

	path := fs.Lookup("config").Value.String()
	if !onCommandLine["config"] && fromEnv["config"] != "" {
		path = fromEnv["config"]
	}
	fromFile := map[string]string{}
	if path != "" {
		data, err := readFile(path)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		if fromFile, err = parseConfigFile(fs, data); err != nil {
			return nil, fmt.Errorf("--config %s: %w", path, err)
		}
	}

	setBy := map[string]string{}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if onCommandLine[f.Name] || f.Name == "config" {
			return
		}
		if v, ok := fromEnv[f.Name]; ok {
			setBy[f.Name] = fmt.Sprintf("%s (--%s)", envName(f.Name), f.Name)
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s (--%s): invalid value %q: want %s", envName(f.Name), f.Name, v, valueKind(f)))
			}
		} else if v, ok := fromFile[f.Name]; ok {
			setBy[f.Name] = fmt.Sprintf("key %q (--config %s)", f.Name, path)
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("--config %s: key %q: invalid value %q: want %s", path, f.Name, v, valueKind(f)))
			}
		}
	})
	return setBy, errors.Join(errs...)
}

// parseConfigFile reads a JSON object whose keys are flag names. Values may be strings,
// numbers, booleans, or (for --join) arrays of strings; durations are strings like "300ms".
func parseConfigFile(fs *flag.FlagSet, data []byte) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object of settings: %w", err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report problems in a stable order
	out := make(map[string]string, len(raw))
	var errs []error
	for _, k := range keys {
		if fs.Lookup(k) == nil || k == "config" {
			errs = append(errs, fmt.Errorf("unknown key %q (keys are flag names without the leading dashes, e.g. \"data-dir\")", k))
			continue
		}
		v, err := configValue(raw[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", k, err))
			continue
		}
		out[k] = v
	}
	return out, errors.Join(errs...)
}

// configValue turns one JSON value into the text the flag would take.
func configValue(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("array elements must be strings, got %s", string(raw))
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", fmt.Errorf("want a string, number, boolean or array of strings, got %s", string(raw))
	}
}

// check reports every inconsistent setting at once, each naming its flag. node.Config's
// rules are node's (Config.Validate, named here through configFlags); the rules here are
// about flags alone: their syntax, the settings only stockd has, and the flags that name
// files which become one Config field.
func (o *options) check() error {
	var errs []error
	if err := o.describe(o.nodeConfig().Validate()); err != nil {
		errs = append(errs, err)
	}
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.shutdownTimeout <= 0 {
		bad("--shutdown-timeout must be positive, got %v", o.shutdownTimeout)
	}
	if tls := []string{o.raftTLSCert, o.raftTLSKey, o.raftTLSCA}; (tls[0] != "" || tls[1] != "" || tls[2] != "") && (tls[0] == "" || tls[1] == "" || tls[2] == "") {
		bad("--raft-tls-cert, --raft-tls-key and --raft-tls-ca go together: set all three or none")
	}
	if (o.httpTLSCert == "") != (o.httpTLSKey == "") {
		bad("--http-tls-cert and --http-tls-key go together")
	}
	if o.httpTLSCA != "" && o.httpTLSCert == "" {
		bad("--http-tls-ca needs --http-tls-cert and --http-tls-key")
	}
	if o.authReads != "token" && o.authReads != "public" {
		bad("--auth-reads %q: want token or public", o.authReads)
	}
	if _, err := parseRate(o.rateLimit); err != nil {
		bad("--rate-limit %q: %v", o.rateLimit, err)
	}
	if _, err := o.dialRewrites(); err != nil {
		bad("--raft-dial-rewrite: %v", err)
	}
	if hclog.LevelFromString(o.logLevel) == hclog.NoLevel {
		bad("--log-level %q: want trace, debug, info, warn or error", o.logLevel)
	}
	return errors.Join(errs...)
}

// configFlags names the flag that sets each node.Config field; the flag's name is also its
// config file key and, upper-cased, its environment variable. Every field that
// Config.Validate has a rule for must be here (TestConfigFlags_NameEveryRuledField), so
// that node's rules reach the user in the words they used.
var configFlags = map[string]string{
	"ID":                 "id",
	"DataDir":            "data-dir",
	"HTTPAddr":           "http-addr",
	"HTTPAdvertise":      "http-advertise",
	"RaftAddr":           "raft-addr",
	"RaftAdvertise":      "raft-advertise",
	"Bootstrap":          "bootstrap",
	"Join":               "join",
	"JoinAsNonvoter":     "join-as-nonvoter",
	"JoinTimeout":        "join-timeout",
	"Groups":             "groups",
	"HeartbeatTimeout":   "heartbeat-timeout",
	"ElectionTimeout":    "election-timeout",
	"LeaderLeaseTimeout": "leader-lease-timeout",
	"CommitTimeout":      "commit-timeout",
	"MaxAppendEntries":   "max-append-entries",
	"SnapshotThreshold":  "snapshot-threshold",
	"SnapshotInterval":   "snapshot-interval",
	"TrailingLogs":       "trailing-logs",
	"LogStore":           "raft-log-store",
	"WALSegmentSize":     "raft-wal-segment-size",
	"MaxInflight":        "max-inflight",
	"RequestTimeout":     "request-timeout",
	"ExpireInterval":     "expire-interval",
	"DedupWindow":        "dedup-window",
	"LedgerMax":          "ledger-retention",
	// The TLS pairs are built from one set of files each (createNodeConfig, applySecurity),
	// so their rule cannot fail from flags; these name the files should it ever.
	"RaftTLS":          "raft-tls-cert",
	"RaftClientTLS":    "raft-tls-ca",
	"HTTPTLS":          "http-tls-cert",
	"HTTPClientTLS":    "http-tls-ca",
	"Auth":             "token-file",
	"PublicReads":      "auth-reads",
	"RateLimit":        "rate-limit",
	"RateBurst":        "rate-burst",
	"EnablePprof":      "pprof",
	"StockMetricsSKUs": "stock-metrics-skus",
	"StockMetricsTop":  "stock-metrics-top",
	"DiskStallTimeout": "disk-stall-timeout",
}

// describe renders node.Config.Validate's errors naming, for each field, the flag,
// environment variable or config file key that set it. Other errors pass unchanged.
func (o *options) describe(err error) error {
	ces := node.ConfigErrors(err)
	if len(ces) == 0 {
		return err
	}
	errs := make([]error, len(ces))
	for i, ce := range ces {
		errs[i] = &flagError{ce: ce, msg: ce.Describe(o.settingName)}
	}
	return errors.Join(errs...)
}

// settingName is how the user wrote the setting of a node.Config field: --heartbeat-timeout,
// STOCKD_HEARTBEAT_TIMEOUT (--heartbeat-timeout), or key "heartbeat-timeout" (--config
// n1.json). A field without a flag keeps its Go name.
func (o *options) settingName(field string) string {
	name, ok := configFlags[field]
	if !ok {
		return field
	}
	if by, ok := o.setBy[name]; ok {
		return by
	}
	return "--" + name
}

// flagError is a node.ConfigError told in flag names; errors.As still finds the
// ConfigError.
type flagError struct {
	ce  *node.ConfigError
	msg string
}

func (e *flagError) Error() string { return e.msg }
func (e *flagError) Unwrap() error { return e.ce }

// dialRewrites parses --raft-dial-rewrite into PEER → VIA.
func (o *options) dialRewrites() (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range o.raftDialRewrite {
		peer, via, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want PEER=VIA", pair)
		}
		for _, a := range []string{peer, via} {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("%q: %v", pair, err)
			}
		}
		out[peer] = via
	}
	return out, nil
}

// parseRate reads --rate-limit: "N/s", "N/m" or a bare N (per second); "" is no limit.
func parseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("want a positive rate such as 200/s or 6000/m")
	}
	switch unit {
	case "", "s":
		return v, nil
	case "m":
		return v / 60, nil
	}
	return 0, fmt.Errorf("unit %q: want /s or /m", unit)
}

// envName is the environment variable of a flag: data-dir → STOCKD_DATA_DIR.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// addrList is a comma-separated list flag. Setting it replaces the list, so a value from
// the environment or the config file is never merged with another source.
type addrList []string

func (l *addrList) String() string { return strings.Join(*l, ",") }

func (l *addrList) Set(s string) error {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	*l = out
	return nil
}

// parseError rewrites the flag package's parse errors to name flags the way the docs do
// ("--name") and to say what a valid value looks like.
func parseError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if m := badValue.FindStringSubmatch(msg); m != nil {
		if f := fs.Lookup(m[2]); f != nil {
			return fmt.Errorf("invalid value %q for --%s: want %s", m[1], f.Name, valueKind(f))
		}
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return fmt.Errorf("unknown flag --%s", strings.TrimLeft(name, "-"))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return fmt.Errorf("flag --%s needs a value", strings.TrimLeft(name, "-"))
	}
	return err
}

// badValue matches the flag package's `invalid value "x" for flag -name: ...` and
// `invalid boolean value "x" for -name: ...`.
var badValue = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([A-Za-z0-9-]+)`)

// valueKind says what a flag accepts, for error messages.
func valueKind(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "a comma list of host:port"
	}
	switch g.Get().(type) {
	case time.Duration:
		return `a duration such as "300ms" or "2s"`
	case bool:
		return "true or false"
	case int, uint64:
		return "a whole number"
	default:
		return "a string"
	}
}

// printUsage writes the help text: what stockd does, examples, then every flag.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `stockd runs one flashstock node: a member of a raft-replicated inventory store.

Usage:
  stockd --id ID --data-dir DIR [--bootstrap | --join ADDR[,ADDR...]] [flags]
  stockd dev [--nodes 3|5] [--base-dir DIR] [--keep]   (a local cluster, one process per node; stockd dev --help)
  stockd restore FILE --id ID --data-dir EMPTY_DIR [flags]   (seed a NEW cluster's first node from a backup)
  stockd recover --peers FILE --id ID --data-dir DIR [flags] (lost quorum: rewrite a STOPPED node's membership)
  stockd version | --version                              (the build: version, git revision, Go version)

Examples:
  # first node of a new cluster
  stockd --id n1 --data-dir D1 --http-addr 127.0.0.1:4001 --raft-addr 127.0.0.1:5001 --bootstrap
  # more nodes join through any member's HTTP address
  stockd --id n2 --data-dir D2 --http-addr 127.0.0.1:4002 --raft-addr 127.0.0.1:5002 --join 127.0.0.1:4001
  stockd --id n3 --data-dir D3 --http-addr 127.0.0.1:4003 --raft-addr 127.0.0.1:5003 --join 127.0.0.1:4001
  # a restarted node comes back from its data with the same command line
  # settings from a file and the environment
  STOCKD_LOG_LEVEL=debug stockd --config n1.json      # n1.json: {"id":"n1","data-dir":"D1","bootstrap":true}

Every flag can also be set by the environment variable STOCKD_<FLAG> (--data-dir is
STOCKD_DATA_DIR) or by a key of the --config JSON file ("data-dir": "D1"; durations as
strings like "300ms"; join as "a,b" or ["a","b"]). A flag beats the environment, which
beats the config file, which beats the default.

SIGTERM or SIGINT stops the node gracefully (a leader hands leadership over first); a
second signal exits at once.

Exit status:
  0  stopped by a signal, cleanly
  1  start-up failed, or the node stopped on a fatal error (worth a restart)
  2  bad flags or configuration
  3  removed from the cluster (do not restart: it would not be a member again)

Flags:
`)
	fs := newFlagSet(&options{})
	for _, g := range helpGroups() {
		fmt.Fprintf(w, "\n %s:\n", g.title)
		for _, name := range g.flags {
			printFlag(w, fs.Lookup(name))
		}
	}
}

// printFlag writes one flag's help the way the docs spell flags: --name arg, then usage.
func printFlag(w io.Writer, f *flag.Flag) {
	arg, usage := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if arg != "" {
		line += " " + arg
	}
	line += "\n      " + usage
	if f.DefValue != "" && f.DefValue != "false" {
		line += fmt.Sprintf(" (default %s)", f.DefValue)
	}
	fmt.Fprintln(w, line)
}

// flagGroups orders the help text; every flag belongs to exactly one group.
var flagGroups = []flagGroup{
	{"Identity and addresses", []string{"id", "data-dir", "http-addr", "http-advertise", "raft-addr", "raft-advertise"}},
	{"Cluster membership", []string{"bootstrap", "join", "join-as-nonvoter", "join-timeout", "groups"}},
	{"Raft timing and snapshots", []string{"heartbeat-timeout", "election-timeout", "leader-lease-timeout", "commit-timeout", "max-append-entries", "snapshot-threshold", "snapshot-interval", "trailing-logs", "raft-log-store", "raft-wal-segment-size"}},
	{"Limits", []string{"max-inflight", "request-timeout", "expire-interval", "dedup-window", "ledger-retention"}},
	{"Mutual TLS between nodes", []string{"raft-tls-cert", "raft-tls-key", "raft-tls-ca"}},
	{"HTTP API security", []string{"http-tls-cert", "http-tls-key", "http-tls-ca", "token-file", "auth-reads", "rate-limit", "rate-burst"}},
	{"Observability and the disk watchdog", []string{"pprof", "stock-metrics-skus", "stock-metrics-top", "disk-stall-timeout"}},
	{"Process", []string{"config", "log-level", "log-json", "shutdown-timeout"}},
	{"Testing", []string{"raft-dial-rewrite"}},
}

type flagGroup = struct {
	title string
	flags []string
}

// helpGroups is flagGroups plus, in the faults build, its own flags.
func helpGroups() []flagGroup {
	if len(faultFlagNames) == 0 {
		return flagGroups
	}
	return append(slices.Clip(flagGroups), flagGroup{"Fault injection (faults build only)", faultFlagNames})
}
