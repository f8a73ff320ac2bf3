package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// devNode is one member of "stockd dev": its own stockd process, started with the command
// line an operator would use, so that killing it (kill -9 its PID) is the failure it
// would be in production while the others go on.
type devNode struct {
	id, httpAddr, raftAddr, dataDir string
	args                            []string
	out                             *devOutput

	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been reaped; then err is Wait's
	err    error
}

// pid is the node's process id.
func (n *devNode) pid() int { return n.cmd.Process.Pid }

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
	pick := func(first int) ([]int, error) {
		ports := make([]int, n)
		var lns []net.Listener
		defer func() {
			for _, ln := range lns {
				ln.Close()
			}
		}()
		for i := range ports {
			if first != 0 {
				ports[i] = first + i
				continue
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, fmt.Errorf("pick a free port: %w", err)
			}
			lns = append(lns, ln)
			ports[i] = ln.Addr().(*net.TCPAddr).Port
		}
		return ports, nil
	}
	if http, err = pick(httpPort); err != nil {
		return nil, nil, err
	}
	raft, err = pick(raftPort)
	return http, raft, err
}

// newDevCluster lays out the nodes' command lines: n1 bootstraps, the others join through
// n1 (both ignored by a node that finds its state, as on a restart over --base-dir).
func newDevCluster(o *devOptions, exe, baseDir string, term *lockedWriter) (*devCluster, error) {
	httpPorts, raftPorts, err := devPorts(o.httpPort, o.raftPort, o.nodes)
	if err != nil {
		return nil, err
	}
	c := &devCluster{exe: exe, term: term, allGone: make(chan struct{})}
	for i := range o.nodes {
		n := &devNode{id: "n" + strconv.Itoa(i+1)}
		n.dataDir = filepath.Join(baseDir, n.id)
		n.httpAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPorts[i]))
		n.raftAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(raftPorts[i]))
		n.args = []string{"--id", n.id, "--data-dir", n.dataDir, "--http-addr", n.httpAddr, "--raft-addr", n.raftAddr,
			"--log-level", o.logLevel, "--shutdown-timeout", o.shutdownTimeout.String()}
		if o.logJSON {
			n.args = append(n.args, "--log-json")
		}
		if i == 0 {
			n.args = append(n.args, "--bootstrap")
		} else {
			n.args = append(n.args, "--join", c.nodes[0].httpAddr)
		}
		c.nodes = append(c.nodes, n)
	}
	return c, nil
}

// start starts every node's process; on failure the ones started are killed.
func (c *devCluster) start(baseDir string, prefixed bool) error {
	for _, n := range c.nodes {
		logFile, err := os.OpenFile(filepath.Join(baseDir, n.id+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			c.kill()
			return fmt.Errorf("%s: log file: %w", n.id, err)
		}
		prefix := ""
		if prefixed {
			prefix = n.id + " | "
		}
		n.out = newDevOutput(logFile, c.term, prefix)
		n.cmd = exec.Command(c.exe, n.args...)
		n.cmd.Env = devEnv(os.Environ())
		n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
		n.cmd.SysProcAttr = devSysProcAttr()
		if err := n.cmd.Start(); err != nil {
			logFile.Close()
			c.kill()
			return fmt.Errorf("start %s: %w", n.id, err)
		}
		n.exited = make(chan struct{})
		go c.reap(n) // ends when the process does; kill and Pdeathsig make sure it does
	}
	go func() {
		for _, n := range c.nodes {
			<-n.exited
		}
		close(c.allGone)
	}()
	return nil
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

// reap waits for n's process and, while the cluster serves and the parent is not stopping
// it, says that the node is gone and how to bring it back. (During start-up, waitReady
// reports the exit.)
func (c *devCluster) reap(n *devNode) {
	n.err = n.cmd.Wait()
	n.out.close()
	close(n.exited)
	if !c.serving.Load() || c.stopping.Load() {
		return
	}
	up := 0
	for _, m := range c.nodes {
		select {
		case <-m.exited:
		default:
			up++
		}
	}
	how := "exited"
	if n.err != nil {
		how = n.err.Error() // "signal: killed", "exit status 3"
	}
	fmt.Fprintf(c.term, "\nstockd dev: %s (pid %d) %s; %d of %d nodes still run", n.id, n.pid(), how, up, len(c.nodes))
	if 2*up > len(c.nodes) {
		fmt.Fprint(c.term, ", a majority: they elect a leader if they need one and go on serving"+
			" (their errors about reaching it, below, are expected).")
	} else {
		fmt.Fprint(c.term, ": no majority, so no leader until enough come back.")
	}
	fmt.Fprintf(c.term, " Its last lines are in %s.\nRestart it (in another terminal; Ctrl-C here does not stop it then):\n  %s %s\n\n",
		n.out.path(), c.exe, strings.Join(n.args, " "))
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
		select {
		case <-n.exited: // it died earlier, and that was reported then
		default:
			running = append(running, n)
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	var errs []error
	for _, n := range running {
		select {
		case <-n.exited:
		case <-ctx.Done():
			_ = n.cmd.Process.Kill()
			<-n.exited
			errs = append(errs, fmt.Errorf("%s (pid %d) did not stop in time and was killed", n.id, n.pid()))
			continue
		}
		if n.err != nil {
			errs = append(errs, fmt.Errorf("%s (pid %d) stopped with %v; its last lines:\n%s", n.id, n.pid(), n.err, n.out.recent()))
		}
	}
	return errors.Join(errs...)
}

// kill stops every process at once and reaps it (start-up failed, or the parent is
// leaving without a graceful stop).
func (c *devCluster) kill() {
	c.stopping.Store(true)
	for _, n := range c.nodes {
		if n.cmd == nil || n.exited == nil {
			continue
		}
		_ = n.cmd.Process.Kill()
		<-n.exited
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
