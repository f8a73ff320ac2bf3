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
// also get SIGKILL if stockctl dies (Pdeathsig).
type stockdCluster struct {
	dir       string
	httpAddrs []string
	cmds      []*exec.Cmd
	done      []chan struct{}
	logs      []string
	log       io.Writer
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
	cl := &stockdCluster{dir: dir, log: log}
	for i := 0; i < 3; i++ {
		cl.httpAddrs = append(cl.httpAddrs, "127.0.0.1:"+strconv.Itoa(ports[i]))
	}
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
		if err := cl.start(path, id, append(args, extra...)); err != nil {
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

func (cl *stockdCluster) start(bin, id string, args []string) error {
	logPath := filepath.Join(cl.dir, id+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer lf.Close() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	cl.cmds = append(cl.cmds, cmd)
	cl.done = append(cl.done, done)
	cl.logs = append(cl.logs, logPath)
	return nil
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
		select {
		case <-cl.done[k]:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(10 * time.Second)
	var errs []error
	for k, cmd := range cl.cmds {
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
	if err := os.RemoveAll(cl.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
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
