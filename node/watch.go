package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
	"github.com/hashicorp/raft"
)

// hub tells watchers of a SKU that it changed. A notification carries no data: the watcher
// reads the SKU's current state, so a slow watcher skips intermediate states instead of
// holding up apply (publish never blocks).
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{subs: map[string]map[chan struct{}]struct{}{}} }

func (h *hub) subscribe(sku string) (ch chan struct{}, cancel func()) {
	ch = make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[sku] == nil {
		h.subs[sku] = map[chan struct{}]struct{}{}
	}
	h.subs[sku][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[sku], ch)
		if len(h.subs[sku]) == 0 {
			delete(h.subs, sku)
		}
		h.mu.Unlock()
	}
}

func (h *hub) notify(sku string) {
	for ch := range h.subs[sku] {
		select {
		case ch <- struct{}{}:
		default: // a change is already pending for this watcher
		}
	}
}

// notifyAll tells every watcher to look again.
func (h *hub) notifyAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sku := range h.subs {
		h.notify(sku)
	}
}

// publish runs on raft's FSM goroutine after each batch. The fsm names every SKU an entry
// changed (those of expired holds too), so nothing here knows which command moves which
// SKU.
func (g *Group) publish(_ []fsm.Entry, results []fsm.Result) {
	g.watch.changed(results)
}

// changed tells the watchers of every SKU the results name that it changed.
func (h *hub) changed(results []fsm.Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 {
		return
	}
	for _, r := range results {
		for _, sku := range r.Changed {
			h.notify(sku)
		}
	}
}

// handleWatch streams a SKU's state as server-sent events: the current state at once,
// then after each change. Served from local state by any node (each event carries the
// SKU's version, the log index of its last change).
func (n *Node) handleWatch(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	g, err := n.groupFor(sku)
	if !n.hosted(w, nil, nil, g, err) {
		return
	}
	if err := g.awaitSKU(r.Context(), sku); err != nil {
		n.writeError(w, err)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		n.writeError(w, api.Errorf(api.Internal, "streaming unsupported"))
		return
	}
	changed, cancel := g.subscribe(sku)
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	var last uint64
	send := func() bool {
		s, err := g.state().GetSKU(sku)
		if err != nil {
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", mustJSON(api.ErrorBody{Error: n.apiError(err)}))
			flusher.Flush()
			return false
		}
		if s.Version != last || last == 0 {
			last = s.Version
			fmt.Fprintf(w, "id: %d\nevent: sku\ndata: %s\n\n", s.Version, mustJSON(skuOut(s, false)))
			flusher.Flush()
		}
		return true
	}
	if !send() {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-n.ctx.Done():
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			flusher.Flush()
		case <-changed:
			if !send() {
				return
			}
		}
	}
}

// awaitSKU makes sure this node's state has the SKU before a watch starts. A follower may
// not yet have applied a SKU that was just created and acknowledged: it asks the leader
// (a strong read) and, if the SKU exists there, waits to apply the entry that made it.
func (g *Group) awaitSKU(ctx context.Context, sku string) error {
	_, err := g.fsm.GetSKU(sku)
	if err == nil || g.raft.State() == raft.Leader {
		return err
	}
	leader := g.leaderHTTP()
	if leader == "" {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
	defer cancel()
	var s api.SKU
	req, rerr := g.srv.peerRequest(ctx, http.MethodGet, leader, "/v1/skus/"+url.PathEscape(sku), nil)
	if rerr != nil {
		return rerr
	}
	req.Header.Set(api.HeaderForwardedBy, g.cfg.ID)
	resp, rerr := g.srv.fwd.Do(req)
	if rerr != nil {
		return err
	}
	if apiErr := readJSON(resp, &s); apiErr != nil {
		return apiErr
	}
	if werr := g.fsm.WaitApplied(ctx, s.Version); werr != nil {
		return werr
	}
	_, err = g.fsm.GetSKU(sku)
	return err
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
