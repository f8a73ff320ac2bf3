package node

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// ConfigError is one broken rule of a Config. Field is the Config field at fault, so a
// caller that filled the Config from elsewhere (stockd from its flags) can name what the
// user set without restating the rule: see Describe.
type ConfigError struct {
	// Field is the Config field at fault, e.g. "HeartbeatTimeout"; empty only for a rule of
	// raft's that names no field of Config.
	Field string
	// Rule says what Field must be, as the rest of a sentence that starts with its name. It
	// writes the other fields it names as {Name}; they are listed in Refs.
	Rule string
	Refs []string
	// Got is the offending value; nil when the rule says it all ("is required").
	Got any
}

func (e *ConfigError) Error() string { return e.Describe(func(field string) string { return field }) }

// Describe is the error with every field, Field and Refs alike, named by name.
func (e *ConfigError) Describe(name func(field string) string) string {
	pairs := make([]string, 0, 2*len(e.Refs))
	for _, f := range e.Refs {
		pairs = append(pairs, "{"+f+"}", name(f))
	}
	msg := strings.NewReplacer(pairs...).Replace(e.Rule)
	if e.Field != "" {
		msg = name(e.Field) + " " + msg
	}
	switch got := e.Got.(type) {
	case nil:
	case string:
		msg += fmt.Sprintf(", got %q", got)
	default:
		msg += fmt.Sprintf(", got %v", got)
	}
	return msg
}

// ConfigErrors lists the ConfigErrors in err (Validate's result, wrapped or not), in the
// order of the rules.
func ConfigErrors(err error) []*ConfigError {
	var out []*ConfigError
	var walk func(error)
	walk = func(err error) {
		if ce, ok := err.(*ConfigError); ok {
			out = append(out, ce)
			return
		}
		switch w := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range w.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(w.Unwrap())
		}
	}
	walk(err)
	return out
}

// Validate names every broken rule at once, each a *ConfigError (see ConfigErrors). It
// also runs raft.ValidateConfig on the raft configuration the node would run with, so
// raft's own rules fail here rather than inside raft.NewRaft after the stores are open.
func (c Config) Validate() error {
	var errs []error
	reported := map[string]bool{}
	for _, r := range configRules {
		if e := r.check(c); e != nil {
			e.Field = r.field
			errs = append(errs, e)
			reported[r.field] = true
		}
	}
	rc := c.raftConfig()
	if rc.LocalID == "" {
		rc.LocalID = "unset" // reported above; raft stops at its first problem and would check nothing else
	}
	if err := raft.ValidateConfig(rc); err != nil {
		if e := fromRaft(err); !reported[e.Field] {
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// ConfigRuleFields lists, sorted, the Config fields Validate has a rule for, raft's
// included: a caller that fills a Config from its own settings (stockd's flags) checks that
// it can name each of them.
func ConfigRuleFields() []string {
	var out []string
	for _, r := range configRules {
		out = append(out, r.field)
	}
	for _, f := range raftFields {
		out = append(out, f)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// raft.ValidateConfig's bounds (hashicorp/raft config.go). They are written here too so
// that every broken one is reported at once and in Config's words; raft's own check still
// runs after ours (Validate) and catches whatever we do not restate.
const (
	raftMinTimeout       = 5 * time.Millisecond // heartbeat, election, lease, snapshot interval
	raftMinCommitTimeout = time.Millisecond
	raftMaxAppendEntries = 1024
	// walMinSegment is the smallest raft-wal segment we allow: a few batches' entries, so a
	// segment is not rotated for every append.
	walMinSegment = 64 << 10
)

// configRule is one rule of Config: check judges field, returning nil when it holds.
type configRule struct {
	field string
	check func(c Config) *ConfigError
}

// configRules are all of Config's rules, in the order Validate reports them.
var configRules = []configRule{
	{"ID", func(c Config) *ConfigError {
		return brokenIf(c.ID == "", "is required: the member's name in the raft configuration, stable across restarts", nil)
	}},
	{"DataDir", func(c Config) *ConfigError {
		return brokenIf(c.DataDir == "", "is required: where the node keeps its raft log, snapshots and state", nil)
	}},
	{"HTTPAddr", func(c Config) *ConfigError { return listenAddr(c.HTTPAddr, c.HTTPAdvertise == "", "HTTPAdvertise") }},
	{"HTTPAdvertise", func(c Config) *ConfigError { return optional(c.HTTPAdvertise, dialAddr) }},
	{"RaftAddr", func(c Config) *ConfigError { return listenAddr(c.RaftAddr, c.RaftAdvertise == "", "RaftAdvertise") }},
	{"RaftAdvertise", func(c Config) *ConfigError { return optional(c.RaftAdvertise, dialAddr) }},
	{"Join", func(c Config) *ConfigError {
		for _, a := range c.Join {
			if e := dialAddr(a); e != nil {
				return e
			}
		}
		return nil
	}},
	{"Bootstrap", func(c Config) *ConfigError {
		return brokenIf(c.Bootstrap && len(c.Join) > 0,
			"and {Join} exclude each other: {Bootstrap} starts a new cluster, {Join} enters an existing one", nil, "Bootstrap", "Join")
	}},
	{"Groups", func(c Config) *ConfigError {
		if c.Groups < 0 || c.Groups > api.SlotCount {
			return brokenIf(true, fmt.Sprintf("must be 1..%d (every data group owns at least one of the %d slots)", api.SlotCount, api.SlotCount), c.Groups)
		}
		return brokenIf(c.Groups > 1 && len(c.Join) > 0, "must be 1 with {Join}: the number of groups is chosen once, by the bootstrapping node; a joining node hosts the groups the cluster's placement gives it", c.Groups, "Join")
	}},
	{"JoinTimeout", func(c Config) *ConfigError {
		return brokenIf(c.JoinTimeout < 0, "must not be negative (0: no bound)", c.JoinTimeout)
	}},
	{"JoinAsNonvoter", func(c Config) *ConfigError {
		return brokenIf(c.JoinAsNonvoter && len(c.Join) == 0, "needs {Join}", nil, "Join")
	}},
	{"HeartbeatTimeout", func(c Config) *ConfigError { return atLeast(c.HeartbeatTimeout, raftMinTimeout) }},
	{"ElectionTimeout", func(c Config) *ConfigError {
		if e := atLeast(c.ElectionTimeout, raftMinTimeout); e != nil {
			return e
		}
		return brokenIf(c.ElectionTimeout < c.HeartbeatTimeout,
			fmt.Sprintf("must be at least {HeartbeatTimeout} (%v)", c.HeartbeatTimeout), c.ElectionTimeout, "HeartbeatTimeout")
	}},
	{"LeaderLeaseTimeout", func(c Config) *ConfigError {
		if e := atLeast(c.LeaderLeaseTimeout, raftMinTimeout); e != nil {
			return e
		}
		return brokenIf(c.LeaderLeaseTimeout > c.HeartbeatTimeout,
			fmt.Sprintf("must be at most {HeartbeatTimeout} (%v)", c.HeartbeatTimeout), c.LeaderLeaseTimeout, "HeartbeatTimeout")
	}},
	{"CommitTimeout", func(c Config) *ConfigError { return atLeast(c.CommitTimeout, raftMinCommitTimeout) }},
	{"MaxAppendEntries", func(c Config) *ConfigError {
		return brokenIf(c.MaxAppendEntries < 1 || c.MaxAppendEntries > raftMaxAppendEntries,
			fmt.Sprintf("must be 1..%d", raftMaxAppendEntries), c.MaxAppendEntries)
	}},
	{"SnapshotThreshold", func(c Config) *ConfigError {
		return brokenIf(c.SnapshotThreshold == 0, "must be at least 1", c.SnapshotThreshold)
	}},
	{"SnapshotInterval", func(c Config) *ConfigError { return atLeast(c.SnapshotInterval, raftMinTimeout) }},
	{"LogStore", func(c Config) *ConfigError {
		return brokenIf(c.LogStore != "" && c.LogStore != LogStoreBolt && c.LogStore != LogStoreWAL,
			fmt.Sprintf("must be %s or %s", LogStoreBolt, LogStoreWAL), c.LogStore)
	}},
	{"WALSegmentSize", func(c Config) *ConfigError {
		return brokenIf(c.WALSegmentSize != 0 && c.WALSegmentSize < walMinSegment,
			fmt.Sprintf("must be 0 (raft-wal's default, 64 MiB) or at least %d bytes", walMinSegment), c.WALSegmentSize)
	}},
	{"MaxInflight", func(c Config) *ConfigError { return brokenIf(c.MaxInflight < 1, "must be at least 1", c.MaxInflight) }},
	{"RequestTimeout", func(c Config) *ConfigError { return positive(c.RequestTimeout) }},
	{"ExpireInterval", func(c Config) *ConfigError { return positive(c.ExpireInterval) }},
	// fsm.Options would take 0 for its default, but a Config starts from DefaultConfig, and
	// a zero window there is a mistake: it would forget every request_id at once.
	{"DedupWindow", func(c Config) *ConfigError { return positive(c.DedupWindow) }},
	{"RaftTLS", func(c Config) *ConfigError {
		return brokenIf((c.RaftTLS == nil) != (c.RaftClientTLS == nil),
			"and {RaftClientTLS} go together: a node that listens with TLS must dial with it", nil, "RaftClientTLS")
	}},
	{"HTTPTLS", func(c Config) *ConfigError {
		return brokenIf((c.HTTPTLS == nil) != (c.HTTPClientTLS == nil),
			"and {HTTPClientTLS} go together: members call each other over https", nil, "HTTPClientTLS")
	}},
	{"RateLimit", func(c Config) *ConfigError { return brokenIf(c.RateLimit < 0, "must not be negative", c.RateLimit) }},
	{"RateBurst", func(c Config) *ConfigError { return brokenIf(c.RateBurst < 0, "must not be negative", c.RateBurst) }},
	{"StockMetricsSKUs", func(c Config) *ConfigError {
		return brokenIf(len(c.StockMetricsSKUs) > maxStockMetrics,
			fmt.Sprintf("must list at most %d SKUs (every SKU is a series)", maxStockMetrics), len(c.StockMetricsSKUs))
	}},
	{"StockMetricsTop", func(c Config) *ConfigError {
		return brokenIf(c.StockMetricsTop < 0 || c.StockMetricsTop > maxStockMetrics,
			fmt.Sprintf("must be 0..%d (every SKU is a series)", maxStockMetrics), c.StockMetricsTop)
	}},
	{"DiskStallTimeout", func(c Config) *ConfigError {
		return brokenIf(c.DiskStallTimeout < 0, "must not be negative (0 switches the watchdog off)", c.DiskStallTimeout)
	}},
}

// brokenIf is a rule's verdict: nil when the rule holds.
func brokenIf(bad bool, rule string, got any, refs ...string) *ConfigError {
	if !bad {
		return nil
	}
	return &ConfigError{Rule: rule, Got: got, Refs: refs}
}

func atLeast(d, lowest time.Duration) *ConfigError {
	return brokenIf(d < lowest, fmt.Sprintf("must be at least %v", lowest), d)
}

func positive(d time.Duration) *ConfigError { return brokenIf(d <= 0, "must be positive", d) }

func optional(addr string, check func(string) *ConfigError) *ConfigError {
	if addr == "" {
		return nil
	}
	return check(addr)
}

// listenAddr judges an address to listen on. Port 0 picks a free port; when nothing else is
// advertised, the bound address is what peers are told, so its host must be one they can
// dial.
func listenAddr(addr string, isAdvertised bool, advertiseField string) *ConfigError {
	host, _, e := splitAddr(addr)
	if e != nil || !isAdvertised || dialableHost(host) {
		return e
	}
	return brokenIf(true, "listens on all interfaces, which peers cannot dial: set {"+advertiseField+"}", addr, advertiseField)
}

// dialAddr judges an address other nodes dial: an advertised one or one to join through.
func dialAddr(addr string) *ConfigError {
	host, port, e := splitAddr(addr)
	switch {
	case e != nil:
		return e
	case !dialableHost(host):
		return brokenIf(true, "must be an address peers can dial, not all interfaces", addr)
	case port == 0:
		return brokenIf(true, "must be an address peers can dial, not port 0", addr)
	}
	return nil
}

func splitAddr(addr string) (host string, port uint64, e *ConfigError) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		reason := "not host:port"
		var ae *net.AddrError
		if errors.As(err, &ae) {
			reason = ae.Err
		}
		return "", 0, brokenIf(true, "must be host:port ("+reason+")", addr)
	}
	port, err = strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, brokenIf(true, "must be host:port with a port in 0..65535", addr)
	}
	return host, port, nil
}

// dialableHost is false for an empty or unspecified host (":4001", "0.0.0.0", "::"): a
// listener takes them as every interface, but no peer can dial them.
func dialableHost(host string) bool {
	ip := net.ParseIP(host)
	return host != "" && (ip == nil || !ip.IsUnspecified())
}

// raftFields translates the names raft.ValidateConfig's errors start with (raft.Config's
// fields) to the Config fields raftConfig sets them from.
var raftFields = map[string]string{
	"LocalID":            "ID",
	"HeartbeatTimeout":   "HeartbeatTimeout",
	"ElectionTimeout":    "ElectionTimeout",
	"LeaderLeaseTimeout": "LeaderLeaseTimeout",
	"CommitTimeout":      "CommitTimeout",
	"MaxAppendEntries":   "MaxAppendEntries",
	"SnapshotThreshold":  "SnapshotThreshold",
	"SnapshotInterval":   "SnapshotInterval",
	"TrailingLogs":       "TrailingLogs",
}

// fromRaft turns an error of raft.ValidateConfig, plain text that starts with the name of
// the raft.Config field at fault ("CommitTimeout is too low"), into a ConfigError on the
// Config field it comes from.
func fromRaft(err error) *ConfigError {
	msg := err.Error()
	name, rest, _ := strings.Cut(msg, " ")
	if f, ok := raftFields[name]; ok {
		return &ConfigError{Field: f, Rule: rest + " (raft's rule)"}
	}
	return &ConfigError{Rule: "raft: " + msg}
}
