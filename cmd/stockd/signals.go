package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// notifySignals relays SIGINT and SIGTERM for the life of the process. Call it before
// starting anything, so a signal during start-up is not lost.
func notifySignals() <-chan os.Signal {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	return sigs
}

// awaitShutdown blocks until a signal arrives or done closes, and returns the exit code.
//
// The first signal starts shutdown, bounded by timeout; a second signal returns at once
// without waiting for it. done closing before any signal means the service stopped on its
// own (removed from the cluster, fatal storage error): onStopped says with which exit code.
func awaitShutdown(logger hclog.Logger, sigs <-chan os.Signal, done <-chan struct{}, onStopped func() int, shutdown func(context.Context) error, timeout time.Duration) int {
	select {
	case <-done:
		return onStopped()
	case sig := <-sigs:
		logger.Info("shutting down gracefully; send the signal again to exit at once", "signal", sig.String(), "timeout", timeout)
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- shutdown(ctx) }()

	select {
	case err := <-stopped:
		if err != nil {
			logger.Error("shutdown finished with errors", "error", err, "took", time.Since(start).Round(time.Millisecond))
			return 1
		}
		logger.Info("shut down cleanly", "took", time.Since(start).Round(time.Millisecond))
		return 0
	case sig := <-sigs:
		logger.Warn("second signal: exiting without waiting for shutdown", "signal", sig.String())
		return 1
	}
}

// untilSignal runs fn with a context that ends after timeout or at the first signal, and
// returns that signal (nil if none came) with fn's error. A signal is consumed only if it
// ends fn's context.
func untilSignal(sigs <-chan os.Signal, timeout time.Duration, fn func(context.Context) error) (os.Signal, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := make(chan os.Signal, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case sig := <-sigs:
			got <- sig
			cancel()
		case <-stop:
		}
	})
	err := fn(ctx)
	close(stop)
	wg.Wait()
	select {
	case sig := <-got:
		return sig, err
	default:
		return nil, err
	}
}
