package main

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestAwaitShutdown(t *testing.T) {
	logger := hclog.NewNullLogger()

	t.Run("first signal shuts down gracefully", func(t *testing.T) {
		sigs := make(chan os.Signal, 2)
		sigs <- syscall.SIGTERM
		var gotDeadline bool
		code := awaitShutdown(logger, sigs, nil, nil, func(ctx context.Context) error {
			_, gotDeadline = ctx.Deadline()
			return nil
		}, time.Second)
		if code != 0 || !gotDeadline {
			t.Errorf("code %d, bounded context %v; want 0, true", code, gotDeadline)
		}
	})

	t.Run("failed shutdown exits non-zero", func(t *testing.T) {
		sigs := make(chan os.Signal, 2)
		sigs <- syscall.SIGINT
		code := awaitShutdown(logger, sigs, nil, nil, func(context.Context) error { return errors.New("disk gone") }, time.Second)
		if code != 1 {
			t.Errorf("code %d, want 1", code)
		}
	})

	t.Run("second signal exits at once", func(t *testing.T) {
		sigs := make(chan os.Signal, 2)
		sigs <- syscall.SIGTERM
		started := make(chan struct{})
		release := make(chan struct{})
		defer close(release)
		go func() {
			<-started
			sigs <- syscall.SIGINT
		}()
		code := awaitShutdown(logger, sigs, nil, nil, func(ctx context.Context) error {
			close(started)
			<-release // a shutdown that hangs
			return nil
		}, time.Hour)
		if code != 1 {
			t.Errorf("code %d, want 1", code)
		}
	})

	t.Run("stopping on its own is a failure, a removal its own code", func(t *testing.T) {
		done := make(chan struct{})
		close(done)
		for _, removed := range []bool{false, true} {
			code := awaitShutdown(logger, make(chan os.Signal), done, func() int { return stoppedCode(logger, removed) },
				func(context.Context) error {
					t.Error("shutdown called")
					return nil
				}, time.Second)
			if want := map[bool]int{false: exitFailure, true: exitRemoved}[removed]; code != want {
				t.Errorf("removed %v: code %d, want %d", removed, code, want)
			}
		}
	})
}

func TestUntilSignal(t *testing.T) {
	t.Run("a signal ends the wait", func(t *testing.T) {
		sigs := make(chan os.Signal, 1)
		sigs <- syscall.SIGINT
		sig, err := untilSignal(sigs, time.Hour, func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		if sig != syscall.SIGINT || !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, %v; want SIGINT, context.Canceled", sig, err)
		}
	})
	t.Run("without a signal nothing is consumed", func(t *testing.T) {
		sigs := make(chan os.Signal, 1)
		sig, err := untilSignal(sigs, time.Hour, func(context.Context) error { return nil })
		if sig != nil || err != nil {
			t.Errorf("got %v, %v; want nil, nil", sig, err)
		}
		sigs <- syscall.SIGTERM
		select {
		case <-sigs: // still there for awaitShutdown
		default:
			t.Error("a signal sent after the wait was consumed")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		sig, err := untilSignal(make(chan os.Signal), time.Millisecond, func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		if sig != nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, %v; want nil, deadline exceeded", sig, err)
		}
	})
}
