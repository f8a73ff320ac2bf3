package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/flashstock/flashstock/api"
)

// forward sends a request to the leader of g, the group it acts on, and copies its answer
// back, so a client may talk to any node. A request that was already forwarded once is not forwarded again: a node
// that is not the leader answers not_leader with its best hint, and the client retries.
func (n *Node) forward(w http.ResponseWriter, r *http.Request, g groupStore, body []byte) {
	if r.Header.Get(api.HeaderForwardedBy) != "" {
		n.writeError(w, errNotLeader)
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	leader := g.awaitLeader(ctx, "")
	resp, err := n.forwardTo(ctx, r, body, leader)
	if err != nil && notSent(err) {
		// Nothing was sent: the leader this node knew is gone (its port refuses). Its
		// successor is being elected; send there once it is known.
		leader = g.awaitLeader(ctx, leader)
		resp, err = n.forwardTo(ctx, r, body, leader)
	}
	switch {
	case leader == "":
		n.writeError(w, errNoLeader)
		return
	case leader == n.httpAddr:
		// This node won the election while the request waited: the client sends it here.
		n.writeError(w, &api.Error{Code: api.NotLeader, Message: "this node has just become the leader; send the request again", Leader: leader})
		return
	}
	if err != nil && notSent(err) {
		// Nothing was sent to the successor either: no leader to reach right now. The
		// client backs off before it retries (not_leader would send it there at once).
		n.writeError(w, &api.Error{Code: api.NoLeader, Message: "the leader could not be reached (" + err.Error() + "); the request was not sent: retry with the same request_id", Leader: leader})
		return
	}
	if err != nil {
		// The leader may have received and committed the request before the connection
		// failed: the outcome is unknown, which is what timeout says.
		n.writeError(w, &api.Error{Code: api.Timeout, Message: "forwarding to the leader failed (" + err.Error() + "); the outcome is unknown: retry with the same request_id", Leader: leader})
		return
	}
	copyAnswer(w, resp)
}

// copyAnswer copies a forwarded request's answer back to its client.
func copyAnswer(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Retry-After", api.HeaderAppliedIndex, api.HeaderLastContactMS} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	// w (the metrics' status recorder) has no ReadFrom and the answer's body no WriteTo, so
	// io.Copy would allocate a buffer of 32 KiB for every forwarded request: half the bytes
	// a forwarding follower allocated per deduction.
	_, _ = io.CopyBuffer(w, resp.Body, *buf)
}

// copyBufs holds the buffers forward copies the leader's answers through.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// forwardTo sends the request to the leader at leader; nothing is sent when leader is ""
// or this node.
func (n *Node) forwardTo(ctx context.Context, r *http.Request, body []byte, leader string) (*http.Response, error) {
	if leader == "" || leader == n.httpAddr {
		return nil, nil
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, n.scheme()+leader+r.URL.RequestURI(), rd)
	if err != nil {
		return nil, err
	}
	// The body goes as it came, so its Content-Type goes with it; Accept too, so the leader
	// answers in the encoding the client asked for (POST /v1/batch/deduct has two) and the
	// answer is copied back unchanged.
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	if a := r.Header.Values("Accept"); len(a) > 0 {
		req.Header["Accept"] = a
	}
	req.Header.Set(api.HeaderForwardedBy, n.cfg.ID)
	if a := r.Header.Get(api.HeaderAttempt); a != "" {
		req.Header.Set(api.HeaderAttempt, a)
	}
	// The client's own credential goes along: the leader checks it again, so a follower
	// never lends a request more rights than its sender has.
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	return n.fwd.Do(req)
}

// notSent reports whether a forwarding error proves the request never reached the leader:
// only a failed dial does (refused, unreachable, timed out connecting). Once a connection
// is open, any failure (a reset, EOF) may come after the leader read the request. The
// transport itself only sends a POST again on a new connection when nothing of it was
// written, so a dial error after such a retry still proves it (a GET it may resend in any
// case, but a read changes nothing).
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
