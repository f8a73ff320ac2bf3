package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// printResults writes one summary per point, or with sweep the table of every point
// (buyers, ok/s, p50, p99, 429s) after them; --json writes the results as one document.
func printResults(w io.Writer, asJSON bool, results []*benchResult, sweep bool) error {
	if asJSON {
		if sweep {
			return writeJSON(w, struct {
				Sweep []*benchResult `json:"sweep"`
			}{results})
		}
		if len(results) == 0 {
			return writeJSON(w, nil)
		}
		return writeJSON(w, results[0])
	}
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		writeSummary(w, r)
	}
	if sweep {
		fmt.Fprintln(w)
		return writeSweepTable(w, results)
	}
	return nil
}

// writeSummary is the human form of one point.
func writeSummary(w io.Writer, r *benchResult) {
	sc := r.Scenario
	what := "deductions"
	if sc.Mode == modeReserve {
		what = "confirmed"
	}
	skus := fmt.Sprintf("%d SKU %s", sc.SKUs, sc.Popularity)
	if sc.SKUs > 1 {
		skus = fmt.Sprintf("%d SKUs %s", sc.SKUs, sc.Popularity)
		if sc.Popularity == popZipf {
			skus += fmt.Sprintf(" (s=%g)", sc.ZipfS)
		}
	}
	batching := "batching"
	if !sc.Batching {
		batching = "no batching"
	}
	fmt.Fprintf(w, "bench %s: %d buyers on %d client(s) (%s), %s, stock %s, qty %d, prefix %s\n",
		sc.Mode, sc.Buyers, sc.Clients, batching, skus, commas(sc.Stock), sc.Qty, sc.SKUPrefix)
	label := "measured"
	if sc.Sellout {
		label = "sold out in"
	}
	fmt.Fprintf(w, "  %-12s %s/s  (%s ok of %s ops, %s %.3fs)\n", what, commas(int64(r.PerSecond)),
		commas(int64(r.OK)), commas(int64(r.Ops)), label, r.ElapsedS)
	if sc.Mode == modeReserve {
		fmt.Fprintf(w, "  %-12s %s\n", "cancelled", commas(int64(r.Cancelled)))
	}
	rj := r.Rejected
	fmt.Fprintf(w, "  %-12s sold_out %s, insufficient_stock %s, limit_exceeded %s, expired %s, other %s\n", "rejected",
		commas(int64(rj.SoldOut)), commas(int64(rj.InsufficientStock)), commas(int64(rj.LimitExceeded)),
		commas(int64(rj.Expired)), commas(int64(rj.Other)))
	fmt.Fprintf(w, "  %-12s %s answers 429 (retried after Retry-After); %s HTTP mutation requests for %s ops\n", "overloaded",
		commas(int64(r.Overloaded429)), commas(int64(r.Requests)), commas(int64(r.Ops)))
	fmt.Fprintf(w, "  %-12s %s ops ended with an unknown outcome (%d settled by replaying their request ids)\n", "errors",
		commas(int64(r.Errors)), r.Resolved)
	l := r.Latency
	fmt.Fprintf(w, "  %-12s p50 %s  p90 %s  p99 %s  max %s  mean %s\n", "latency", msStr(l.P50), msStr(l.P90), msStr(l.P99), msStr(l.Max), msStr(l.Mean))
	if so := r.Sellout; so != nil {
		fmt.Fprintf(w, "  %-12s %.3fs to sell %s units (last sale at %.3fs); sold out: %v\n", "sell-out",
			so.SelloutS, commas(r.UnitsSold), so.LastSaleS, so.SoldOut)
		if so.LateS > 0 {
			fmt.Fprintf(w, "  %-12s %d late buyers for %.1fs: %s sold_out rejections/s (%s rejections, %s other answers)\n", "turned away",
				so.LateBuyers, so.LateS, commas(int64(so.LatePerSecond)), commas(int64(so.LateRejected)), commas(int64(so.LateOther)))
			ll := so.LateLatency
			fmt.Fprintf(w, "  %-12s p50 %s  p90 %s  p99 %s  max %s; %s HTTP requests, %s answers 429\n", "", msStr(ll.P50), msStr(ll.P90),
				msStr(ll.P99), msStr(ll.Max), commas(int64(so.LateRequests)), commas(int64(so.Late429)))
			verdict := "no log writes for rejections"
			if so.WroteLog {
				verdict = "REJECTIONS WROTE THE LOG"
			}
			fmt.Fprintf(w, "  %-12s leader applied index %d → %d (+%d; the expire loop alone allows +%d): %s\n", "log",
				so.AppliedBefore, so.AppliedAfter, so.AppliedAfter-so.AppliedBefore, so.LogAllowance, verdict)
		}
	}
	if rw := r.Raft; rw != nil {
		elections := "no election"
		if rw.TermAfter != rw.TermBefore {
			elections = fmt.Sprintf("%d ELECTIONS", rw.TermAfter-rw.TermBefore)
		}
		at := ""
		if rw.SilenceMaxAt != "" {
			at = fmt.Sprintf(" (%s at %s UTC)", rw.SilenceMaxNode, rw.SilenceMaxAt)
		}
		fmt.Fprintf(w, "  %-12s term %d → %d (%s); followers' silence p99 %s, max %s%s; %s samples every %v, %d unanswered\n", "raft",
			rw.TermBefore, rw.TermAfter, elections, msStr(rw.SilenceP99MS), msStr(rw.SilenceMaxMS), at, commas(int64(rw.Samples)), raftWatchEvery, rw.UnansweredProbes)
	}
	if r.CPU != nil {
		r.CPU.describe(w)
	}
	if r.Chart != "" {
		fmt.Fprintf(w, "  %-12s %s\n", "chart", r.Chart)
	}
	fmt.Fprintf(w, "  %-12s %s\n", "check", r.Check.describe())
}

// writeSweepTable is the curve: one row per buyer count.
func writeSweepTable(w io.Writer, results []*benchResult) error {
	rows := make([][]string, 0, len(results))
	for _, r := range results {
		rows = append(rows, []string{strconv.Itoa(r.Scenario.Buyers), commas(int64(r.PerSecond)),
			msStr(r.Latency.P50), msStr(r.Latency.P99), commas(int64(r.Overloaded429)), commas(int64(r.Errors)), r.Check.Verdict})
	}
	return writeTable(w, "BUYERS\tOK/S\tP50\tP99\t429S\tERRORS\tCHECK", rows)
}

func msStr(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + "ms"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
}

// commas writes 1234567 as 1,234,567.
func commas(v int64) string {
	s := strconv.FormatInt(v, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
