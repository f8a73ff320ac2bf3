package clustertest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/flashstock/flashstock/api"
)

// stateReader reads one replica's state: c.DebugState for a single-group cluster, or a
// multi-group cluster's replica of one data group (c.GroupState).
type stateReader func(ctx context.Context, m *Member) (api.DebugState, error)

// converge polls read on every member in ids until they all report the same applied index
// and the same state hash, and returns their states. The load must have stopped and the
// cluster must be whole (scenarios pass --expire-interval 1h, so an idle cluster appends
// nothing).
func converge(ctx context.Context, c *Cluster, ids []string, read stateReader) (map[string]api.DebugState, error) {
	var why string
	for {
		states := map[string]api.DebugState{}
		why = ""
		for _, id := range ids {
			s, err := read(ctx, c.Member(id))
			if err != nil {
				why = fmt.Sprintf("%s: %v", id, err)
				break
			}
			states[id] = s
		}
		if why == "" {
			first := states[ids[0]]
			for _, id := range ids[1:] {
				if s := states[id]; s.AppliedIndex != first.AppliedIndex || s.StateHash != first.StateHash {
					why = fmt.Sprintf("%s at index %d hash %.12s, %s at index %d hash %.12s",
						ids[0], first.AppliedIndex, first.StateHash, id, s.AppliedIndex, s.StateHash)
					break
				}
			}
			if why == "" {
				return states, nil
			}
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return states, fmt.Errorf("replicas did not converge: %s", why)
		}
	}
}

// checkInvariants reports every replica whose fsm invariants do not hold.
func checkInvariants(states map[string]api.DebugState) []string {
	var out []string
	for id, s := range states {
		if s.Invariants != "ok" {
			out = append(out, fmt.Sprintf("invariants on %s: %s", id, s.Invariants))
		}
	}
	sort.Strings(out)
	return out
}

// ledgerLimit is the most movements one history read returns; a ledger that long may be
// cut, so the workloads keep each SKU well below it.
const ledgerLimit = 1000

// fetchLedgers reads every SKU's ledger from every replica hosts names for it (each from
// its own state) and reports any difference between replicas. It returns the first
// replica's ledgers.
func fetchLedgers(ctx context.Context, c *Cluster, hosts func(sku string) []string, skus []string) (map[string][]api.Movement, []string) {
	var problems []string
	ledgers := map[string][]api.Movement{}
	for _, sku := range skus {
		ids := hosts(sku)
		for i, id := range ids {
			moves, err := c.Ledger(ctx, c.Member(id), sku)
			if err != nil {
				problems = append(problems, fmt.Sprintf("ledger of %s on %s: %v", sku, id, err))
				continue
			}
			if len(moves) >= ledgerLimit {
				problems = append(problems, fmt.Sprintf("ledger of %s on %s has %d movements: it may be cut; use fewer operations per SKU", sku, id, len(moves)))
			}
			if i == 0 {
				ledgers[sku] = moves
			} else if !slices.Equal(moves, ledgers[sku]) {
				problems = append(problems, fmt.Sprintf("ledger of %s differs between %s (%d movements) and %s (%d movements)", sku, ids[0], len(ledgers[sku]), id, len(moves)))
			}
		}
	}
	return ledgers, problems
}

// mutationKind is the ledger's name for an operation's movement.
func mutationKind(k OpKind) string {
	if k == OpDeduct {
		return "deduct"
	}
	return "restock"
}

// checkExactlyOnce compares the ledger with the acknowledgements: every acknowledged
// success applied exactly once (not lost, not duplicated), every acknowledged rejection
// applied never, an unknown operation at most once, and no movement without an operation
// of ours behind it (phantom).
func checkExactlyOnce(ops []Op, ledgers map[string][]api.Movement) []string {
	type key struct{ sku, req string }
	moves := map[key][]api.Movement{}
	for sku, ms := range ledgers {
		for _, m := range ms {
			if m.Kind == "create" {
				continue
			}
			moves[key{sku, m.RequestID}] = append(moves[key{sku, m.RequestID}], m)
		}
	}
	var out []string
	for _, op := range ops {
		if !op.Mutation() {
			continue
		}
		k := key{op.Input.SKU, op.RequestID}
		ms := moves[k]
		delete(moves, k)
		for _, m := range ms {
			if m.Kind != mutationKind(op.Input.Kind) || m.Qty != op.Input.Qty {
				out = append(out, fmt.Sprintf("%s %s: ledger has %s %d for request %s", op.Input.SKU, op.Input.Kind, m.Kind, m.Qty, op.RequestID))
			}
		}
		switch o := op.Output.Outcome; {
		case o == OutOK && len(ms) == 0:
			out = append(out, fmt.Sprintf("LOST: acknowledged %s(%d) of %s, request %s, is not in the ledger", op.Input.Kind, op.Input.Qty, op.Input.SKU, op.RequestID))
		case len(ms) > 1:
			out = append(out, fmt.Sprintf("DUPLICATE: %s(%d) of %s, request %s (%s), applied %d times", op.Input.Kind, op.Input.Qty, op.Input.SKU, op.RequestID, o, len(ms)))
		case (o == OutSoldOut || o == OutInsufficient) && len(ms) > 0:
			out = append(out, fmt.Sprintf("PHANTOM: deduct(%d) of %s, request %s, answered %s but applied", op.Input.Qty, op.Input.SKU, op.RequestID, o))
		}
	}
	for k, ms := range moves {
		out = append(out, fmt.Sprintf("PHANTOM: %d movement(s) of %s with request %q that no client issued (first: %+v)", len(ms), k.sku, k.req, ms[0]))
	}
	sort.Strings(out)
	return out
}

// resolveUnknown uses the converged ledger to settle operations without a definite answer:
// a mutation the ledger shows applied becomes OutApplied (it happened once, some time after
// its call); one it does not show had no effect and, having no answer either, is dropped.
// Reads without an answer are dropped too. A mistake here cannot hide a bug: a wrong
// "applied" or "not applied" contradicts the strong reads and answers around it.
func resolveUnknown(ops []Op, ledgers map[string][]api.Movement) []Op {
	applied := map[string]bool{}
	for _, ms := range ledgers {
		for _, m := range ms {
			if m.RequestID != "" {
				applied[m.RequestID] = true
			}
		}
	}
	out := make([]Op, 0, len(ops))
	for _, op := range ops {
		if op.Output.Outcome == OutUnknown {
			if !op.Mutation() || !applied[op.RequestID] {
				continue
			}
			op.Output.Outcome = OutApplied
		}
		out = append(out, op)
	}
	return out
}

// checkNoOversell checks each SKU on each of its replicas (hosts) against its ledger and
// the answers: available never negative, available + reserved + sold equal to everything
// ever put in, sold equal to the deductions in the ledger, and the acknowledged
// deductions never more than the stock there ever was.
func checkNoOversell(ctx context.Context, c *Cluster, hosts func(sku string) []string, ops []Op, ledgers map[string][]api.Movement) []string {
	var out []string
	for sku, ms := range ledgers {
		var in, sold int64
		for _, m := range ms {
			switch m.Kind {
			case "create", "restock":
				in += m.Qty
			case "deduct":
				sold += m.Qty
			}
		}
		var acked int64
		for _, op := range ops {
			if op.Input.SKU == sku && op.Input.Kind == OpDeduct && op.Output.Outcome == OutOK {
				acked += op.Input.Qty
			}
		}
		if acked > in {
			out = append(out, fmt.Sprintf("OVERSOLD %s: %d units acknowledged sold, only %d ever in stock", sku, acked, in))
		}
		for _, id := range hosts(sku) {
			s, err := c.LocalSKU(ctx, c.Member(id), sku)
			if err != nil {
				out = append(out, fmt.Sprintf("read %s on %s: %v", sku, id, err))
				continue
			}
			if s.Available < 0 || s.Reserved != 0 || s.Sold != sold || s.Available+s.Reserved+s.Sold != in {
				out = append(out, fmt.Sprintf("%s on %s: available %d reserved %d sold %d, but the ledger says %d in and %d sold",
					sku, id, s.Available, s.Reserved, s.Sold, in, sold))
			}
		}
	}
	sort.Strings(out)
	return out
}

// checkLinearizable checks the history against the inventory model with porcupine. A
// check that times out is Unknown, which the scenarios count as a failure, not a pass.
func checkLinearizable(ops []Op, initial int64, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo, porcupine.Model) {
	model := inventoryModel(initial)
	res, info := porcupine.CheckOperationsVerbose(model, porcupineOps(ops), timeout)
	return res, info, model
}

// checkUnexpected reports operations that ended with an error the workload never expects.
func checkUnexpected(ops []Op) []string {
	var out []string
	for _, op := range ops {
		if op.Output.Outcome == OutError {
			out = append(out, fmt.Sprintf("unexpected answer to %s(%d) of %s: %s", op.Input.Kind, op.Input.Qty, op.Input.SKU, op.Output.Err))
		}
	}
	return out
}

// electionWon matches hashicorp/raft's log line of a won election; raftGroup the group
// stockd names on each raft line (terms are per group: two groups' leaders in the same
// term number are no conflict). A line without it is group 1's (a single-group build).
var (
	electionWon = regexp.MustCompile(`election won.*\bterm=(\d+)`)
	raftGroup   = regexp.MustCompile(`\bgroup=(\d+)`)
)

// checkOneLeaderPerTerm reads every member's log and reports a term of a group that more
// than one member won; it returns how many (group, term) pairs had a leader.
func checkOneLeaderPerTerm(members []*Member) ([]string, int) {
	type term struct{ group, term uint64 }
	winners := map[term][]string{}
	for _, m := range members {
		f, err := os.Open(m.LogPath)
		if err != nil {
			continue // never started
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			if g := electionWon.FindStringSubmatch(line); g != nil {
				k := term{group: 1}
				k.term, _ = strconv.ParseUint(g[1], 10, 64)
				if gr := raftGroup.FindStringSubmatch(line); gr != nil {
					k.group, _ = strconv.ParseUint(gr[1], 10, 64)
				}
				if !slices.Contains(winners[k], m.ID) {
					winners[k] = append(winners[k], m.ID)
				}
			}
		}
		f.Close()
	}
	var out []string
	for k, ids := range winners {
		if len(ids) > 1 {
			out = append(out, fmt.Sprintf("TWO LEADERS in group %d, term %d: %s", k.group, k.term, strings.Join(ids, ", ")))
		}
	}
	sort.Strings(out)
	return out, len(winners)
}
