package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"time"

	"github.com/flashstock/flashstock/api"
)

// WatchEvent is one state of a watched SKU, or the error that ended the watch.
type WatchEvent struct {
	SKU api.SKU
	// Err, set on the last event only, says why the watch ended on its own: the SKU does
	// not exist (ErrNotFound), bad credentials, ... Lost connections are not errors: the
	// watch reconnects.
	Err error
}

// watchIdleTimeout is how long a watch stream may stay silent before the client assumes
// the connection is dead and reconnects; nodes send a ping every 15s.
const watchIdleTimeout = 45 * time.Second

// Watch streams a SKU's states: the current one at once, then one after each change (a
// slow reader skips intermediate states, never the latest). It is served by any healthy
// node, chosen by the Balancer, and reconnects with backoff when the node goes away,
// never delivering a state older than one already delivered. The channel closes when ctx
// ends, the client closes, or after an event with Err.
func (c *Client) Watch(ctx context.Context, sku string) <-chan WatchEvent {
	ch := make(chan WatchEvent, 1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel) // Close ends the watch
	if !c.spawn(func() {
		defer cancel()
		defer stop()
		defer close(ch)
		c.watchLoop(ctx, sku, ch)
	}) {
		cancel()
		stop()
		close(ch)
	}
	return ch
}

// WatchSeq is Watch as an iterator: it yields each state with a nil error, and a final
// error if the watch ended on its own. Breaking out of the loop ends the watch.
func (c *Client) WatchSeq(ctx context.Context, sku string) iter.Seq2[api.SKU, error] {
	return func(yield func(api.SKU, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for ev := range c.Watch(ctx, sku) {
			if !yield(ev.SKU, ev.Err) {
				return
			}
		}
	}
}

func (c *Client) watchLoop(ctx context.Context, sku string, ch chan<- WatchEvent) {
	p := c.poolFor(ctx, sku)
	var last uint64
	for attempt := 1; ctx.Err() == nil; attempt++ {
		e := p.pickAny(sku)
		delivered, err := c.watchOnce(ctx, e, sku, &last, ch)
		if ctx.Err() != nil {
			return
		}
		var ae *api.Error
		switch {
		case errors.As(err, &ae) && ae.Code == api.NotFound && c.existsStrong(ctx, sku):
			// The node serving the watch answers from its local state and had not yet
			// applied the SKU's creation: it will catch up, so try again.
		case ae != nil && !ae.Code.Retryable():
			select {
			case ch <- WatchEvent{Err: ae}:
			case <-ctx.Done():
			}
			return
		case ae == nil && err != nil:
			p.failed(e)
		}
		if delivered {
			attempt = 1 // a stream that worked resets the backoff
		}
		if sleep(ctx, c.ctx, c.backoff(attempt)) != nil {
			return
		}
	}
}

// watchOnce follows one event stream until it ends; it reports whether it delivered
// anything.
func (c *Client) watchOnce(ctx context.Context, e *Endpoint, sku string, last *uint64, ch chan<- WatchEvent) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(watchIdleTimeout, cancel)
	defer idle.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme+e.addr+skuPath(sku)+"/watch", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	e.outstanding.Add(1)
	defer e.outstanding.Add(-1)
	resp, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, readError(resp)
	}

	delivered := false
	rd := bufio.NewReader(resp.Body)
	var event string
	var data []byte
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			return delivered, err
		}
		idle.Reset(watchIdleTimeout)
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0: // the end of an event: dispatch it
			if event == "error" {
				var eb api.ErrorBody
				if json.Unmarshal(data, &eb) == nil && eb.Error != nil {
					return delivered, eb.Error
				}
			}
			if event == "sku" {
				var s api.SKU
				if json.Unmarshal(data, &s) == nil && s.Version > *last {
					*last = s.Version
					select {
					case ch <- WatchEvent{SKU: s}:
						delivered = true
					case <-ctx.Done():
						return delivered, ctx.Err()
					}
				}
			}
			event, data = "", data[:0]
		case line[0] == ':': // a comment: the server's keep-alive ping
		case bytes.HasPrefix(line, []byte("event:")):
			event = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimPrefix(line[len("data:"):], []byte(" "))...)
		}
	}
}

// existsStrong asks the leader whether sku exists, so that a lagging node's not_found does
// not end a watch of a SKU that was just created.
func (c *Client) existsStrong(ctx context.Context, sku string) bool {
	_, err := c.GetSKU(ctx, sku)
	return !errors.Is(err, ErrNotFound)
}
