package clustertest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/anishathalye/porcupine"
)

// summaryRow is one scenario run in the table printed at the end.
type summaryRow struct {
	Scenario string
	Seed     int64
	Ops      int
	Unknown  int
	Faults   int
	Duration time.Duration
	Verdict  string
	Results  string
}

var summary struct {
	mu   sync.Mutex
	rows []summaryRow
}

func addSummary(r summaryRow) {
	summary.mu.Lock()
	summary.rows = append(summary.rows, r)
	summary.mu.Unlock()
}

// printSummary writes the table of every scenario run so far.
func printSummary(w io.Writer) {
	summary.mu.Lock()
	defer summary.mu.Unlock()
	if len(summary.rows) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSCENARIO\tSEED\tOPS\tUNKNOWN\tFAULTS\tDURATION\tVERDICT")
	var total time.Duration
	for _, r := range summary.rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1fs\t%s\n", r.Scenario, r.Seed, r.Ops, r.Unknown, r.Faults, r.Duration.Seconds(), r.Verdict)
		total += r.Duration
	}
	fmt.Fprintf(tw, "total\t\t\t\t\t%.1fs\t\n", total.Seconds())
	tw.Flush()
	for _, r := range summary.rows {
		if r.Results != "" {
			fmt.Fprintf(w, "results of %s: %s\n", r.Scenario, r.Results)
		}
	}
}

// results is where a failed run leaves its evidence: $CHAOS_RESULTS/<scenario>-<seed>, or a
// new temp dir.
type results struct {
	dir string
	err error
}

func newResults(scenario string, seed int64) *results {
	name := fmt.Sprintf("%s-%d", strings.NewReplacer("/", "_", " ", "_").Replace(scenario), seed)
	base := os.Getenv("CHAOS_RESULTS")
	var r results
	if base != "" {
		r.dir = filepath.Join(base, name)
		r.err = os.MkdirAll(r.dir, 0o755)
	} else {
		r.dir, r.err = os.MkdirTemp("", "chaos-"+name+"-")
	}
	return &r
}

func (r *results) write(name string, data []byte) {
	if r.err == nil {
		r.err = os.WriteFile(filepath.Join(r.dir, name), data, 0o644)
	}
}

func (r *results) copyFile(name, src string) {
	data, err := os.ReadFile(src)
	if err != nil {
		data = []byte(err.Error())
	}
	r.write(name, data)
}

func (r *results) visualize(model porcupine.Model, info porcupine.LinearizationInfo) {
	if r.err == nil {
		r.err = porcupine.VisualizePath(model, info, filepath.Join(r.dir, "linearizability.html"))
	}
}
