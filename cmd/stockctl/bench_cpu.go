package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/internal/proc"
)

// cpuJSON is the CPU each process spent per acknowledged deduction over the measured window
// (issue 18): every node, from the process_cpu_seconds_total its /metrics exports (the
// Prometheus process collector reads /proc), and this stockctl process, from getrusage. The
// throughput says how fast; this says how much of the machine it took, and so how far the
// run was from the machine's limit: with every process on this host (--stockd), cores_used
// against host_cores.
type cpuJSON struct {
	WindowS   float64       `json:"window_s"`
	Processes []cpuProcJSON `json:"processes"`
	// USPerOp is the sum over the processes: the machine's CPU per deduction.
	USPerOp   float64 `json:"us_per_op"`
	CoresUsed float64 `json:"cores_used"`
	HostCores int     `json:"host_cores"`
}

type cpuProcJSON struct {
	Name      string  `json:"name"` // a node's id, or "client"
	Role      string  `json:"role"` // leader, follower, ..., or client
	CPUS      float64 `json:"cpu_s"`
	USPerOp   float64 `json:"us_per_op"`
	CoresUsed float64 `json:"cores_used"`
}

// cpuSample is every process's CPU time at one moment.
type cpuSample struct {
	at     time.Time
	nodes  []nodeCPU
	client float64 // seconds
}

type nodeCPU struct {
	name, role string
	sec        float64
}

// sampleCPUAt samples at t, unless ctx ends first; the channel closes without a sample
// when that, or any read, failed.
func (env *benchEnv) sampleCPUAt(ctx context.Context, t time.Time) <-chan cpuSample {
	out := make(chan cpuSample, 1)
	go func() {
		defer close(out)
		if proc.Sleep(ctx, time.Until(t)) != nil {
			return
		}
		if s, err := env.sampleCPU(ctx); err == nil {
			out <- s
		}
	}()
	return out
}

// sampleCPU reads every node's and this process's CPU time.
func (env *benchEnv) sampleCPU(ctx context.Context) (cpuSample, error) {
	s := cpuSample{at: time.Now(), client: selfCPU()}
	for _, a := range env.addrs {
		n, err := env.self(ctx, a)
		if err != nil {
			return s, err
		}
		sec, err := env.nodeCPU(ctx, a)
		if err != nil {
			return s, err
		}
		s.nodes = append(s.nodes, nodeCPU{name: n.ID, role: cpuRole(&n), sec: sec})
	}
	return s, nil
}

// cpuRole names what a node's CPU was spent on: its raft role in a single-group cluster;
// in a multi-group one, the data groups it leads ("leads 1,3"; "leads none": a follower
// of every group), since the leaders' work is where a node's CPU goes.
func cpuRole(n *api.Node) string {
	multi := false
	var leads []string
	for _, g := range n.Groups {
		multi = multi || g.ID != 1
		if g.ID != api.MetaGroupID && g.Role == api.RoleLeader {
			leads = append(leads, strconv.FormatUint(g.ID, 10))
		}
	}
	switch {
	case !multi:
		return n.Role
	case len(leads) == 0:
		return "leads none"
	}
	return "leads " + strings.Join(leads, ",")
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// nodeCPU is a node's process_cpu_seconds_total.
func (env *benchEnv) nodeCPU(ctx context.Context, addr string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.scheme+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	if env.auth != "" {
		req.Header.Set("Authorization", env.auth)
	}
	resp, err := env.plain.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: GET /metrics: HTTP %d", addr, resp.StatusCode)
	}
	v, err := metricValue(resp.Body, "process_cpu_seconds_total")
	if err != nil {
		return 0, fmt.Errorf("%s: GET /metrics: %w", addr, err)
	}
	return v, nil
}

// metricValue finds an unlabelled sample of name in the Prometheus text format.
func metricValue(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New(name + " not found")
}

// cpuBetween is what each process spent from a to b for ok acknowledged deductions. A node
// is named by its role at a; one that restarted in between (its counter went down) is
// left out.
func cpuBetween(a, b cpuSample, ok uint64) *cpuJSON {
	window := b.at.Sub(a.at).Seconds()
	if window <= 0 || ok == 0 {
		return nil
	}
	out := &cpuJSON{WindowS: round3(window), HostCores: runtime.NumCPU()}
	add := func(name, role string, sec float64) {
		p := cpuProcJSON{Name: name, Role: role, CPUS: round3(sec), USPerOp: round3(sec / float64(ok) * 1e6),
			CoresUsed: math.Round(sec/window*100) / 100}
		out.Processes = append(out.Processes, p)
		out.USPerOp += sec / float64(ok) * 1e6
		out.CoresUsed += sec / window
	}
	// The leader first, then the others by name, then the client.
	nodes := slices.Clone(a.nodes)
	slices.SortFunc(nodes, func(x, y nodeCPU) int {
		if lx, ly := x.role == api.RoleLeader, y.role == api.RoleLeader; lx != ly {
			if lx {
				return -1
			}
			return 1
		}
		return strings.Compare(x.name, y.name)
	})
	for _, n := range nodes {
		i := slices.IndexFunc(b.nodes, func(m nodeCPU) bool { return m.name == n.name })
		if i >= 0 && b.nodes[i].sec >= n.sec {
			add(n.name, n.role, b.nodes[i].sec-n.sec)
		}
	}
	add("client", "client", b.client-a.client)
	out.USPerOp, out.CoresUsed = round3(out.USPerOp), math.Round(out.CoresUsed*100)/100
	return out
}

// describe is the human form: one line per process.
func (c *cpuJSON) describe(w io.Writer) {
	fmt.Fprintf(w, "  %-12s %s µs per deduction, %.2f of %d cores (this host) over %.1fs:", "cpu",
		strconv.FormatFloat(c.USPerOp, 'f', 1, 64), c.CoresUsed, c.HostCores, c.WindowS)
	for i, p := range c.Processes {
		sep := ";"
		if i == len(c.Processes)-1 {
			sep = ""
		}
		who := p.Role + " " + p.Name
		switch {
		case p.Name == p.Role:
			who = p.Name
		case strings.HasPrefix(p.Role, "leads "):
			who = p.Name + " (" + p.Role + ")"
		}
		fmt.Fprintf(w, " %s %s µs (%.2f cores)%s", who, strconv.FormatFloat(p.USPerOp, 'f', 1, 64), p.CoresUsed, sep)
	}
	fmt.Fprintln(w)
}
