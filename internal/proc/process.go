package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// KillWait bounds the wait for a process to be reaped after SIGKILL: one that is still
// there later is stuck in the kernel, and waiting longer would not help.
const KillWait = 10 * time.Second

// Process is one stockd command line and, while it runs, its process. The command line is
// the same on every start (a restart reuses the data dir and the ports).
type Process struct {
	// Name names the process in errors and in its log's header lines ("n1").
	Name string
	// Path is the binary; Args its arguments.
	Path string
	Args []string
	// Env is the process's environment; nil means the parent's.
	Env []string
	// Output receives the process's stdout and stderr. When nil, LogPath is opened for
	// appending on each start, after a header line naming the command.
	Output  io.Writer
	LogPath string
	// SysProcAttr is passed to the process (its own process group, Pdeathsig).
	SysProcAttr *syscall.SysProcAttr
	// Prepare, when set, may change the command before each start (run it through a
	// launcher of the caller's, say).
	Prepare func(*exec.Cmd)
	// OnExit, when set, is called on the reaping goroutine once a run has ended, after
	// Exited is closed, with Wait's error.
	OnExit func(error)

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once the current run has been reaped; then err is Wait's
	err    error
	code   int
}

// Start runs the command line, with extra appended for this run only. The process is
// reaped by a goroutine of its own, which ends when the process does.
func (p *Process) Start(extra ...string) error {
	args := append(append([]string(nil), p.Args...), extra...)
	out, logFile := p.Output, (*os.File)(nil)
	if out == nil {
		f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("%s: log file: %w", p.Name, err)
		}
		fmt.Fprintf(f, "=== %s: stockd %s\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(args, " "))
		out, logFile = f, f
	}
	cmd := exec.Command(p.Path, args...)
	cmd.Env = p.Env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = p.SysProcAttr
	if p.Prepare != nil {
		p.Prepare(cmd)
	}
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.err = cmd, exited, nil
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		if logFile != nil {
			logFile.Close()
		}
		p.mu.Lock()
		p.err, p.code = err, cmd.ProcessState.ExitCode()
		p.mu.Unlock()
		close(exited)
		if p.OnExit != nil {
			p.OnExit(err)
		}
	}()
	return nil
}

// PID is the process id of the current (or last) run; 0 before the first start.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Exited is closed once the current run has been reaped; nil before the first start.
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Running reports whether the process has been started and not yet reaped (a stopped
// process, SIGSTOP, is running).
func (p *Process) Running() bool {
	exited := p.Exited()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// Err is Wait's error for the last run once it has exited ("signal: killed", "exit
// status 3"); nil for a clean exit.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// ExitCode is the last run's exit code once it has exited; -1 if a signal ended it.
func (p *Process) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

// Signal sends sig to the running process by its PID; false if it is not running.
func (p *Process) Signal(sig syscall.Signal) (bool, error) {
	if !p.Running() {
		return false, nil
	}
	pid := p.PID()
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return true, fmt.Errorf("kill -%d %s (pid %d): %w", sig, p.Name, pid, err)
	}
	return true, nil
}

// Wait waits until the current run has been reaped, bounded by ctx.
func (p *Process) Wait(ctx context.Context) error {
	exited := p.Exited()
	if exited == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s (pid %d) still running: %w", p.Name, p.PID(), ctx.Err())
	}
}

// Kill sends SIGKILL (which ends a stopped process too) and waits up to KillWait for the
// process to be reaped. Killing a process that is not running does nothing.
func (p *Process) Kill() error {
	if sent, err := p.Signal(syscall.SIGKILL); !sent || err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), KillWait)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		return fmt.Errorf("%s (pid %d) not reaped %v after SIGKILL", p.Name, p.PID(), KillWait)
	}
	return nil
}

// Stop stops procs together, the way an operator would: SIGTERM to each that runs (a
// leader hands leadership over first), then, once ctx ends, SIGKILL to each still there.
// It returns the processes that had to be killed, and an error for any that could not be.
func Stop(ctx context.Context, procs ...*Process) (killed []*Process, err error) {
	var running []*Process
	for _, p := range procs {
		if sent, serr := p.Signal(syscall.SIGTERM); sent {
			running = append(running, p)
			err = errors.Join(err, serr)
		}
	}
	for _, p := range running {
		if p.Wait(ctx) == nil {
			continue
		}
		killed = append(killed, p)
		err = errors.Join(err, p.Kill())
	}
	return killed, err
}

// Build compiles the stockd package pkg (an import path, or "." for the caller's own
// directory) into dir, passing flags to go build (e.g. "-tags", "faults", "-race"), and
// returns the binary's path.
func Build(ctx context.Context, dir, pkg string, flags ...string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build stockd: %w", err)
	}
	bin := filepath.Join(dir, "stockd")
	args := append([]string{"build", "-o", bin}, flags...)
	out, err := exec.CommandContext(ctx, goBin, append(args, pkg)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build stockd: %v\n%s", err, out)
	}
	return bin, nil
}

// Sleep waits d or until ctx ends, whichever is first; it returns ctx's error in the
// second case. The callers poll processes and their clusters with it.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
