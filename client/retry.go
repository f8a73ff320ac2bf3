package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/flashstock/flashstock/api"
)

// route says which nodes may serve a request.
type route uint8

const (
	toLeader route = iota // mutations, strong reads, membership: the leader (any node forwards)
	toAny                 // stale reads and watches: any healthy node, by the balancer
)

// request is one logical call. Its body, and so its request_id, is encoded once and sent
// unchanged on every try: that is what makes retrying a mutation safe.
type request struct {
	method string
	path   string // with the query string
	body   []byte
	route  route
	key    string // balancer key for toAny
	reqID  string // the mutation's request_id, for the error of a call that gave up
	// noRepeat marks a request that the server does not de-duplicate (leadership
	// transfer): it is retried only when it cannot have been carried out.
	noRepeat bool
	// unknown is set by do when a try failed in a way that leaves its outcome unknown.
	unknown bool
	// attempt numbers the try being sent (1 = first): the server may answer a first try of
	// a deduction sold_out without writing its log (api.HeaderAttempt).
	attempt int

	// contentType is the body's Content-Type, JSON when nil; accept, when set, is the
	// Accept header: only batches speak another encoding than JSON.
	contentType []string
	accept      []string
}

// newRequestID is a request_id for one logical call: 128 random bits from crypto/rand, so
// ids of concurrent clients never collide (a collision would return another call's answer).
func newRequestID() string { return rand.Text() }

// do runs r until a definite answer: 2xx answers go to handle, non-retryable errors come
// back as *api.Error, retryable ones are retried (following leader hints and leaving a node
// that refused the connection at once, otherwise after a backoff) until the context ends or
// MaxAttempts is reached.
func (c *Client) do(ctx context.Context, p *pool, r *request, handle func(*http.Response, *Endpoint) error) error {
	if err := c.ctx.Err(); err != nil {
		return ErrClosed
	}
	var last error
	hops := 0 // leader hints followed in a row without a pause
	// refused holds the nodes this call could not connect to. While no try has been sent, a
	// call that every node refused is over: nothing was sent, so nothing was applied, and
	// backing off to knock again on closed doors only hides that.
	var refused map[*Endpoint]bool
	sent := false
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return c.gaveUp(r, attempt-1, err, last)
		}
		var e *Endpoint
		if r.route == toLeader {
			e = p.pickLeader()
		} else {
			e = p.pickAny(r.key)
		}
		e.outstanding.Add(1)
		r.attempt = attempt
		resp, err := c.send(ctx, e, r)
		wait := time.Duration(-1) // -1: a backoff step
		switch {
		case err != nil:
			e.outstanding.Add(-1)
			if ctx.Err() != nil {
				return c.gaveUp(r, attempt, ctx.Err(), last)
			}
			p.failed(e)
			last = &transportError{addr: e.addr, err: err}
			if !isDialError(err) {
				sent = true
				r.unknown = true
				if r.noRepeat {
					return last
				}
				break
			}
			if refused == nil {
				refused = map[*Endpoint]bool{}
			}
			refused[e] = true
			if !sent && p.allIn(refused) {
				return &UnreachableError{Attempts: attempt, RequestID: r.reqID, Last: last}
			}
			if hops < 2 {
				// Nothing was sent and the node is now skipped: try the next one at once
				// (a killed leader's port refuses; any member forwards to its successor).
				hops++
				wait = 0
			}
		case resp.StatusCode/100 == 2:
			if r.route == toLeader && p == p.root {
				// Every answer names the leader (group 1's, which the client's own pool
				// tracks); one that came through a follower (after a failover, say) points
				// the next calls at the leader directly.
				if l := resp.Header.Get(api.HeaderLeader); l != "" && l != e.addr {
					if cur := p.leader.Load(); cur == nil || cur.addr != l {
						p.follow(l)
					}
				}
			}
			err := handle(resp, e)
			drainClose(resp.Body)
			e.outstanding.Add(-1)
			return err
		default:
			sent = true
			ae := readError(resp)
			drainClose(resp.Body)
			e.outstanding.Add(-1)
			if !ae.Code.Retryable() {
				return ae
			}
			last = ae
			switch ae.Code {
			case api.NotLeader, api.NoLeader:
				p.notLeader(e)
				c.router.markStale() // the group's leader, or the group, has moved
				// A hint may name the node that answered: it has just won an election.
				if ae.Leader != "" && hops < 2 {
					p.follow(ae.Leader)
					hops++
					wait = 0
				}
			case api.Overloaded:
				wait = retryAfter(resp) // nothing was proposed: honour the server's pace
			default: // timeout, internal: the outcome is unknown
				r.unknown = true
				if r.noRepeat {
					return ae
				}
			}
		}
		if wait != 0 {
			hops = 0
		}
		if c.cfg.MaxAttempts > 0 && attempt >= c.cfg.MaxAttempts {
			return c.gaveUp(r, attempt, nil, last)
		}
		if wait < 0 {
			wait = c.backoff(attempt)
		}
		if wait > 0 {
			if err := sleep(ctx, c.ctx, wait); err != nil {
				return c.gaveUp(r, attempt, err, last)
			}
		}
	}
}

func (c *Client) gaveUp(r *request, attempts int, cause, last error) error {
	if cause != nil && c.ctx.Err() != nil {
		cause = ErrClosed
	}
	return &GaveUpError{Attempts: attempts, RequestID: r.reqID, Cause: cause, Last: last}
}

// send makes one attempt on one node.
func (c *Client) send(ctx context.Context, e *Endpoint, r *request) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.scheme+e.addr+r.path, body)
	if err != nil {
		return nil, err
	}
	if r.body != nil {
		req.Header["Content-Type"] = jsonContentType
		if r.contentType != nil {
			req.Header["Content-Type"] = r.contentType
		}
		req.Header[api.HeaderAttempt] = []string{strconv.Itoa(r.attempt)}
	}
	if r.accept != nil {
		req.Header["Accept"] = r.accept
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	return c.http.Do(req)
}

var jsonContentType = []string{"application/json"}

// backoff is the wait before try attempt+1: exponential, capped, with full jitter, so a
// crowd of clients that failed together does not come back together.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BackoffMax
	if attempt < 30 {
		d = min(c.cfg.BackoffBase<<(attempt-1), c.cfg.BackoffMax)
	}
	return mrand.N(d) + 1
}

// retryAfter reads a 429's Retry-After (seconds or an HTTP date); a missing or unreadable
// one means a normal backoff step.
func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return -1
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s)*time.Second + 1
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 1)
	}
	return -1
}

// sleep waits d unless the call's context or the client ends first.
func sleep(ctx, client context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-client.Done():
		return ErrClosed
	}
}

// isDialError reports whether err happened before anything was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// readError decodes the contract's error body; an answer without one (a proxy's 502, say)
// becomes an error of the code its status implies.
func readError(resp *http.Response) *api.Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb api.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		return eb.Error
	}
	code := api.Internal
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		code = api.InvalidArgument
	case http.StatusUnauthorized, http.StatusForbidden:
		code = api.Unauthorized
	case http.StatusNotFound:
		code = api.NotFound
	case http.StatusTooManyRequests:
		code = api.Overloaded
	case http.StatusServiceUnavailable:
		code = api.NoLeader
	case http.StatusGatewayTimeout:
		code = api.Timeout
	}
	return &api.Error{Code: code, Message: fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, body)}
}

// decodeInto returns a handler that decodes a JSON answer into out.
func decodeInto(out any) func(*http.Response, *Endpoint) error {
	return func(resp *http.Response, _ *Endpoint) error {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("flashstock: decode answer: %w", err)
		}
		return nil
	}
}
