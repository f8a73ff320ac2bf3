package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// Verdicts of the oversell check.
const (
	verdictOK   = "OK"
	verdictAmbi = "AMBIGUOUS" // books balance, but some ops' outcomes stayed unknown: sold is only bounded
	verdictFail = "FAIL"
)

// skuExpect is what the bench knows about one SKU after a run: the units it put in and the
// units the cluster acknowledged as sold to its buyers.
type skuExpect struct {
	SKU      string
	Stock    int64 // initial stock plus restocks
	Acked    int64 // units of successful deductions (or confirmed orders) acknowledged to buyers
	Unknown  int64 // units of ops whose outcome stayed unknown after replaying them
	Reserves bool  // the run reserved: holds left over are only excused by unknown ops
}

// checkSKU returns every rule the final strong read of one SKU breaks (none: it is sound).
// The rules, from DESIGN.md: nothing oversold, the books balance (available + reserved +
// sold == stock), and sold is exactly what was acknowledged — an acknowledged sale may not
// be lost, and no unit may be sold that no buyer was told about.
func checkSKU(e skuExpect, s api.SKU) []string {
	var p []string
	if s.Sold > e.Stock {
		p = append(p, fmt.Sprintf("oversold: sold %d > stock %d", s.Sold, e.Stock))
	}
	if s.Available < 0 || s.Reserved < 0 || s.Sold < 0 {
		p = append(p, fmt.Sprintf("negative count: available %d, reserved %d, sold %d", s.Available, s.Reserved, s.Sold))
	}
	if sum := s.Available + s.Reserved + s.Sold; sum != e.Stock {
		p = append(p, fmt.Sprintf("books do not balance: available+reserved+sold = %d, stock %d", sum, e.Stock))
	}
	if s.Sold < e.Acked {
		p = append(p, fmt.Sprintf("lost acknowledged sales: %d acknowledged, %d sold", e.Acked, s.Sold))
	}
	if s.Sold > e.Acked+e.Unknown {
		p = append(p, fmt.Sprintf("unacknowledged sales: sold %d, acknowledged %d (+%d unknown)", s.Sold, e.Acked, e.Unknown))
	}
	if s.Reserved > 0 && e.Unknown == 0 {
		p = append(p, fmt.Sprintf("held units left over: reserved %d with every order settled", s.Reserved))
	}
	return p
}

// checkReport is the oversell check's result.
type checkReport struct {
	Verdict       string   `json:"verdict"`
	SKUs          int      `json:"skus"`
	Stock         int64    `json:"stock"`
	Acked         int64    `json:"acked"`
	Sold          int64    `json:"sold"`
	Unknown       int64    `json:"unknown_units"`
	ReplicasAgree string   `json:"replicas_agree"` // "3/3": nodes whose stale reads reached the leader's state
	Problems      []string `json:"problems,omitempty"`
}

// maxProblems bounds the problems listed; the count of the rest is noted.
const maxProblems = 20

// verdict folds per-SKU problems and the replica comparison into a report.
func verdict(expects []skuExpect, finals map[string]api.SKU, replicaProblems []string, agree, nodes int) checkReport {
	r := checkReport{SKUs: len(expects), ReplicasAgree: fmt.Sprintf("%d/%d", agree, nodes)}
	var problems []string
	for _, e := range expects {
		r.Stock += e.Stock
		r.Acked += e.Acked
		r.Unknown += e.Unknown
		s, ok := finals[e.SKU]
		if !ok {
			problems = append(problems, e.SKU+": missing from the final read")
			continue
		}
		r.Sold += s.Sold
		for _, p := range checkSKU(e, s) {
			problems = append(problems, e.SKU+": "+p)
		}
	}
	problems = append(problems, replicaProblems...)
	if len(problems) > maxProblems {
		problems = append(problems[:maxProblems], fmt.Sprintf("... and %d more", len(problems)-maxProblems))
	}
	r.Problems = problems
	switch {
	case len(problems) > 0:
		r.Verdict = verdictFail
	case r.Unknown > 0:
		r.Verdict = verdictAmbi
	default:
		r.Verdict = verdictOK
	}
	return r
}

// stockOf is the part of a SKU the replicas must agree on.
func stockOf(s api.SKU) [3]int64 { return [3]int64{s.Available, s.Reserved, s.Sold} }

// runCheck strong-reads every SKU of the run at the leader, then polls every node's stale
// reads (bounded by converge) until they show the same stock, and judges.
func runCheck(ctx context.Context, cl *client.Client, nodes []*client.Client, prefix string, expects []skuExpect, converge time.Duration) (checkReport, error) {
	finals, err := readAll(ctx, cl, prefix, false)
	if err != nil {
		return checkReport{}, fmt.Errorf("final strong read: %w", err)
	}
	var replicaProblems []string
	agree := 0
	deadline := time.Now().Add(converge)
	for i, n := range nodes {
		var diff string
		for {
			diff = ""
			stale, err := readAll(ctx, n, prefix, true)
			if err != nil {
				diff = err.Error()
			} else {
				diff = firstDiff(finals, stale)
			}
			if diff == "" || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if diff == "" {
			agree++
			continue
		}
		addr := fmt.Sprint(i)
		if eps := n.Endpoints(); len(eps) > 0 {
			addr = eps[0].Addr
		}
		replicaProblems = append(replicaProblems, fmt.Sprintf("node %s did not converge within %v: %s", addr, converge, diff))
	}
	return verdict(expects, finals, replicaProblems, agree, len(nodes)), nil
}

// firstDiff names the first SKU whose stock differs between want and got, or "".
func firstDiff(want, got map[string]api.SKU) string {
	keys := sortedKeys(want)
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			return k + " missing"
		}
		if stockOf(g) != stockOf(want[k]) {
			w := want[k]
			return fmt.Sprintf("%s: available/reserved/sold %d/%d/%d, leader %d/%d/%d", k,
				g.Available, g.Reserved, g.Sold, w.Available, w.Reserved, w.Sold)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d SKUs, leader %d", len(got), len(want))
	}
	return ""
}

// readAll lists every SKU whose id starts with prefix, paging, strong or stale.
func readAll(ctx context.Context, cl *client.Client, prefix string, stale bool) (map[string]api.SKU, error) {
	out := map[string]api.SKU{}
	after := ""
	for page := 0; page < 10_000; page++ {
		opts := []client.CallOption{client.WithLimit(1000)}
		if after != "" {
			opts = append(opts, client.WithAfter(after))
		}
		if stale {
			opts = append(opts, client.WithStale())
		}
		skus, err := cl.ListSKUs(ctx, prefix, opts...)
		if err != nil {
			return nil, err
		}
		for _, s := range skus {
			out[s.SKU] = s
		}
		if len(skus) < 1000 {
			return out, nil
		}
		after = skus[len(skus)-1].SKU
	}
	return nil, errors.New("too many SKUs under the prefix")
}

// describe is the check's one-line form: "OK (skus=1 sold=500/500 acked=500 replicas 3/3)".
func (r checkReport) describe() string {
	s := fmt.Sprintf("%s (skus=%d sold=%d stock=%d acked=%d unknown=%d replicas_agree=%s)",
		r.Verdict, r.SKUs, r.Sold, r.Stock, r.Acked, r.Unknown, r.ReplicasAgree)
	if len(r.Problems) > 0 {
		s += "\n  " + strings.Join(r.Problems, "\n  ")
	}
	return s
}
