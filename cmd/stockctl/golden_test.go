package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// fakeCluster answers the HTTP contract with fixed documents, so the output of every
// command is byte-for-byte reproducible.
func fakeCluster(t *testing.T) string {
	t.Helper()
	tee := api.SKU{SKU: "tee", Available: 97, Reserved: 2, Sold: 1, PerUserLimit: 2, Version: 12}
	order := api.Order{OrderID: "o-1", UserID: "ann", Lines: []api.Line{{SKU: "tee", Qty: 2}, {SKU: "cap", Qty: 1}},
		Status: api.OrderHeld, ExpiresAtMS: 1731300000000, CreatedAtMS: 1731299400000, Version: 14}
	fail := func(w http.ResponseWriter, code api.Code, msg string) {
		reply(w, code.HTTPStatus(), api.ErrorBody{Error: &api.Error{Code: code, Message: msg}})
	}
	routes := map[string]http.HandlerFunc{
		"GET /v1/cluster/self": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, api.Node{ID: "n1", Role: api.RoleLeader})
		},
		"PUT /v1/skus/tee": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 201, api.SKU{SKU: "tee", Available: 100, PerUserLimit: 2, Version: 9})
		},
		"GET /v1/skus/tee": func(w http.ResponseWriter, r *http.Request) { reply(w, 200, tee) },
		"GET /v1/skus": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, api.SKUList{SKUs: []api.SKU{{SKU: "cap", Available: 0, Sold: 40, Version: 11}, tee,
				{SKU: "tee-blue-xl", Available: 1000000, Version: 3}}})
		},
		"POST /v1/skus/tee/restock": func(w http.ResponseWriter, r *http.Request) {
			s := tee
			s.Available, s.Version = 147, 15
			reply(w, 200, s)
		},
		"POST /v1/skus/tee/adjust": func(w http.ResponseWriter, r *http.Request) {
			s := tee
			s.Available, s.Version = 94, 13
			reply(w, 200, s)
		},
		"POST /v1/skus/tee/retire": func(w http.ResponseWriter, r *http.Request) {
			s := tee
			s.Available, s.Reserved, s.Sold, s.Version, s.Retired = 0, 0, 3, 17, true
			reply(w, 200, s)
		},
		"POST /v1/skus/cap/retire": func(w http.ResponseWriter, r *http.Request) {
			fail(w, api.FailedPrecondition, `sku "cap" has 2 units held by orders; confirm, cancel or let them expire before retiring it`)
		},
		"POST /v1/skus/tee/deduct": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, api.DeductResponse{Remaining: 96})
		},
		"GET /v1/skus/tee/history": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, api.History{SKU: "tee", Movements: []api.Movement{
				{Index: 9, Seq: 1, Kind: "create", Qty: 100, TimeMS: 1731299000000},
				{Index: 10, Seq: 2, Kind: "deduct", Qty: -1, RequestID: "r-1", UserID: "bob", TimeMS: 1731299100000},
				{Index: 12, Seq: 3, Kind: "reserve", Qty: -2, OrderID: "o-1", UserID: "ann", TimeMS: 1731299400000},
				{Index: 13, Seq: 4, Kind: "adjust", Qty: -3, RequestID: "count-1", Reason: "damage", TimeMS: 1731299500000},
			}})
		},
		"POST /v1/orders": func(w http.ResponseWriter, r *http.Request) { reply(w, 201, order) },
		"GET /v1/orders/o-1": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, order)
		},
		"POST /v1/orders/o-1/confirm": func(w http.ResponseWriter, r *http.Request) {
			o := order
			o.Status, o.Version = api.OrderConfirmed, 16
			reply(w, 200, o)
		},
		"GET /v1/cluster": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, api.Cluster{Leader: "n1", Term: 3, Nodes: []api.Node{
				{ID: "n1", RaftAddr: "10.0.0.1:5001", HTTPAddr: "10.0.0.1:4001", Role: api.RoleLeader, Suffrage: api.Voter, AppliedIndex: 120,
					Version: "v1.4.0", Revision: "3f44f1354230b1c9e5d2a7f0c8e6b4a2d1f09e87"},
				{ID: "n2", RaftAddr: "10.0.0.2:5001", HTTPAddr: "10.0.0.2:4001", Role: api.RoleFollower, Suffrage: api.Voter, AppliedIndex: 119, LastContactMS: 12,
					Version: "devel", Revision: "0123456789abcdef0123456789abcdef01234567"},
				{ID: "n3", RaftAddr: "10.0.0.3:5001", Role: api.RoleUnknown, Suffrage: api.Nonvoter, LastContactMS: -1},
			}, PlacementVersion: 4, Groups: []api.Group{
				{ID: 0, Kind: api.GroupMeta, Leader: "n1", PreferredLeader: "n1", Replicas: []api.Replica{{Node: "n1", Role: api.Voter}, {Node: "n2", Role: api.Voter}}},
				{ID: 1, Kind: api.GroupData, Leader: "n2", PreferredLeader: "n2", Replicas: []api.Replica{{Node: "n1", Role: api.Voter}, {Node: "n2", Role: api.Voter}, {Node: "n3", Role: api.Nonvoter}},
					Slots: []api.SlotRange{{From: 0, To: 512}}},
				{ID: 2, Kind: api.GroupData, Leader: "n1", PreferredLeader: "n1", Replicas: []api.Replica{{Node: "n1", Role: api.Voter}, {Node: "n2", Role: api.Voter}},
					Slots: []api.SlotRange{{From: 512, To: 1024}}},
			}})
		},
		"POST /v1/cluster/members": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, map[string]string{"status": "ok"})
		},
		"DELETE /v1/cluster/members/n3": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, map[string]string{"status": "ok"})
		},
		"DELETE /v1/cluster/members/n1": func(w http.ResponseWriter, r *http.Request) {
			fail(w, api.FailedPrecondition, `member "n1" is the last voter; removing it would leave no cluster`)
		},
		"POST /v1/cluster/leader": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, map[string]string{"status": "ok"})
		},
		"POST /v1/groups/2/move": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, api.PlacementChange{PlacementVersion: 5, Steps: []api.PlannedStep{
				{Group: 2, Kind: "add_nonvoter", Node: "n3"}, {Group: 2, Kind: "promote", Node: "n3"},
				{Group: 2, Kind: "transfer_leader", Node: "n2"}, {Group: 2, Kind: "remove", Node: "n1"}}})
		},
		"POST /v1/groups/9/move": func(w http.ResponseWriter, r *http.Request) {
			fail(w, api.NotFound, "placement: unknown_group: no group 9")
		},
		"POST /v1/groups/1/move": func(w http.ResponseWriter, r *http.Request) {
			fail(w, api.FailedPrecondition, `placement: already_replica: group 1: "n2" is one of its voters already`)
		},
		"POST /v1/groups/2/leader": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, api.PlacementChange{PlacementVersion: 5, Steps: []api.PlannedStep{}})
		},
		"POST /v1/placement/balance": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 200, api.PlacementChange{PlacementVersion: 4, Steps: []api.PlannedStep{
				{Group: 1, Kind: "remove", Node: "n3"}, {Group: 2, Kind: "transfer_leader", Node: "n2"}}})
		},
		"GET /v1/skus/gone":         func(w http.ResponseWriter, r *http.Request) { fail(w, api.NotFound, `sku "gone" not found`) },
		"POST /v1/skus/gone/deduct": func(w http.ResponseWriter, r *http.Request) { fail(w, api.NotFound, `sku "gone" not found`) },
		"POST /v1/skus/cap/deduct":  func(w http.ResponseWriter, r *http.Request) { fail(w, api.SoldOut, `sku "cap" is sold out`) },
		"PUT /v1/skus/cap": func(w http.ResponseWriter, r *http.Request) {
			fail(w, api.AlreadyExists, `sku "cap" already exists`)
		},
		"GET /v1/skus/busy": func(w http.ResponseWriter, r *http.Request) {
			fail(w, api.NoLeader, "the cluster has no leader right now")
		},
		"GET /v1/skus/bad!": func(w http.ResponseWriter, r *http.Request) {
			fail(w, api.InvalidArgument, "sku must be 1-64 characters of [A-Za-z0-9._:-]")
		},
	}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		if h != nil {
			mux.HandleFunc(pattern, h)
		}
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Setenv(envEndpoints, strings.TrimPrefix(srv.URL, "http://"))
	t.Setenv(envToken, "")
	return strings.TrimPrefix(srv.URL, "http://")
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// stockctl runs the command line in-process and returns its outputs and exit status.
func stockctl(args ...string) (stdout, stderr string, code int) {
	var out, errs bytes.Buffer
	code = run(args, &out, &errs)
	return out.String(), errs.String(), code
}

func TestGolden_TablesAndJSON(t *testing.T) {
	fakeCluster(t)
	for _, tc := range []struct {
		name string
		args string
	}{
		{"sku_create", "sku create tee --stock 100 --limit 2"},
		{"sku_get", "sku get tee"},
		{"sku_get_json", "sku get tee --json"},
		{"sku_list", "sku list"},
		{"sku_list_json", "sku list --json"},
		{"sku_restock", "sku restock tee --qty 50"},
		{"sku_history", "sku history tee"},
		{"sku_adjust", "sku adjust tee --qty -3 --reason damage"},
		{"sku_retire", "sku retire tee"},
		{"sku_retire_json", "sku retire tee --json"},
		{"deduct", "deduct tee --user ann"},
		{"deduct_json", "deduct tee --user ann --json"},
		{"order_reserve", "order reserve o-1 --user ann --line tee:2 --line cap"},
		{"order_get_json", "order get o-1 --json"},
		{"order_confirm", "order confirm o-1"},
		{"cluster_status", "cluster status"},
		{"cluster_status_json", "cluster status --json"},
		{"group_list", "group list"},
		{"group_list_json", "group list --json"},
		{"group_move", "group move 2 --from n1 --to n3"},
		{"group_move_json", "group move 2 --from n1 --to n3 --json"},
		{"group_leader_wait", "group leader 2 n1 --wait"},
		{"group_balance_dry_run", "group balance --dry-run"},
		{"help_group_move", "group move --help"},
		{"cluster_join", "cluster join --id n4 --raft-addr 10.0.0.4:5001 --http-addr 10.0.0.4:4001"},
		{"cluster_leave", "cluster leave n3"},
		{"cluster_transfer", "cluster transfer-leader --to n2"},
		{"cluster_transfer_group", "cluster transfer-leader --group 3 --to n2"},
		{"help_deduct", "deduct --help"},
		{"help_sku", "sku --help"},
		{"help", "--help"},
		{"help_sku", "help sku"},
		{"sku_create", "sku create tee --stock 100 --per-user-limit 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := stockctl(strings.Fields(tc.args)...)
			if code != 0 {
				t.Fatalf("stockctl %s: exit %d: %s", tc.args, code, errs)
			}
			checkGolden(t, tc.name, out)
		})
	}
}

// TestGolden_Errors pins what a failing command prints on stderr, in text and with --json.
func TestGolden_Errors(t *testing.T) {
	fakeCluster(t)
	endpointResolver = noSuchHost{}
	t.Cleanup(func() { endpointResolver = nil })
	for _, tc := range []struct {
		name string
		args string
		code int
	}{
		{"err_unknown_command", "clustr status", exitUsage},
		{"err_unknown_command_far", "frobnicate", exitUsage},
		{"err_unknown_subcommand", "sku craete tee", exitUsage},
		{"err_usage_json", "sku create tee --json", exitUsage},
		{"err_not_found", "sku get gone", exitNotFound},
		{"err_not_found_json", "sku get gone --json", exitNotFound},
		{"err_rejected_json", "deduct cap --user ann --json", exitRejected},
		{"err_timeout_zero", "sku get tee --timeout 0", exitUsage},
		{"err_unreachable", "sku restock tee --qty 1 --request-id r-9 --endpoints 127.0.0.1:1", exitUnavailable},
		{"err_unreachable_json", "sku restock tee --qty 1 --request-id r-9 --endpoints 127.0.0.1:1 --json", exitUnavailable},
		{"err_dns", "sku get tee --endpoints flashstock.invalid:4001", exitError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := stockctl(strings.Fields(tc.args)...)
			if code != tc.code || out != "" {
				t.Fatalf("stockctl %s: exit %d, want %d; stdout %q", tc.args, code, tc.code, out)
			}
			checkGolden(t, tc.name, errs)
		})
	}
}

// noSuchHost answers every DNS lookup as the name not existing, as a resolver does for a
// typo, without asking the network.
type noSuchHost struct{}

func (noSuchHost) LookupHost(_ context.Context, host string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestExitCodes(t *testing.T) {
	fakeCluster(t)
	for _, tc := range []struct {
		args    string
		code    int
		errText string // a part of stderr that must be there: the flag or value at fault
	}{
		{"sku get tee", exitOK, ""},
		{"sku get gone", exitNotFound, `sku "gone" not found`},
		{"deduct gone --user ann", exitNotFound, "not_found"},
		{"deduct cap --user ann", exitRejected, "sold_out"},
		{"sku create cap --stock 1", exitRejected, "already_exists"},
		{"cluster leave n1", exitRejected, "last voter"},
		{"sku get busy --timeout 300ms", exitUnavailable, "no_leader"},
		{"sku get tee --endpoints 127.0.0.1:1 --timeout 300ms", exitUnavailable, "--endpoints 127.0.0.1:1"},
		{"sku get bad!", exitUsage, "invalid_argument"},
		{"sku get", exitUsage, "missing argument"},
		{"sku get tee extra", exitUsage, `unexpected argument "extra"`},
		{"sku create tee", exitUsage, "--stock is required"},
		{"sku create tee --stock -3", exitUsage, "--stock must be 0 or more"},
		{"sku create tee --stock ten", exitUsage, `invalid value "ten" for flag -stock`},
		{"sku restock tee", exitUsage, "--qty must be a positive"},
		{"sku adjust tee --reason damage", exitUsage, "--qty must be a non-zero"},
		{"sku adjust tee --qty -1", exitUsage, "--reason is required"},
		{"sku retire cap", exitRejected, "held by orders"},
		{"sku list --limit 0", exitUsage, "--limit must be 1..1000"},
		{"sku create tee --stock 1 --per-user-limit -1", exitUsage, "--per-user-limit must be 0"},
		{"sku create tee --stock 1 --limit -1", exitUsage, "--per-user-limit must be 0"},
		{"help", exitOK, ""},
		{"help cluster", exitOK, ""},
		{"sku get tee --endpoints 127.0.0.1:1,127.0.0.1:2", exitUnavailable, "cannot reach any endpoint"},
		{"deduct tee", exitUsage, "--user is required"},
		{"group move 9 --from n1 --to n3", exitNotFound, "unknown_group"},
		{"group move 1 --from n1 --to n2", exitRejected, "already_replica"},
		{"group move 2 --from n1", exitUsage, "--from and --to are required"},
		{"group move 2 --from n1 --to n1", exitUsage, "the same node"},
		{"group move two --from n1 --to n3", exitUsage, "group must be a number"},
		{"group leader 2", exitUsage, "missing argument"},
		{"group balance --dry-run --wait", exitUsage, "changes nothing to wait for"},
		{"group move 2 --from n1 --to n3 --wait --timeout 1500ms", exitUnavailable, "not done: group 2: replicas n1:voter,n2:voter"},
		{"deduct tee --user ann --qty 0", exitUsage, "--qty must be a positive"},
		{"order reserve o-1 --user ann", exitUsage, "--line is required"},
		{"order reserve o-1 --user ann --line tee:x", exitUsage, "--line: want sku:qty"},
		{"cluster join --id n4 --raft-addr 10.0.0.4:5001", exitUsage, "--http-addr is required"},
		{"sku get tee --endpoints nohost", exitUsage, "--endpoints"},
		{"backup", exitUsage, "--out is required"},
		{"sku frobnicate", exitUsage, `unknown subcommand "frobnicate"`},
		{"sku get tee --bogus", exitUsage, "-bogus"},
		{"sku get tee --help", exitOK, ""},
		{"completion fish", exitUsage, "want bash or zsh"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			_, errs, code := stockctl(strings.Fields(tc.args)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errs)
			}
			if !strings.Contains(errs, tc.errText) {
				t.Fatalf("stderr does not say %q:\n%s", tc.errText, errs)
			}
		})
	}
}

func TestCompletion(t *testing.T) {
	out, _, code := stockctl("completion", "bash")
	if code != 0 || !strings.Contains(out, "complete -o default -F _stockctl stockctl") {
		t.Fatalf("bash script (exit %d):\n%s", code, out)
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{nil, []string{"sku", "deduct", "order", "cluster", "backup", "completion", "paxos"}},
		{[]string{"sku"}, []string{"create", "get", "list", "restock", "history", "watch"}},
		{[]string{"cluster"}, []string{"status", "join", "leave", "transfer-leader"}},
		{[]string{"sku", "create"}, []string{"--stock", "--limit", "--endpoints", "--json"}},
		{[]string{"deduct", "tee"}, []string{"--user", "--qty", "--request-id"}},
		{[]string{"order", "reserve"}, []string{"--line", "--ttl"}},
	} {
		out, _, _ := stockctl(append([]string{"completion", "__complete"}, tc.words...)...)
		got := strings.Fields(out)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("completing %q: %q missing from %q", tc.words, w, got)
			}
		}
	}
}

// checkGolden compares out with testdata/NAME.golden (-update rewrites it).
func checkGolden(t *testing.T, name, out string) {
	t.Helper()
	golden := filepath.Join(pkgDir, "testdata", name+".golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if out != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got\n%s--- want\n%s", golden, out, want)
	}
}

// pkgDir is the package's dir, where testdata is, whatever dir a test changed to.
var pkgDir = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return wd
}()
