package client

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/flashstock/flashstock/api"
)

// healthLoop is the heartbeat of one node until Close or until the node leaves the list. A
// check asks the node for its own view (GET /v1/cluster/self, answered locally): an answer
// marks it healthy, and says whether it leads, which is how the client finds the leader
// without a request bouncing off a follower first. A failed check marks it down; a down
// node is checked again with exponential backoff (reconnect with backoff), and a request
// that fails on a node wakes its loop at once.
func (c *Client) healthLoop(e *Endpoint) {
	interval := c.cfg.HealthInterval
	maxWait := 8 * interval
	wait := time.Duration(0) // the first check right away: learn the leader early
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-e.stop:
			return
		case <-e.wake:
		case <-t.C:
		}
		self, err := c.probe(e)
		role := self.Role
		p := c.pool
		if err != nil {
			p.setHealthy(e, false)
			wait = min(max(2*wait, interval), maxWait)
		} else {
			// Before the leader is known, so a caller that waits for it routes by group.
			c.router.observe(e, self.Groups)
			p.setHealthy(e, true)
			if role == api.RoleLeader {
				p.setLeader(e)
			} else {
				p.notLeader(e)
			}
			wait = interval
		}
		// Jitter keeps many clients from checking a node in lockstep.
		t.Reset(wait/2 + rand.N(wait/2+1))
	}
}

// probe asks a node for its own view: its role, and the groups it hosts.
func (c *Client) probe(e *Endpoint) (api.Node, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.HealthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme+e.addr+"/v1/cluster/self", nil)
	if err != nil {
		return api.Node{}, err
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return api.Node{}, err
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return api.Node{}, readError(resp)
	}
	var self api.Node
	if err := json.NewDecoder(resp.Body).Decode(&self); err != nil {
		return api.Node{}, err
	}
	return self, nil
}

// drainClose reads what is left of a body (a little) before closing it, so the connection
// goes back to the keep-alive pool instead of being torn down.
func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	body.Close()
}
