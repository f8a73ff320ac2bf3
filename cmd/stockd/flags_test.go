package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashstock/flashstock/node"
)

// sources fakes the environment and the file system parseOptions reads.
type sources struct {
	env   map[string]string
	files map[string]string
}

func (s sources) parse(args ...string) (*options, error) {
	lookupEnv := func(k string) (string, bool) { v, ok := s.env[k]; return v, ok }
	readFile := func(name string) ([]byte, error) {
		data, ok := s.files[name]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
		}
		return []byte(data), nil
	}
	return parseOptions(args, lookupEnv, readFile)
}

var required = []string{"--id", "n1", "--data-dir", "/d"}

func TestParseOptions_Defaults(t *testing.T) {
	o, err := sources{}.parse(required...)
	if err != nil {
		t.Fatal(err)
	}
	d := node.DefaultConfig()
	if o.heartbeatTimeout != d.HeartbeatTimeout || o.maxInflight != d.MaxInflight || o.snapshotThreshold != d.SnapshotThreshold {
		t.Errorf("defaults differ from node.DefaultConfig: %+v", o)
	}
	if o.httpAddr != "127.0.0.1:4001" || o.raftAddr != "127.0.0.1:5001" || o.logLevel != "info" || o.shutdownTimeout != 15*time.Second {
		t.Errorf("unexpected defaults: %+v", o)
	}
}

func TestParseOptions_Precedence(t *testing.T) {
	const file = `{"id":"from-file","data-dir":"/file","heartbeat-timeout":"2s","election-timeout":"5s","max-inflight":7,"bootstrap":true}`
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		heartbeat time.Duration
		id        string
		inflight  int
	}{
		{
			name: "config file beats default", args: []string{"--config", "c.json"},
			heartbeat: 2 * time.Second, id: "from-file", inflight: 7,
		},
		{
			name: "env beats config file", args: []string{"--config", "c.json"},
			env:       map[string]string{"STOCKD_HEARTBEAT_TIMEOUT": "3s", "STOCKD_ID": "from-env"},
			heartbeat: 3 * time.Second, id: "from-env", inflight: 7,
		},
		{
			name: "flag beats env", args: []string{"--config", "c.json", "--heartbeat-timeout", "4s", "--id", "from-flag"},
			env:       map[string]string{"STOCKD_HEARTBEAT_TIMEOUT": "3s", "STOCKD_ID": "from-env", "STOCKD_MAX_INFLIGHT": "9"},
			heartbeat: 4 * time.Second, id: "from-flag", inflight: 9,
		},
		{
			name: "config file named by the environment", args: []string{},
			env:       map[string]string{"STOCKD_CONFIG": "c.json"},
			heartbeat: 2 * time.Second, id: "from-file", inflight: 7,
		},
		{
			name: "empty env var counts as unset", args: []string{"--config", "c.json"},
			env:       map[string]string{"STOCKD_ID": ""},
			heartbeat: 2 * time.Second, id: "from-file", inflight: 7,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := sources{env: tt.env, files: map[string]string{"c.json": file}}
			o, err := src.parse(tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if o.heartbeatTimeout != tt.heartbeat || o.id != tt.id || o.maxInflight != tt.inflight {
				t.Errorf("heartbeat=%v id=%q max-inflight=%d; want %v %q %d",
					o.heartbeatTimeout, o.id, o.maxInflight, tt.heartbeat, tt.id, tt.inflight)
			}
			if !o.bootstrap || o.dataDir != "/file" {
				t.Errorf("keys only in the file were lost: bootstrap=%v data-dir=%q", o.bootstrap, o.dataDir)
			}
		})
	}
}

func TestParseOptions_ListenEverywhereWithAdvertise(t *testing.T) {
	o, err := sources{}.parse(append([]string{"--http-addr", "0.0.0.0:4001", "--http-advertise", "10.0.0.1:4001",
		"--raft-addr", ":5001", "--raft-advertise", "10.0.0.1:5001"}, required...)...)
	if err != nil {
		t.Fatal(err)
	}
	if o.httpAdvertise != "10.0.0.1:4001" || o.raftAddr != ":5001" {
		t.Errorf("got %+v", o)
	}
	if _, err := (sources{}).parse(append([]string{"--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0"}, required...)...); err != nil {
		t.Errorf("port 0 (pick a free one) on a dialable host: %v", err)
	}
}

func TestParseOptions_Join(t *testing.T) {
	tests := []struct {
		name string
		src  sources
		args []string
		want string
	}{
		{name: "flag comma list", args: append([]string{"--join", "127.0.0.1:4001, 127.0.0.1:4002"}, required...), want: "127.0.0.1:4001,127.0.0.1:4002"},
		{name: "env", src: sources{env: map[string]string{"STOCKD_JOIN": "a:1,b:2"}}, args: required, want: "a:1,b:2"},
		{name: "config array", src: sources{files: map[string]string{"c": `{"join":["a:1","b:2"]}`}}, args: append([]string{"--config", "c"}, required...), want: "a:1,b:2"},
		{name: "config string", src: sources{files: map[string]string{"c": `{"join":"a:1,b:2"}`}}, args: append([]string{"--config", "c"}, required...), want: "a:1,b:2"},
		{
			name: "env replaces the file's list, not appends",
			src:  sources{env: map[string]string{"STOCKD_JOIN": "c:3"}, files: map[string]string{"c": `{"join":["a:1","b:2"]}`}},
			args: append([]string{"--config", "c"}, required...), want: "c:3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.src.parse(tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := o.join.String(); got != tt.want {
				t.Errorf("join = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseOptions_Errors checks that every error names what was wrong: the flag, the
// environment variable or the config key.
func TestParseOptions_Errors(t *testing.T) {
	files := map[string]string{
		"unknown.json":  `{"id":"n1","data-dir":"/d","heartbeat_timeout":"1s","colour":"blue"}`,
		"baddur.json":   `{"id":"n1","data-dir":"/d","election-timeout":"soon"}`,
		"notjson.json":  `{"id":`,
		"object.json":   `{"id":{"x":1},"data-dir":"/d"}`,
		"config.json":   `{"config":"other.json"}`,
		"required.json": `{"log-level":"debug"}`,
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string // substrings the error must contain
	}{
		{name: "missing id and data dir", args: nil, want: []string{"--id is required", "--data-dir is required"}},
		{name: "missing data dir", args: []string{"--id", "n1"}, want: []string{"--data-dir is required"}},
		{name: "missing with a config file", args: []string{"--config", "required.json"}, want: []string{"--id is required", "--data-dir is required"}},
		{name: "unknown flag", args: []string{"--colour", "blue"}, want: []string{"--colour"}},
		{name: "bad flag value", args: append([]string{"--heartbeat-timeout", "fast"}, required...), want: []string{"--heartbeat-timeout"}},
		{name: "flag without value", args: []string{"--id"}, want: []string{"--id"}},
		{name: "positional argument", args: append([]string{"/var/lib/stockd"}, required...), want: []string{`"/var/lib/stockd"`}},
		{name: "bad env value", env: map[string]string{"STOCKD_MAX_INFLIGHT": "lots"}, args: required, want: []string{"STOCKD_MAX_INFLIGHT", "--max-inflight", `"lots"`}},
		{name: "bad env bool", env: map[string]string{"STOCKD_BOOTSTRAP": "yes please"}, args: required, want: []string{"STOCKD_BOOTSTRAP", "--bootstrap"}},
		{name: "unknown config keys", args: []string{"--config", "unknown.json"}, want: []string{`unknown key "colour"`, `unknown key "heartbeat_timeout"`, "unknown.json"}},
		{name: "bad config value", args: []string{"--config", "baddur.json"}, want: []string{`key "election-timeout"`, `"soon"`}},
		{name: "config not JSON", args: []string{"--config", "notjson.json"}, want: []string{"notjson.json", "JSON"}},
		{name: "config value of a wrong kind", args: []string{"--config", "object.json"}, want: []string{`key "id"`}},
		{name: "config names a config", args: []string{"--config", "config.json"}, want: []string{`unknown key "config"`}},
		{name: "missing config file", args: []string{"--config", "nope.json"}, want: []string{"--config", "nope.json"}},
		{name: "bootstrap and join", args: append([]string{"--bootstrap", "--join", "127.0.0.1:4001"}, required...), want: []string{"--bootstrap and --join"}},
		{name: "join not host:port", args: append([]string{"--join", "http://127.0.0.1"}, required...), want: []string{"--join"}},
		{name: "bad http addr", args: append([]string{"--http-addr", "4001"}, required...), want: []string{"--http-addr"}},
		{name: "unspecified raft addr without advertise", args: append([]string{"--raft-addr", "0.0.0.0:5001"}, required...), want: []string{"--raft-addr", "--raft-advertise"}},
		{name: "unspecified http addr without advertise", args: append([]string{"--http-addr", ":4001"}, required...), want: []string{"--http-addr", "--http-advertise"}},
		{name: "advertise port 0", args: append([]string{"--raft-advertise", "10.0.0.1:0"}, required...), want: []string{"--raft-advertise"}},
		{name: "join port 0", args: append([]string{"--join", "10.0.0.1:0"}, required...), want: []string{"--join"}},
		{name: "lease above heartbeat", args: append([]string{"--heartbeat-timeout", "100ms", "--leader-lease-timeout", "200ms"}, required...), want: []string{"--leader-lease-timeout", "--heartbeat-timeout"}},
		{name: "max append entries", args: append([]string{"--max-append-entries", "5000"}, required...), want: []string{"--max-append-entries"}},
		{name: "half of tls", args: append([]string{"--raft-tls-cert", "c.pem"}, required...), want: []string{"--raft-tls-key", "--raft-tls-ca"}},
		{name: "log level", args: append([]string{"--log-level", "loud"}, required...), want: []string{"--log-level", `"loud"`}},
		{name: "nonvoter without join", args: append([]string{"--join-as-nonvoter"}, required...), want: []string{"--join-as-nonvoter needs --join"}},
		{name: "half of http tls", args: append([]string{"--http-tls-key", "k.pem"}, required...), want: []string{"--http-tls-cert and --http-tls-key"}},
		{name: "http ca alone", args: append([]string{"--http-tls-ca", "ca.pem"}, required...), want: []string{"--http-tls-ca needs"}},
		{name: "auth reads", args: append([]string{"--auth-reads", "sometimes"}, required...), want: []string{"--auth-reads", `"sometimes"`}},
		{name: "rate unit", args: append([]string{"--rate-limit", "5/h"}, required...), want: []string{"--rate-limit", "/s or /m"}},
		{name: "rate value", args: append([]string{"--rate-limit", "lots"}, required...), want: []string{"--rate-limit", "200/s"}},
		{name: "negative disk stall", args: append([]string{"--disk-stall-timeout", "-1s"}, required...), want: []string{"--disk-stall-timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sources{env: tt.env, files: files}.parse(tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseOptions_Help(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		if _, err := (sources{}).parse(arg); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s: err = %v, want flag.ErrHelp", arg, err)
		}
	}
}

func TestPrintUsage_ListsEveryFlagOnceWithExamples(t *testing.T) {
	var buf bytes.Buffer
	printUsage(&buf)
	help := buf.String()
	for _, want := range []string{"--bootstrap\n", "--join 127.0.0.1:4001", "STOCKD_DATA_DIR", "stockd dev"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	seen := map[string]int{}
	for _, g := range helpGroups() {
		for _, name := range g.flags {
			seen[name]++
		}
	}
	newFlagSet(&options{}).VisitAll(func(f *flag.Flag) {
		if seen[f.Name] != 1 {
			t.Errorf("flag --%s is in %d help groups, want 1", f.Name, seen[f.Name])
		}
		delete(seen, f.Name)
	})
	for name := range seen {
		t.Errorf("help group names --%s, which is no flag", name)
	}
}

func TestEnvName(t *testing.T) {
	for flagName, want := range map[string]string{
		"id": "STOCKD_ID", "data-dir": "STOCKD_DATA_DIR", "leader-lease-timeout": "STOCKD_LEADER_LEASE_TIMEOUT",
	} {
		if got := envName(flagName); got != want {
			t.Errorf("envName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

func TestCreateNodeConfig_PassesEveryOption(t *testing.T) {
	o, err := sources{}.parse("--id", "n2", "--data-dir", "/d2", "--http-addr", "127.0.0.1:4002",
		"--raft-addr", "127.0.0.1:5002", "--join", "127.0.0.1:4001", "--join-as-nonvoter", "--join-timeout", "45s",
		"--heartbeat-timeout", "300ms", "--election-timeout", "400ms", "--leader-lease-timeout", "150ms",
		"--commit-timeout", "2ms", "--max-append-entries", "64", "--snapshot-threshold", "100",
		"--snapshot-interval", "5s", "--trailing-logs", "50", "--max-inflight", "10",
		"--request-timeout", "3s", "--expire-interval", "2s", "--dedup-window", "1m", "--ledger-retention", "7",
		"--disk-stall-timeout", "4s", "--pprof", "--stock-metrics-skus", "a,b", "--stock-metrics-top", "5",
		"--rate-limit", "120/m", "--rate-burst", "9", "--raft-log-store", "wal", "--raft-wal-segment-size", "1048576")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := createNodeConfig(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := node.Config{
		ID: "n2", DataDir: "/d2", HTTPAddr: "127.0.0.1:4002", RaftAddr: "127.0.0.1:5002",
		Join: []string{"127.0.0.1:4001"}, JoinAsNonvoter: true, JoinTimeout: 45 * time.Second, Groups: 1,
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 400 * time.Millisecond,
		LeaderLeaseTimeout: 150 * time.Millisecond, CommitTimeout: 2 * time.Millisecond,
		MaxAppendEntries: 64, SnapshotThreshold: 100, SnapshotInterval: 5 * time.Second, TrailingLogs: 50,
		LogStore: node.LogStoreWAL, WALSegmentSize: 1 << 20, MaxInflight: 10, RequestTimeout: 3 * time.Second, ExpireInterval: 2 * time.Second,
		DedupWindow: time.Minute, LedgerMax: 7,
		DiskStallTimeout: 4 * time.Second, EnablePprof: true, StockMetricsSKUs: []string{"a", "b"}, StockMetricsTop: 5,
		RateLimit: 2, RateBurst: 9,
	}
	if cfg.UI == nil {
		t.Error("no dashboard handler: every node serves /ui/")
	}
	if cfg.OnFatal == nil {
		t.Error("no OnFatal: a fatal error would exit with node's default code, not stockd's")
	}
	cfg.UI, cfg.OnFatal = nil, nil // a handler or func value cannot be compared
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("node config\n got %+v\nwant %+v", cfg, want)
	}
}

func TestParseDevOptions(t *testing.T) {
	if o, err := parseDevOptions(nil); err != nil || o.nodes != 3 || o.httpPort != 4001 || o.raftPort != 5001 {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	for args, want := range map[string]string{
		"--nodes 4":            "--nodes must be 3 or 5",
		"--http-port -1":       "--http-port",
		"--log-level loud":     "--log-level",
		"--bogus":              "--bogus",
		"--nodes 5 extra":      `"extra"`,
		"--raft-port 65534":    "--raft-port",
		"--groups 0":           "--groups must be 1..1024",
		"--groups 3 --nodes 4": "--nodes must be 3 or 5",
	} {
		_, err := parseDevOptions(strings.Fields(args))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to mention %q", args, err, want)
		}
	}
}

func TestParseDevOptions_GroupsOnEveryClusterSize(t *testing.T) {
	for args, nodes := range map[string]int{"--groups 4": 3, "--groups 4 --nodes 5": 5} {
		o, err := parseDevOptions(strings.Fields(args))
		if err != nil || o.nodes != nodes || o.groups != 4 {
			t.Fatalf("%s: %+v, %v; want %d nodes and 4 groups", args, o, err, nodes)
		}
	}
}

func TestReportUsageError_OneProblemPerLine(t *testing.T) {
	var buf bytes.Buffer
	reportUsageError(&buf, "stockd", errors.Join(errors.New("--id is required"), errors.New("--data-dir is required")))
	want := "stockd: 2 problems:\n  --id is required\n  --data-dir is required\nRun 'stockd --help' for usage.\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestOptions_RaftDialRewrite(t *testing.T) {
	o, err := parseOptions([]string{"--id", "n1", "--data-dir", "d", "--raft-dial-rewrite", "127.0.0.1:5002=127.0.0.1:6012, 127.0.0.1:5003=127.0.0.1:6013"},
		func(string) (string, bool) { return "", false }, nil)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := o.dialRewrites()
	if err != nil || len(rw) != 2 || rw["127.0.0.1:5003"] != "127.0.0.1:6013" {
		t.Fatalf("rewrites %v %v", rw, err)
	}
	_, err = parseOptions([]string{"--id", "n1", "--data-dir", "d", "--raft-dial-rewrite", "127.0.0.1:5002"},
		func(string) (string, bool) { return "", false }, nil)
	if err == nil || !strings.Contains(err.Error(), "--raft-dial-rewrite") {
		t.Fatalf("bad rewrite accepted: %v", err)
	}
}

// TestParseOptions_NodeRulesNameTheSetting runs node.Config's rules through the command
// line, the environment and the config file: each message is node's rule, told with the
// setting the user wrote.
func TestParseOptions_NodeRulesNameTheSetting(t *testing.T) {
	skus := make([]string, 1001)
	for i := range skus {
		skus[i] = fmt.Sprintf("s%d", i)
	}
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		file  string
		field string // the first problem's node.Config field
		want  string // the whole error
	}{
		{name: "no id", args: []string{"--data-dir", "/d"}, field: "ID",
			want: "--id is required: the member's name in the raft configuration, stable across restarts"},
		{name: "no data dir", args: []string{"--id", "n1"}, field: "DataDir",
			want: "--data-dir is required: where the node keeps its raft log, snapshots and state"},
		{name: "http addr without port", args: []string{"--http-addr", "4001"}, field: "HTTPAddr",
			want: `--http-addr must be host:port (missing port in address), got "4001"`},
		{name: "http addr port too large", args: []string{"--http-addr", "127.0.0.1:99999"}, field: "HTTPAddr",
			want: `--http-addr must be host:port with a port in 0..65535, got "127.0.0.1:99999"`},
		{name: "http addr on all interfaces", args: []string{"--http-addr", "0.0.0.0:4001"}, field: "HTTPAddr",
			want: `--http-addr listens on all interfaces, which peers cannot dial: set --http-advertise, got "0.0.0.0:4001"`},
		{name: "http advertise port 0", args: []string{"--http-advertise", "10.0.0.1:0"}, field: "HTTPAdvertise",
			want: `--http-advertise must be an address peers can dial, not port 0, got "10.0.0.1:0"`},
		{name: "raft addr on all interfaces", args: []string{"--raft-addr", ":5001"}, field: "RaftAddr",
			want: `--raft-addr listens on all interfaces, which peers cannot dial: set --raft-advertise, got ":5001"`},
		{name: "raft advertise unspecified", args: []string{"--raft-advertise", "0.0.0.0:5001"}, field: "RaftAdvertise",
			want: `--raft-advertise must be an address peers can dial, not all interfaces, got "0.0.0.0:5001"`},
		{name: "join a URL", args: []string{"--join", "127.0.0.1:4002,http://127.0.0.1"}, field: "Join",
			want: `--join must be host:port with a port in 0..65535, got "http://127.0.0.1"`},
		{name: "bootstrap and join", args: []string{"--bootstrap", "--join", "127.0.0.1:4001"}, field: "Bootstrap",
			want: "--bootstrap and --join exclude each other: --bootstrap starts a new cluster, --join enters an existing one"},
		{name: "nonvoter without join", args: []string{"--join-as-nonvoter"}, field: "JoinAsNonvoter",
			want: "--join-as-nonvoter needs --join"},
		{name: "heartbeat below raft's minimum", args: []string{"--heartbeat-timeout", "4ms", "--leader-lease-timeout", "4ms"}, field: "HeartbeatTimeout",
			want: "--heartbeat-timeout must be at least 5ms, got 4ms\n--leader-lease-timeout must be at least 5ms, got 4ms"},
		{name: "election below raft's minimum", args: []string{"--heartbeat-timeout", "5ms", "--leader-lease-timeout", "5ms", "--election-timeout", "1ms"}, field: "ElectionTimeout",
			want: "--election-timeout must be at least 5ms, got 1ms"},
		{name: "election below heartbeat", args: []string{"--election-timeout", "100ms"}, field: "ElectionTimeout",
			want: "--election-timeout must be at least --heartbeat-timeout (200ms), got 100ms"},
		{name: "lease zero", args: []string{"--leader-lease-timeout", "0s"}, field: "LeaderLeaseTimeout",
			want: "--leader-lease-timeout must be at least 5ms, got 0s"},
		{name: "lease above heartbeat", args: []string{"--leader-lease-timeout", "300ms"}, field: "LeaderLeaseTimeout",
			want: "--leader-lease-timeout must be at most --heartbeat-timeout (200ms), got 300ms"},
		{name: "commit timeout under 1ms", args: []string{"--commit-timeout", "500us"}, field: "CommitTimeout",
			want: "--commit-timeout must be at least 1ms, got 500µs"},
		{name: "max append entries zero", args: []string{"--max-append-entries", "0"}, field: "MaxAppendEntries",
			want: "--max-append-entries must be 1..1024, got 0"},
		{name: "max append entries too many", args: []string{"--max-append-entries", "5000"}, field: "MaxAppendEntries",
			want: "--max-append-entries must be 1..1024, got 5000"},
		{name: "snapshot threshold zero", args: []string{"--snapshot-threshold", "0"}, field: "SnapshotThreshold",
			want: "--snapshot-threshold must be at least 1, got 0"},
		{name: "snapshot interval below raft's minimum", args: []string{"--snapshot-interval", "1ms"}, field: "SnapshotInterval",
			want: "--snapshot-interval must be at least 5ms, got 1ms"},
		{name: "unknown log store", args: []string{"--raft-log-store", "rocks"}, field: "LogStore",
			want: `--raft-log-store must be bolt or wal, got "rocks"`},
		{name: "max inflight zero", args: []string{"--max-inflight", "0"}, field: "MaxInflight",
			want: "--max-inflight must be at least 1, got 0"},
		{name: "request timeout zero", args: []string{"--request-timeout", "0s"}, field: "RequestTimeout",
			want: "--request-timeout must be positive, got 0s"},
		{name: "expire interval negative", args: []string{"--expire-interval", "-1s"}, field: "ExpireInterval",
			want: "--expire-interval must be positive, got -1s"},
		{name: "dedup window zero", args: []string{"--dedup-window", "0s"}, field: "DedupWindow",
			want: "--dedup-window must be positive, got 0s"},
		{name: "negative burst", args: []string{"--rate-burst", "-1"}, field: "RateBurst",
			want: "--rate-burst must not be negative, got -1"},
		{name: "too many stock metrics SKUs", args: []string{"--stock-metrics-skus", strings.Join(skus, ",")}, field: "StockMetricsSKUs",
			want: "--stock-metrics-skus must list at most 1000 SKUs (every SKU is a series), got 1001"},
		{name: "too many top stock metrics", args: []string{"--stock-metrics-top", "1001"}, field: "StockMetricsTop",
			want: "--stock-metrics-top must be 0..1000 (every SKU is a series), got 1001"},
		{name: "negative disk stall timeout", args: []string{"--disk-stall-timeout", "-1s"}, field: "DiskStallTimeout",
			want: "--disk-stall-timeout must not be negative (0 switches the watchdog off), got -1s"},
		{name: "from the environment", env: map[string]string{"STOCKD_LEADER_LEASE_TIMEOUT": "300ms"}, field: "LeaderLeaseTimeout",
			want: "STOCKD_LEADER_LEASE_TIMEOUT (--leader-lease-timeout) must be at most --heartbeat-timeout (200ms), got 300ms"},
		{name: "from the config file", file: `{"election-timeout":"250ms","heartbeat-timeout":"300ms"}`, field: "ElectionTimeout",
			want: `key "election-timeout" (--config c.json) must be at least key "heartbeat-timeout" (--config c.json) (300ms), got 250ms`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !slices.Contains(args, "--id") && !slices.Contains(args, "--data-dir") {
				args = append(slices.Clone(required), args...)
			}
			src := sources{env: tt.env}
			if tt.file != "" {
				src.files = map[string]string{"c.json": tt.file}
				args = append(args, "--config", "c.json")
			}
			_, err := src.parse(args...)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error\n %v\nwant\n %s", err, tt.want)
			}
			var ce *node.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Errorf("errors.As found %+v, want the node.ConfigError on %s", ce, tt.field)
			}
		})
	}
}

// Adding a rule to node.Config.Validate for a field no flag names fails here.
func TestConfigFlags_NameEveryRuledField(t *testing.T) {
	fs := newFlagSet(&options{})
	for _, field := range node.ConfigRuleFields() {
		name, ok := configFlags[field]
		if !ok {
			t.Errorf("node.Config.%s has a rule but no flag in configFlags", field)
		} else if fs.Lookup(name) == nil {
			t.Errorf("configFlags names --%s for %s: no such flag", name, field)
		}
	}
	ct := reflect.TypeOf(node.Config{})
	for field, name := range configFlags {
		if _, ok := ct.FieldByName(field); !ok {
			t.Errorf("configFlags maps %s (--%s), which is no field of node.Config", field, name)
		}
		if fs.Lookup(name) == nil {
			t.Errorf("configFlags maps %s to --%s, which is no flag", field, name)
		}
	}
}
