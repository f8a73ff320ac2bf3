package main

import (
	"context"
	"sync"
	"time"

	"github.com/flashstock/flashstock/api"
)

// raftWatchEvery is how often the watch asks each node how long since it heard from the
// leader. A follower computes the answer when it handles the request, so a late answer
// still reports the silence at that moment; what sampling can miss is the peak between
// two samples, at most this much.
const raftWatchEvery = 10 * time.Millisecond

// raftJSON is what the watch saw during a run: whether the leader changed, and how long
// followers went without hearing from the leader. A follower whose silence reaches
// --heartbeat-timeout starts an election, so the longest silence under load is the margin
// the timeout must keep.
type raftJSON struct {
	TermBefore uint64 `json:"term_before"`
	TermAfter  uint64 `json:"term_after"`
	// Samples of last_contact_ms from every follower (GET /v1/cluster/self), every 10ms.
	Samples          uint64  `json:"silence_samples"`
	SilenceP99MS     float64 `json:"silence_p99_ms"`
	SilenceMaxMS     float64 `json:"silence_max_ms"`
	SilenceMaxAt     string  `json:"silence_max_at,omitempty"` // UTC, to find it in the node logs
	SilenceMaxNode   string  `json:"silence_max_node,omitempty"`
	LeaderChanges    uint64  `json:"leader_changes"`
	UnansweredProbes uint64  `json:"unanswered_probes"`
}

// raftWatch samples the followers' silence until stop is called.
type raftWatch struct {
	env     *benchEnv
	hist    *histogram
	mu      sync.Mutex
	res     raftJSON
	maxSeen time.Duration
	cancel  context.CancelFunc
	done    chan struct{}
}

// watchRaft starts a watch over env's nodes; stop returns what it saw.
func (env *benchEnv) watchRaft(ctx context.Context) *raftWatch {
	w := &raftWatch{env: env, hist: newHistogram(7), done: make(chan struct{})}
	w.res.TermBefore, _ = env.term(ctx)
	ctx, w.cancel = context.WithCancel(ctx)
	go w.run(ctx)
	return w
}

func (w *raftWatch) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(raftWatchEvery)
	defer t.Stop()
	leader := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, a := range w.env.addrs {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			n, err := w.env.self(pctx, a)
			cancel()
			w.mu.Lock()
			switch {
			case err != nil:
				if ctx.Err() == nil {
					w.res.UnansweredProbes++
				}
			case n.Role == api.RoleLeader:
				if leader != "" && leader != a {
					w.res.LeaderChanges++
				}
				leader = a
			case n.LastContactMS >= 0:
				d := time.Duration(n.LastContactMS) * time.Millisecond
				w.hist.Record(d)
				if d > w.maxSeen {
					w.maxSeen = d
					w.res.SilenceMaxAt = time.Now().UTC().Format("15:04:05.000")
					w.res.SilenceMaxNode = n.ID
				}
			}
			w.mu.Unlock()
		}
	}
}

// stop ends the watch and returns its report.
func (w *raftWatch) stop(ctx context.Context) *raftJSON {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.res
	r.TermAfter, _ = w.env.term(ctx)
	r.Samples = w.hist.Count()
	r.SilenceP99MS = round3(ms(w.hist.Quantile(0.99)))
	r.SilenceMaxMS = round3(ms(w.hist.Max()))
	return &r
}
