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

// publish runs on raft's FSM goroutine after each batch.
func (n *Node) publish(_ []fsm.Entry, results []fsm.Result) {
	h := n.watch
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 {
		return
	}
	var visit func(r fsm.Result)
	visit = func(r fsm.Result) {
		if !r.OK() || r.Duplicate {
			return
		}
		if r.SKU.SKU != "" {
			h.notify(r.SKU.SKU)
		}
		for _, l := range r.Order.Lines {
			h.notify(l.SKU)
		}
		for _, sub := range r.Batch {
			visit(sub)
		}
	}
	for _, r := range results {
		visit(r)
	}
}
