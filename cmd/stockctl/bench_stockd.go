package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flashstock/flashstock/internal/proc"
)

// stockdStopWait is how long stop waits after SIGTERM before it SIGKILLs a node.
const stockdStopWait = 10 * time.Second

// stockdCluster is a fresh 3-node cluster on loopback started by internal/proc as
// DESIGN.md's "Node start-up" says: n1 --bootstrap, n2 and n3 --join n1, free ports, data
// under one temp dir. stop sends SIGTERM, SIGKILL to a node still there 10s later (by
// PID), and deletes the dir. The nodes also get SIGKILL if stockctl dies (Pdeathsig).
// Killing and restarting a node (procs[i].Kill, procs[i].Start) serve --failover.
type stockdCluster struct {
	dir       string
	httpAddrs []string
	procs     []*proc.Process // each node's command line, the same on every start
	log       io.Writer
	keepLogs  string // copy the node logs here on stop ("" : don't)
}

func startCluster(ctx context.Context, bin string, extra []string, groups int, wait time.Duration, log io.Writer) (*stockdCluster, error) {
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
	ports, err := proc.FreePorts(6)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cl := &stockdCluster{dir: dir, log: log}
	members := proc.Members(dir, ports[:3], ports[3:])
	for i, m := range members {
		args := m.JoinArgs(members[0])
		if i == 0 && groups > 1 {
			args = append(args, "--groups", strconv.Itoa(groups)) // the bootstrapping node's alone
		}
		cl.httpAddrs = append(cl.httpAddrs, m.HTTPAddr)
		cl.procs = append(cl.procs, &proc.Process{Name: m.ID, Path: path, Args: append(args, extra...),
			LogPath: filepath.Join(dir, m.ID+".log"), SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}})
	}
	fail := func(err error) (*stockdCluster, error) {
		tails := cl.logTails(10)
		cl.stop()
		return nil, fmt.Errorf("stockd cluster: %w\n%s", err, tails)
	}
	for _, p := range cl.procs {
		if err := p.Start(); err != nil {
			return fail(err)
		}
	}
	fmt.Fprintf(log, "stockctl bench: started stockd n1..n3 at %s (data in %s)\n", strings.Join(cl.httpAddrs, ","), dir)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	if _, err := proc.WaitReady(wctx, hc, cl.httpAddrs, cl.procs...); err != nil {
		return fail(fmt.Errorf("not 3 nodes with a leader within --stockd-wait %v: %w", wait, err))
	}
	return cl, nil
}

// stop ends every node: SIGTERM, then SIGKILL 10s later, by PID; then deletes the data.
func (cl *stockdCluster) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), stockdStopWait)
	defer cancel()
	killed, err := proc.Stop(ctx, cl.procs...)
	for _, p := range killed {
		fmt.Fprintf(cl.log, "stockctl bench: stockd %s (pid %d) ignored SIGTERM for %v: SIGKILL\n", p.Name, p.PID(), stockdStopWait)
	}
	errs := []error{err}
	if cl.keepLogs != "" {
		if err := proc.CopyLogs(cl.keepLogs, cl.procs...); err != nil {
			errs = append(errs, fmt.Errorf("--stockd-logs: %w", err))
		}
	}
	if err := os.RemoveAll(cl.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (cl *stockdCluster) logTails(n int) string {
	var b strings.Builder
	for k, p := range cl.procs {
		fmt.Fprintf(&b, "--- %s (%s) last lines:\n%s\n", p.Name, cl.httpAddrs[k], proc.Tail(p.LogPath, n))
	}
	return b.String()
}
