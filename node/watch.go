package node

import (
	"sync"

	"github.com/flashstock/flashstock/fsm"
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
func (n *Node) publish(_ []fsm.Entry, results []fsm.Result) {
	h := n.watch
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
