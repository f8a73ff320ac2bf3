package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// validConfig is DefaultConfig with the identity and addresses a node needs.
func validConfig() Config {
	c := DefaultConfig()
	c.ID, c.DataDir, c.HTTPAddr, c.RaftAddr = "n1", "/d", "127.0.0.1:4001", "127.0.0.1:5001"
	return c
}

// configRuleCases break each rule of Config once; want is every error Validate must give,
// field and message, and nothing else.
var configRuleCases = []struct {
	name   string
	mutate func(*Config)
	want   []fieldMsg
}{
	{"no id", func(c *Config) { c.ID = "" }, []fieldMsg{{"ID", "ID is required: the member's name in the raft configuration, stable across restarts"}}},
	{"no data dir", func(c *Config) { c.DataDir = "" }, []fieldMsg{{"DataDir", "DataDir is required: where the node keeps its raft log, snapshots and state"}}},
	{"http addr without port", func(c *Config) { c.HTTPAddr = "4001" }, []fieldMsg{{"HTTPAddr", `HTTPAddr must be host:port (missing port in address), got "4001"`}}},
	{"http addr port too large", func(c *Config) { c.HTTPAddr = "127.0.0.1:99999" }, []fieldMsg{{"HTTPAddr", `HTTPAddr must be host:port with a port in 0..65535, got "127.0.0.1:99999"`}}},
	{"http addr on all interfaces, not advertised", func(c *Config) { c.HTTPAddr = "0.0.0.0:4001" },
		[]fieldMsg{{"HTTPAddr", `HTTPAddr listens on all interfaces, which peers cannot dial: set HTTPAdvertise, got "0.0.0.0:4001"`}}},
	{"http advertise port 0", func(c *Config) { c.HTTPAdvertise = "10.0.0.1:0" }, []fieldMsg{{"HTTPAdvertise", `HTTPAdvertise must be an address peers can dial, not port 0, got "10.0.0.1:0"`}}},
	{"raft addr on all interfaces, not advertised", func(c *Config) { c.RaftAddr = "[::]:5001" },
		[]fieldMsg{{"RaftAddr", `RaftAddr listens on all interfaces, which peers cannot dial: set RaftAdvertise, got "[::]:5001"`}}},
	{"raft advertise unspecified", func(c *Config) { c.RaftAdvertise = "0.0.0.0:5001" },
		[]fieldMsg{{"RaftAdvertise", `RaftAdvertise must be an address peers can dial, not all interfaces, got "0.0.0.0:5001"`}}},
	{"join a URL", func(c *Config) { c.Join = []string{"127.0.0.1:4002", "http://127.0.0.1"} },
		[]fieldMsg{{"Join", `Join must be host:port with a port in 0..65535, got "http://127.0.0.1"`}}},
	{"bootstrap and join", func(c *Config) { c.Bootstrap, c.Join = true, []string{"127.0.0.1:4002"} },
		[]fieldMsg{{"Bootstrap", "Bootstrap and Join exclude each other: Bootstrap starts a new cluster, Join enters an existing one"}}},
	{"nonvoter without join", func(c *Config) { c.JoinAsNonvoter = true }, []fieldMsg{{"JoinAsNonvoter", "JoinAsNonvoter needs Join"}}},
	{"join timeout negative", func(c *Config) { c.JoinTimeout = -time.Second }, []fieldMsg{{"JoinTimeout", "JoinTimeout must not be negative (0: no bound), got -1s"}}},
	{"groups past the slots", func(c *Config) { c.Groups = 1025 }, []fieldMsg{{"Groups", "Groups must be 1..1024 (every data group owns at least one of the 1024 slots), got 1025"}}},
	{"groups with join", func(c *Config) { c.Groups = 3; c.Join = []string{"127.0.0.1:4001"} },
		[]fieldMsg{{"Groups", "Groups must be 1 with Join: the number of groups is chosen once, by the bootstrapping node; a joining node hosts the groups the cluster's placement gives it, got 3"}}},
	{"heartbeat below raft's minimum", func(c *Config) { c.HeartbeatTimeout, c.LeaderLeaseTimeout = 4*time.Millisecond, 4*time.Millisecond },
		[]fieldMsg{{"HeartbeatTimeout", "HeartbeatTimeout must be at least 5ms, got 4ms"}, {"LeaderLeaseTimeout", "LeaderLeaseTimeout must be at least 5ms, got 4ms"}}},
	{"election below raft's minimum", func(c *Config) {
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 5*time.Millisecond, time.Millisecond, 5*time.Millisecond
	},
		[]fieldMsg{{"ElectionTimeout", "ElectionTimeout must be at least 5ms, got 1ms"}}},
	{"election below heartbeat", func(c *Config) { c.ElectionTimeout = 100 * time.Millisecond },
		[]fieldMsg{{"ElectionTimeout", "ElectionTimeout must be at least HeartbeatTimeout (200ms), got 100ms"}}},
	{"lease zero", func(c *Config) { c.LeaderLeaseTimeout = 0 }, []fieldMsg{{"LeaderLeaseTimeout", "LeaderLeaseTimeout must be at least 5ms, got 0s"}}},
	{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 300 * time.Millisecond },
		[]fieldMsg{{"LeaderLeaseTimeout", "LeaderLeaseTimeout must be at most HeartbeatTimeout (200ms), got 300ms"}}},
	{"commit timeout under 1ms", func(c *Config) { c.CommitTimeout = 500 * time.Microsecond }, []fieldMsg{{"CommitTimeout", "CommitTimeout must be at least 1ms, got 500µs"}}},
	{"max append entries zero", func(c *Config) { c.MaxAppendEntries = 0 }, []fieldMsg{{"MaxAppendEntries", "MaxAppendEntries must be 1..1024, got 0"}}},
	{"max append entries too many", func(c *Config) { c.MaxAppendEntries = 1025 }, []fieldMsg{{"MaxAppendEntries", "MaxAppendEntries must be 1..1024, got 1025"}}},
	{"snapshot threshold zero", func(c *Config) { c.SnapshotThreshold = 0 }, []fieldMsg{{"SnapshotThreshold", "SnapshotThreshold must be at least 1, got 0"}}},
	{"snapshot interval below raft's minimum", func(c *Config) { c.SnapshotInterval = time.Millisecond }, []fieldMsg{{"SnapshotInterval", "SnapshotInterval must be at least 5ms, got 1ms"}}},
	{"unknown log store", func(c *Config) { c.LogStore = "rocks" }, []fieldMsg{{"LogStore", `LogStore must be bolt or wal, got "rocks"`}}},
	{"wal segment too small", func(c *Config) { c.WALSegmentSize = 4096 }, []fieldMsg{{"WALSegmentSize", "WALSegmentSize must be 0 (raft-wal's default, 64 MiB) or at least 65536 bytes, got 4096"}}},
	{"max inflight zero", func(c *Config) { c.MaxInflight = 0 }, []fieldMsg{{"MaxInflight", "MaxInflight must be at least 1, got 0"}}},
	{"request timeout zero", func(c *Config) { c.RequestTimeout = 0 }, []fieldMsg{{"RequestTimeout", "RequestTimeout must be positive, got 0s"}}},
	{"expire interval negative", func(c *Config) { c.ExpireInterval = -time.Second }, []fieldMsg{{"ExpireInterval", "ExpireInterval must be positive, got -1s"}}},
	{"dedup window zero", func(c *Config) { c.DedupWindow = 0 }, []fieldMsg{{"DedupWindow", "DedupWindow must be positive, got 0s"}}},
	{"raft tls without its client half", func(c *Config) { c.RaftTLS = &tls.Config{} },
		[]fieldMsg{{"RaftTLS", "RaftTLS and RaftClientTLS go together: a node that listens with TLS must dial with it"}}},
	{"http client tls alone", func(c *Config) { c.HTTPClientTLS = &tls.Config{} },
		[]fieldMsg{{"HTTPTLS", "HTTPTLS and HTTPClientTLS go together: members call each other over https"}}},
	{"negative rate", func(c *Config) { c.RateLimit = -1 }, []fieldMsg{{"RateLimit", "RateLimit must not be negative, got -1"}}},
	{"negative burst", func(c *Config) { c.RateBurst = -1 }, []fieldMsg{{"RateBurst", "RateBurst must not be negative, got -1"}}},
	{"too many stock metrics SKUs", func(c *Config) { c.StockMetricsSKUs = make([]string, maxStockMetrics+1) },
		[]fieldMsg{{"StockMetricsSKUs", "StockMetricsSKUs must list at most 1000 SKUs (every SKU is a series), got 1001"}}},
	{"too many top stock metrics", func(c *Config) { c.StockMetricsTop = maxStockMetrics + 1 },
		[]fieldMsg{{"StockMetricsTop", "StockMetricsTop must be 0..1000 (every SKU is a series), got 1001"}}},
	{"negative disk stall timeout", func(c *Config) { c.DiskStallTimeout = -time.Second },
		[]fieldMsg{{"DiskStallTimeout", "DiskStallTimeout must not be negative (0 switches the watchdog off), got -1s"}}},
}

type fieldMsg struct{ field, msg string }

func TestConfig_ValidateEachRule(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("a valid config: %v", err)
	}
	for _, tt := range configRuleCases {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			var got []fieldMsg
			for _, e := range ConfigErrors(err) {
				got = append(got, fieldMsg{e.Field, e.Error()})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate: %v\n got %q\nwant %q", err, got, tt.want)
			}
			if err != nil && len(ConfigErrors(err)) != len(strings.Split(err.Error(), "\n")) {
				t.Errorf("not every problem is a *ConfigError: %v", err)
			}
		})
	}
}

// Adding a rule without a case in configRuleCases fails here: every rule is specified by
// the table above, and stockd's flag test runs the same table through its flags.
func TestConfig_EveryRuleHasACase(t *testing.T) {
	covered := map[string]bool{}
	for _, tt := range configRuleCases {
		for _, w := range tt.want {
			covered[w.field] = true
		}
	}
	for _, r := range configRules {
		if !covered[r.field] {
			t.Errorf("the rule on %s has no case in configRuleCases", r.field)
		}
	}
}

func TestConfig_ValidateNamesEveryProblemAtOnce(t *testing.T) {
	c := validConfig()
	c.ID, c.HTTPAddr, c.CommitTimeout, c.MaxInflight = "", "nope", 0, 0
	var fields []string
	for _, e := range ConfigErrors(c.Validate()) {
		fields = append(fields, e.Field)
	}
	if want := []string{"ID", "HTTPAddr", "CommitTimeout", "MaxInflight"}; !slices.Equal(fields, want) {
		t.Errorf("fields %v, want %v", fields, want)
	}
}

func TestConfig_ValidateAcceptsListenEverywhereWhenAdvertised(t *testing.T) {
	c := validConfig()
	c.HTTPAddr, c.HTTPAdvertise = ":4001", "10.0.0.1:4001"
	c.RaftAddr, c.RaftAdvertise = "0.0.0.0:0", "n1.internal:5001"
	c.Join = []string{"n2.internal:4001"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c = validConfig()
	c.HTTPAddr, c.RaftAddr = "127.0.0.1:0", "localhost:0" // port 0 picks one; the bound address is dialable
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// raft.ValidateConfig's own errors, plain text naming raft.Config's fields, come out on
// the Config field raftConfig sets from.
func TestConfig_RaftErrorsNameConfigFields(t *testing.T) {
	tests := []struct {
		mutate func(*raft.Config)
		field  string
	}{
		{func(rc *raft.Config) { rc.LocalID = "" }, "ID"},
		{func(rc *raft.Config) { rc.HeartbeatTimeout = time.Millisecond }, "HeartbeatTimeout"},
		{func(rc *raft.Config) { rc.ElectionTimeout = rc.HeartbeatTimeout / 2 }, "ElectionTimeout"},
		{func(rc *raft.Config) { rc.CommitTimeout = time.Microsecond }, "CommitTimeout"},
		{func(rc *raft.Config) { rc.MaxAppendEntries = 2048 }, "MaxAppendEntries"},
		{func(rc *raft.Config) { rc.SnapshotInterval = 0 }, "SnapshotInterval"},
		{func(rc *raft.Config) { rc.LeaderLeaseTimeout = time.Millisecond }, "LeaderLeaseTimeout"},
		{func(rc *raft.Config) { rc.LeaderLeaseTimeout = 2 * rc.HeartbeatTimeout }, "LeaderLeaseTimeout"},
		{func(rc *raft.Config) { rc.ProtocolVersion = raft.ProtocolVersionMax + 1 }, ""}, // not ours to set
	}
	for _, tt := range tests {
		rc := validConfig().raftConfig()
		tt.mutate(rc)
		err := raft.ValidateConfig(rc)
		if err == nil {
			t.Fatalf("raft accepted %+v", rc)
		}
		e := fromRaft(err)
		if e.Field != tt.field || !strings.Contains(e.Error(), strings.SplitN(err.Error(), " ", 2)[1]) {
			t.Errorf("raft's %q became field %q, %q; want field %q and raft's words", err, e.Field, e.Error(), tt.field)
		}
	}
}

// raftFields must name, for every raft.Config field raftConfig takes from a Config field,
// that Config field: found by changing each Config field and seeing what moves.
func TestConfig_RaftFieldsTranslateRaftConfig(t *testing.T) {
	base := validConfig()
	baseRC := reflect.ValueOf(*base.raftConfig())
	seen := map[string]bool{}
	ct := reflect.TypeOf(base)
	for i := range ct.NumField() {
		c := base
		f := reflect.ValueOf(&c).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 7)
		case reflect.Uint64:
			f.SetUint(f.Uint() + 7)
		default:
			continue
		}
		rc := reflect.ValueOf(*c.raftConfig())
		for j := range rc.NumField() {
			name := rc.Type().Field(j).Name
			if !rc.Type().Field(j).IsExported() || reflect.DeepEqual(rc.Field(j).Interface(), baseRC.Field(j).Interface()) {
				continue
			}
			seen[name] = true
			if raftFields[name] != ct.Field(i).Name {
				t.Errorf("raft.Config.%s comes from Config.%s, but raftFields says %q", name, ct.Field(i).Name, raftFields[name])
			}
		}
	}
	for name := range raftFields {
		if !seen[name] {
			t.Errorf("raftFields names raft.Config.%s, which no Config field sets", name)
		}
	}
}

func TestConfigError_DescribeNamesEveryField(t *testing.T) {
	c := validConfig()
	c.LeaderLeaseTimeout = time.Second
	errs := ConfigErrors(c.Validate())
	if len(errs) != 1 {
		t.Fatalf("errors %v", errs)
	}
	flag := func(field string) string { return "--" + strings.ToLower(field) }
	if got, want := errs[0].Describe(flag), "--leaderleasetimeout must be at most --heartbeattimeout (200ms), got 1s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var ce *ConfigError
	if err := fmt.Errorf("start: %w", c.Validate()); !errors.As(err, &ce) || ce.Field != "LeaderLeaseTimeout" {
		t.Errorf("errors.As through a wrap: %v", ce)
	}
}
