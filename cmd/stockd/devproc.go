package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashstock/flashstock/internal/proc"
)

// devNode is one member of "stockd dev": its own stockd process, started with the command
// line an operator would use, so that killing it (kill -9 its PID) is the failure it
// would be in production while the others go on.
type devNode struct {
	proc.Member
	p   *proc.Process
	out *devOutput
}

// devCluster is the processes of "stockd dev", n1 first.
type devCluster struct {
	exe      string
	nodes    []*devNode
	term     *lockedWriter
	serving  atomic.Bool // set once the banner is out: a node's exit is news from then on
	stopping atomic.Bool // set before the parent stops the nodes: exits from then on are expected
	allGone  chan struct{}
}

// devPorts picks the HTTP and raft ports of n nodes: counting up from the given ports, or
// free ones where a port is 0 (each node must know n1's address before n1 has started, so
// the nodes cannot pick their own).
func devPorts(httpPort, raftPort, n int) (http, raft []int, err error) {
	free, err := proc.FreePorts(2 * n)
	if err != nil {
		return nil, nil, err
	}
	pick := func(first int, free []int) []int {
		if first == 0 {
			return free
		}
		ports := make([]int, n)
		for i := range ports {
			ports[i] = first + i
		}
		return ports
	}
	return pick(httpPort, free[:n]), pick(raftPort, free[n:]), nil
}

// newDevCluster lays out the nodes' command lines: n1 bootstraps, the others join through
// n1 (both ignored by a node that finds its state, as on a restart over --base-dir).
func newDevCluster(o *devOptions, exe, baseDir string, term *lockedWriter) (*devCluster, error) {
	httpPorts, raftPorts, err := devPorts(o.httpPort, o.raftPort, o.nodes)
	if err != nil {
		return nil, err
	}
	c := &devCluster{exe: exe, term: term, allGone: make(chan struct{})}
	members := proc.Members(baseDir, httpPorts, raftPorts)
	for _, m := range members {
		args := append(m.JoinArgs(members[0]), "--log-level", o.logLevel, "--shutdown-timeout", o.shutdownTimeout.String())
		if m.ID == members[0].ID && o.groups > 1 {
			args = append(args, "--groups", strconv.Itoa(o.groups))
		}
		if o.logJSON {
			args = append(args, "--log-json")
		}
		n := &devNode{Member: m}
		n.p = &proc.Process{Name: m.ID, Path: exe, Args: args, Env: devEnv(os.Environ()), SysProcAttr: devSysProcAttr(),
			OnExit: func(err error) { c.reaped(n, err) }}
		c.nodes = append(c.nodes, n)
	}
	return c, nil
}

// start starts every node's process; on failure the ones started are killed.
func (c *devCluster) start(baseDir string, prefixed bool) error {
	for _, n := range c.nodes {
		logFile, err := os.OpenFile(filepath.Join(baseDir, n.ID+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			c.kill()
			return fmt.Errorf("%s: log file: %w", n.ID, err)
		}
		prefix := ""
		if prefixed {
			prefix = n.ID + " | "
		}
		n.out = newDevOutput(logFile, c.term, prefix)
		n.p.Output = n.out
		if err := n.p.Start(); err != nil {
			logFile.Close()
			c.kill()
			return err
		}
	}
	go func() { // ends when the last node does; kill and Pdeathsig make sure they do
		for _, n := range c.nodes {
			<-n.p.Exited()
		}
		close(c.allGone)
	}()
	return nil
}

// procs is the nodes' processes.
func (c *devCluster) procs() []*proc.Process {
	ps := make([]*proc.Process, len(c.nodes))
	for i, n := range c.nodes {
		ps[i] = n.p
	}
	return ps
}

// devEnv is the parent's environment without STOCKD_* settings: a dev node's settings
// are the ones "stockd dev" gives it, whatever the shell exports.
func devEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "STOCKD_") {
			out = append(out, kv)
		}
	}
	return out
}

// reaped runs once n's process has ended: it closes the node's log and, while the cluster
// serves and the parent is not stopping it, says that the node is gone and how to bring
// it back. (During start-up, waitReady reports the exit.)
func (c *devCluster) reaped(n *devNode, err error) {
	n.out.close()
	if !c.serving.Load() || c.stopping.Load() {
		return
	}
	up := 0
	for _, m := range c.nodes {
		if m.p.Running() {
			up++
		}
	}
	how := "exited"
	if err != nil {
		how = err.Error() // "signal: killed", "exit status 3"
	}
	fmt.Fprintf(c.term, "\nstockd dev: %s (pid %d) %s; %d of %d nodes still run", n.ID, n.p.PID(), how, up, len(c.nodes))
	if 2*up > len(c.nodes) {
		fmt.Fprint(c.term, ", a majority: they elect a leader if they need one and go on serving"+
			" (their errors about reaching it, below, are expected).")
	} else {
		fmt.Fprint(c.term, ": no majority, so no leader until enough come back.")
	}
	fmt.Fprintf(c.term, " Its last lines are in %s.\nRestart it (in another terminal; Ctrl-C here does not stop it then):\n  %s %s\n\n",
		n.out.path(), c.exe, strings.Join(n.p.Args, " "))
}

// shutdown stops every running node gracefully (SIGTERM: a leader hands over first) and
// waits for them, bounded by ctx; past it they are killed. Their output while stopping
// goes to their log files only: nodes stopping together complain about each other
// (leadership transfer to a stopping peer, closed connections), which is expected here.
// The log of a node that fails to stop cleanly is shown.
func (c *devCluster) shutdown(ctx context.Context) error {
	c.stopping.Store(true)
	for _, n := range c.nodes {
		n.out.hide()
	}
	var running []*devNode
	for _, n := range c.nodes {
		if n.p.Running() { // one that died earlier was reported then
			running = append(running, n)
		}
	}
	killed, err := proc.Stop(ctx, c.procs()...)
	errs := []error{err}
	for _, n := range running {
		switch {
		case slices.Contains(killed, n.p):
			errs = append(errs, fmt.Errorf("%s (pid %d) did not stop in time and was killed", n.ID, n.p.PID()))
		case n.p.Err() != nil:
			errs = append(errs, fmt.Errorf("%s (pid %d) stopped with %v; its last lines:\n%s", n.ID, n.p.PID(), n.p.Err(), n.out.recent()))
		}
	}
	return errors.Join(errs...)
}

// kill stops every process at once and reaps it (start-up failed, or the parent is
// leaving without a graceful stop).
func (c *devCluster) kill() {
	c.stopping.Store(true)
	for _, n := range c.nodes {
		_ = n.p.Kill()
	}
}

// lockedWriter serializes whole writes of the parent and its nodes to one terminal.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// devOutput takes a node's log: all of it goes to the node's log file, whole lines go to
// the terminal while shown (the parent shows them between the banner and Ctrl-C), and the
// last lines are kept to explain a failure.
type devOutput struct {
	mu      sync.Mutex
	file    *os.File
	term    io.Writer
	prefix  string
	shown   bool
	partial []byte
	last    [][]byte // ring of the last recentLines lines
	next    int
}

const recentLines = 20

func newDevOutput(file *os.File, term io.Writer, prefix string) *devOutput {
	return &devOutput{file: file, term: term, prefix: prefix}
}

func (d *devOutput) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, _ = d.file.Write(p)
	d.partial = append(d.partial, p...)
	for {
		i := bytes.IndexByte(d.partial, '\n')
		if i < 0 {
			break
		}
		line := append([]byte(d.prefix), d.partial[:i+1]...)
		d.partial = d.partial[i+1:]
		if len(d.last) < recentLines {
			d.last = append(d.last, line)
		} else {
			d.last[d.next] = line
			d.next = (d.next + 1) % recentLines
		}
		if d.shown {
			_, _ = d.term.Write(line)
		}
	}
	return len(p), nil
}

// show sends the node's lines to the terminal from now on; hide stops that.
func (d *devOutput) show() { d.mu.Lock(); d.shown = true; d.mu.Unlock() }
func (d *devOutput) hide() { d.mu.Lock(); d.shown = false; d.mu.Unlock() }

// recent is the node's last lines, oldest first.
func (d *devOutput) recent() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	for i := range d.last {
		b.Write(d.last[(d.next+i)%len(d.last)])
	}
	return b.String()
}

func (d *devOutput) path() string { return d.file.Name() }

func (d *devOutput) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.file.Close()
}

// devWaitTimeout bounds the wait for the nodes after their graceful-stop bound, before the
// parent kills them.
const devWaitTimeout = 5 * time.Second
