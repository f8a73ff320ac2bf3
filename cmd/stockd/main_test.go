package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flashstock/flashstock/internal/proc"
)

// TestStockd_StartupErrorsExitNonZero runs the real binary with broken start-ups: each
// must exit non-zero at once with a message that names the cause.
func TestStockd_StartupErrorsExitNonZero(t *testing.T) {
	bin := buildStockd(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free := freePorts(t, 1)[0]
	dir := t.TempDir()

	tests := []struct {
		name string
		args []string
		env  []string
		code int
		want []string
	}{
		{name: "no flags", code: 2, want: []string{"--id is required", "--data-dir is required", "stockd --help"}},
		{name: "bad duration", args: []string{"--id", "n1", "--data-dir", dir, "--election-timeout", "1"}, code: 2, want: []string{"--election-timeout"}},
		{name: "bad env", args: []string{"--id", "n1", "--data-dir", dir}, env: []string{"STOCKD_MAX_INFLIGHT=many"}, code: 2, want: []string{"STOCKD_MAX_INFLIGHT"}},
		{
			name: "http port taken",
			args: []string{"--id", "n1", "--data-dir", filepath.Join(dir, "n1"), "--http-addr", taken.Addr().String(),
				"--raft-addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(free)), "--bootstrap"},
			code: 1, want: []string{"start-up failed", "address already in use"},
		},
		{
			// Nothing answers at --join: the joiner cannot tell what it joins, and says so.
			name: "join address silent",
			args: []string{"--id", "n2", "--data-dir", filepath.Join(dir, "n2"), "--http-addr", "127.0.0.1:0",
				"--raft-addr", "127.0.0.1:0", "--join", net.JoinHostPort("127.0.0.1", strconv.Itoa(free)), "--join-timeout", "500ms"},
			code: 1, want: []string{"start-up failed", "described the cluster"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = append(os.Environ(), tt.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tt.code {
				t.Errorf("exit code %d (%v), want %d; stderr:\n%s", code, err, tt.code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// TestStockd_SIGTERMWhileJoiningExitsAtOnce: a joiner waiting for its cluster to answer
// (--join-timeout not yet passed) leaves at SIGTERM, with 0, rather than after the wait.
func TestStockd_SIGTERMWhileJoiningExitsAtOnce(t *testing.T) {
	bin := buildStockd(t)
	free := freePorts(t, 1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--id", "n2", "--data-dir", filepath.Join(t.TempDir(), "n2"), "--http-addr", "127.0.0.1:0",
		"--raft-addr", "127.0.0.1:0", "--join", net.JoinHostPort("127.0.0.1", strconv.Itoa(free)), "--join-timeout", "10m")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // into the wait; a signal before it is handled the same way
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 0 || ctx.Err() != nil {
		t.Fatalf("exit code %d (%v) after SIGTERM while joining, want 0 at once; stderr:\n%s", code, err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped by a signal during start-up") {
		t.Errorf("stderr does not say why it stopped:\n%s", stderr.String())
	}
}

// TestStockd_SIGTERMHandsLeadershipOver: SIGTERM to the leader process makes it hand
// leadership to another member before it exits 0, so the cluster does not wait out an
// election timeout.
func TestStockd_SIGTERMHandsLeadershipOver(t *testing.T) {
	// Long timeouts, so a successor within them can only come from a handover.
	c := startProcCluster(t, 3, []string{"--heartbeat-timeout", "2s", "--election-timeout", "2s", "--leader-lease-timeout", "1s"})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	readyCtx, readyCancel := context.WithTimeout(ctx, 25*time.Second)
	leader, err := c.waitReady(readyCtx)
	readyCancel()
	if err != nil {
		t.Fatal(err)
	}
	p := c.byID(leader)
	pid := p.PID()
	sent := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := c.waitExit(p, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Errorf("%s exited %d after SIGTERM, want 0", leader, code)
	}
	exited := time.Since(sent)

	deadline, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	for {
		view, err := c.anyView(deadline)
		if err == nil && view.Leader != leader {
			t.Logf("%s exited %v after SIGTERM; %s leads %v after it", leader, exited.Round(time.Millisecond), view.Leader, time.Since(sent).Round(time.Millisecond))
			if d := time.Since(sent); d > 2*time.Second {
				t.Errorf("new leader only %v after SIGTERM: no handover, an election timeout passed", d)
			}
			break
		}
		if pause(deadline, 10*time.Millisecond) != nil {
			t.Fatal("no other member leads 10s after SIGTERM to the leader")
		}
	}
	if log := proc.Tail(p.LogPath, 50); !strings.Contains(log, "shut down cleanly") {
		t.Errorf("log of %s lacks the clean shutdown line:\n%s", leader, log)
	}
}

// TestStockd_RemovedNodeExitsWithItsOwnCode: a member removed from the cluster stops by
// itself and exits 3, the status the systemd unit's RestartPreventExitStatus names, not 1,
// which Restart=on-failure would restart in a loop.
func TestStockd_RemovedNodeExitsWithItsOwnCode(t *testing.T) {
	c := startProcCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader, err := c.waitReady(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := "n3"
	if leader == victim {
		victim = "n2"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, "http://"+c.byID(leader).httpAddr+"/v1/cluster/members/"+victim, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("remove %s: %s", victim, resp.Status)
	}
	p := c.byID(victim)
	code, err := c.waitExit(p, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != exitRemoved {
		t.Errorf("removed %s exited %d, want %d", victim, code, exitRemoved)
	}
	if log := proc.Tail(p.LogPath, 20); !strings.Contains(log, "removed from the cluster") {
		t.Errorf("log of %s does not say why it exited:\n%s", victim, log)
	}
}
