package node

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/flashstock/flashstock/api"
)

// forward sends a request to the leader and copies its answer back, so a client may talk
// to any node. A request that was already forwarded once is not forwarded again: a node
// that is not the leader answers not_leader with its best hint, and the client retries.
func (n *Node) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get(api.HeaderForwardedBy) != "" {
		n.writeError(w, errNotLeader)
		return
	}
	leader := n.leaderHTTP()
	if leader == "" || leader == n.httpAddr {
		n.writeError(w, errNoLeader)
		return
	}
	ctx, cancel := n.requestContext(r)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, n.scheme()+leader+r.URL.RequestURI(), rd)
	if err != nil {
		n.writeError(w, err)
		return
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
	resp, err := n.fwd.Do(req)
	if err != nil {
		if notSent(err) {
			// Nothing happened, as when no leader is known; the leader may be down, so the
			// client backs off before it retries (not_leader would send it there at once).
			n.writeError(w, &api.Error{Code: api.NoLeader, Message: "the leader could not be reached (" + err.Error() + "); the request was not sent: retry with the same request_id", Leader: leader})
			return
		}
		// The leader may have received and committed the request before the connection
		// failed: the outcome is unknown, which is what timeout says.
		n.writeError(w, &api.Error{Code: api.Timeout, Message: "forwarding to the leader failed (" + err.Error() + "); the outcome is unknown: retry with the same request_id", Leader: leader})
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Retry-After", api.HeaderAppliedIndex, api.HeaderLastContactMS} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
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
