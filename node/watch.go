package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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

// watchPing is how often a watch stream that has nothing to say says so (a comment line),
// so that a client, or a node relaying the stream, can tell a quiet stream from a dead one.
const watchPing = 15 * time.Second

// handleWatch streams a SKU's state as server-sent events: the current state at once,
// then after each change. Served from local state by any replica of the SKU's group (each
// event carries the SKU's version, the log index of its last change); a node hosting none
// relays the stream from one that does (relayWatch).
func (n *Node) handleWatch(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	g, err := n.groupFor(sku)
	var nh *notHostedError
	if errors.As(err, &nh) {
		n.relayWatch(w, r, nh)
		return
	}
	if !n.hosted(w, r, nil, g, err) {
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
	ping := time.NewTicker(watchPing)
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

// relayWatch serves the watch of a SKU whose group this node hosts no replica of, for a
// client that picked this node (curl, a browser, any HTTP library: the Go client watches
// at the group's replicas itself). It opens the same watch at a replica of the group,
// the placement's preferred leader first, and copies the stream through as it comes, so
// the client gets what a replica serves locally: its events, its leader hint, its errors.
// The stream ends when either end does: the client going away (or this node stopping)
// cancels the request upstream, and the upstream stream ending (the replica stopping, the
// SKU gone, its node silent past three pings) ends this one; the client reconnects, as
// from a local watch. A relayed watch is marked forwarded (forwardTo), so a node that
// does not host the group after all answers not_leader rather than relaying it again.
func (n *Node) relayWatch(w http.ResponseWriter, r *http.Request, nh *notHostedError) {
	n.nameGroup(w, nh.id, nh.leader)
	if r.Header.Get(api.HeaderForwardedBy) != "" {
		n.writeError(w, nh.apiError())
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		n.writeError(w, api.Errorf(api.Internal, "streaming unsupported"))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel)
	defer stop()
	resp, err := n.openRelay(ctx, r, nh)
	if err != nil {
		n.writeError(w, err)
		return
	}
	defer resp.Body.Close()
	n.nameGroup(w, nh.id, resp.Header.Get(api.HeaderLeader)) // the replica knows the leader as of now
	if resp.StatusCode != http.StatusOK {
		copyAnswer(w, resp) // the replica's own answer (not_found, unauthorized, ...)
		return
	}
	for _, h := range []string{"Content-Type", "Cache-Control"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	// A replica that vanished without closing the connection (a partition, a host gone)
	// sends no pings: past three of them the stream is dead, not quiet.
	idle := time.AfterFunc(3*watchPing, cancel)
	defer idle.Stop()
	// An event is a few hundred bytes; the buffer lives as long as the stream, so not one
	// of copyAnswer's 32 KiB.
	buf := make([]byte, 4<<10)
	for {
		k, err := resp.Body.Read(buf)
		if k > 0 {
			idle.Reset(3 * watchPing)
			if _, werr := w.Write(buf[:k]); werr != nil {
				return
			}
			flusher.Flush()
		}
		if err != nil {
			return
		}
	}
}

// openRelay opens a relayed watch at the first replica of the group that answers it: one
// whose port refuses, that does not answer within twice the request timeout (a replica
// answers within one, waiting for the SKU included: awaitSKU), or that answers 503 (it
// does not host the group after all, or cannot serve it now) is passed over for the next.
// Its answer is returned, 200 or the replica's error; no_leader when none answered.
func (n *Node) openRelay(ctx context.Context, r *http.Request, nh *notHostedError) (*http.Response, error) {
	var failed []string
	for _, addr := range n.groupHosts(nh.id) {
		actx, acancel := context.WithCancel(ctx)
		slow := time.AfterFunc(2*n.cfg.RequestTimeout, acancel)
		resp, err := n.forwardTo(actx, r, nil, addr)
		if slow.Stop() && err == nil && resp.StatusCode != http.StatusServiceUnavailable {
			// The stream lives as long as actx, which ctx's end cancels.
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: acancel}
			return resp, nil
		}
		switch {
		case err != nil:
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // the URL is the watch's, and addr names the replica
			}
			failed = append(failed, fmt.Sprintf("%s: %v", addr, err))
		case resp.StatusCode == http.StatusServiceUnavailable:
			failed = append(failed, fmt.Sprintf("%s: %v", addr, readAPIError(resp)))
		default: // answered, but after the timer cancelled it
			resp.Body.Close()
			failed = append(failed, addr+": no answer in time")
		}
		acancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if len(failed) == 0 {
		failed = append(failed, "the placement names none")
	}
	return nil, &api.Error{Code: api.NoLeader, Leader: nh.leader,
		Message: fmt.Sprintf("no replica of group %d answered the watch (%s); this node hosts none: retry", nh.id, strings.Join(failed, "; "))}
}

// cancelOnClose is a response body that cancels its request's context once closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
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
