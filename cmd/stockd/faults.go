//go:build faults

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/node"
)

// faultOptions are the fault-injection settings of the faults build (go build -tags
// faults): the chaos suite's clock nemesis. The normal build has none of them.
type faultOptions struct {
	clockOffset time.Duration
	addr        string
}

var faultFlagNames = []string{"fault-clock-offset", "fault-addr"}

func addFaultFlags(fs *flag.FlagSet, f *faultOptions) {
	fs.DurationVar(&f.clockOffset, "fault-clock-offset", 0, "faults build: shift every wall-clock reading of this node by `duration` (e.g. 2h, -90m), as a wrong NTP setting would")
	fs.StringVar(&f.addr, "fault-addr", "", "faults build: `host:port` of a control listener; PUT /clock-offset with a duration in the body changes the offset while the node runs")
}

// startFaults installs the faults into cfg and starts the control listener, if any; stop
// closes it.
func startFaults(cfg *node.Config, f *faultOptions, logger hclog.Logger) (stop func(), err error) {
	var offset atomic.Int64
	offset.Store(int64(f.clockOffset))
	// Only the wall reading moves: the monotonic clock, which raft's timers and every
	// duration use, is not what NTP steps.
	cfg.WallClock = func() time.Time { return time.Now().Round(0).Add(time.Duration(offset.Load())) }
	if f.clockOffset != 0 {
		logger.Warn("faults build: wall clock shifted", "offset", f.clockOffset)
	}
	if f.addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, fmt.Errorf("--fault-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /clock-offset", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64))
		d, err := time.ParseDuration(strings.TrimSpace(string(body)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		offset.Store(int64(d))
		logger.Warn("faults build: wall clock offset changed", "offset", d)
		fmt.Fprintln(w, d)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("fault listener stopped", "error", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
