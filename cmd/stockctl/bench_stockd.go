package main

import (
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
	"syscall"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// stockdCluster is a fresh 3-node cluster on loopback started as DESIGN.md's "Node start-up"
// says: n1 --bootstrap, n2 and n3 --join n1, free ports, data under one temp dir. stop sends
// SIGTERM, SIGKILL to a node still there 10s later (by PID), and deletes the dir. The nodes
// also get SIGKILL if stockctl dies (Pdeathsig). kill and restart serve --failover.
type stockdCluster struct {
	dir       string
	bin       string
	httpAddrs []string
	args      [][]string // each node's command line, the same on every start
	cmds      []*exec.Cmd
	done      []chan struct{}
	logs      []string
	log       io.Writer
	keepLogs  string // copy the node logs here on stop ("" : don't)
}

func startCluster(ctx context.Context, bin string, extra []string, wait time.Duration, log io.Writer) (*stockdCluster, error) {
	path, err := exec.LookPath(bin)
	if err == nil {
		path, err = filepath.Abs(path)
	}
	if err != nil {
		return nil, fmt.Errorf("--stockd: %w", err)
	}
	dir, err := os.MkdirTemp("", "stockctl-bench-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(6)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cl := &stockdCluster{dir: dir, bin: path, log: log}
	for i := 0; i < 3; i++ {
		cl.httpAddrs = append(cl.httpAddrs, "127.0.0.1:"+strconv.Itoa(ports[i]))
		cl.logs = append(cl.logs, filepath.Join(dir, "n"+strconv.Itoa(i+1)+".log"))
	}
	cl.cmds, cl.done = make([]*exec.Cmd, 3), make([]chan struct{}, 3)
	fail := func(err error) (*stockdCluster, error) {
		tails := cl.logTails(10)
		cl.stop()
		return nil, fmt.Errorf("stockd cluster: %w\n%s", err, tails)
	}
	for i := 0; i < 3; i++ {
		id := "n" + strconv.Itoa(i+1)
		args := []string{"--id", id, "--data-dir", filepath.Join(dir, id),
			"--http-addr", cl.httpAddrs[i], "--raft-addr", "127.0.0.1:" + strconv.Itoa(ports[3+i])}
		if i == 0 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", cl.httpAddrs[0])
		}
		cl.args = append(cl.args, append(args, extra...))
		if err := cl.start(i); err != nil {
			return fail(err)
		}
	}
	fmt.Fprintf(log, "stockctl bench: started stockd n1..n3 at %s (data in %s)\n", strings.Join(cl.httpAddrs, ","), dir)
	if err := cl.waitReady(ctx, wait); err != nil {
		return fail(err)
	}
	return cl, nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ { // all held open at once, so they differ
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// start runs node i's command line, appending to its log (a restart keeps the first run's
// lines).
func (cl *stockdCluster) start(i int) error {
	lf, err := os.OpenFile(cl.logs[i], os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close() // the child has its own copy
	fmt.Fprintf(lf, "=== %s: stockd %s\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(cl.args[i], " "))
	cmd := exec.Command(cl.bin, cl.args[i]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start n%d: %w", i+1, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	cl.cmds[i], cl.done[i] = cmd, done
	return nil
}

// kill SIGKILLs node i (by PID) and waits until it is reaped.
func (cl *stockdCluster) kill(i int) error {
	if err := cl.cmds[i].Process.Kill(); err != nil {
		return fmt.Errorf("kill n%d: %w", i+1, err)
	}
	select {
	case <-cl.done[i]:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("n%d (pid %d) not reaped 10s after SIGKILL", i+1, cl.cmds[i].Process.Pid)
	}
}

// waitReady polls the cluster view until 3 members answer and one leads.
func (cl *stockdCluster) waitReady(ctx context.Context, wait time.Duration) error {
	c, err := client.New(client.Config{Endpoints: cl.httpAddrs, MaxAttempts: 1, HealthInterval: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var last error
	for {
		for k, d := range cl.done {
			select {
			case <-d:
				return fmt.Errorf("n%d exited during start-up: %v", k+1, cl.cmds[k].ProcessState)
			default:
			}
		}
		st, err := c.ClusterStatus(ctx)
		if err == nil {
			err = clusterReady(st, 3)
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("not 3 nodes with a leader within --stockd-wait %v: %v", wait, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// clusterReady says why a cluster view is not yet want voters that all know their role
// under one leader.
func clusterReady(st api.Cluster, want int) error {
	if st.Leader == "" {
		return errors.New("no leader yet")
	}
	up := 0
	for _, n := range st.Nodes {
		if n.Suffrage == api.Voter && (n.Role == api.RoleLeader || n.Role == api.RoleFollower) {
			up++
		}
	}
	if up < want {
		return fmt.Errorf("%d of %d voters up", up, want)
	}
	return nil
}

// stop ends every node: SIGTERM, then SIGKILL 10s later, by PID; then deletes the data.
func (cl *stockdCluster) stop() error {
	for k, cmd := range cl.cmds {
		if cmd == nil { // start-up failed before this node
			continue
		}
		select {
		case <-cl.done[k]:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(10 * time.Second)
	var errs []error
	for k, cmd := range cl.cmds {
		if cmd == nil {
			continue
		}
		select {
		case <-cl.done[k]:
			continue
		case <-deadline:
		}
		fmt.Fprintf(cl.log, "stockctl bench: stockd n%d (pid %d) ignored SIGTERM for 10s: SIGKILL\n", k+1, cmd.Process.Pid)
		cmd.Process.Kill()
		select {
		case <-cl.done[k]:
		case <-time.After(5 * time.Second):
			errs = append(errs, fmt.Errorf("stockd n%d (pid %d) still there after SIGKILL", k+1, cmd.Process.Pid))
		}
	}
	if cl.keepLogs != "" {
		errs = append(errs, cl.copyLogs(cl.keepLogs))
	}
	if err := os.RemoveAll(cl.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// copyLogs copies the node logs into dir (created if missing).
func (cl *stockdCluster) copyLogs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--stockd-logs: %w", err)
	}
	for _, p := range cl.logs {
		data, err := os.ReadFile(p)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(p)), data, 0o644)
		}
		if err != nil {
			return fmt.Errorf("--stockd-logs: %w", err)
		}
	}
	return nil
}

func (cl *stockdCluster) logTails(n int) string {
	var b strings.Builder
	for k, p := range cl.logs {
		data, _ := os.ReadFile(p)
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "--- n%d (%s) last lines:\n%s\n", k+1, cl.httpAddrs[k], strings.Join(lines, "\n"))
	}
	return b.String()
}
