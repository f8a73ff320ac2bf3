package client

import (
	"net/http"
	"strconv"
	"time"

	"github.com/flashstock/flashstock/api"
)

// CallOption adjusts one call. Options that do not apply to a call are ignored.
type CallOption func(*callOptions)

type callOptions struct {
	requestID    string
	stale        bool
	key          string
	info         *ReadInfo
	perUserLimit int64
	limit        int
	after        string
}

func collect(opts []CallOption) callOptions {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithRequestID makes a mutation use id as its request_id instead of a fresh random one:
// to retry a call that gave up (GaveUpError) and learn its first answer, or to tie the
// mutation to an id of the application's. The server remembers a request_id with its
// first answer, so each distinct command needs its own id: never reuse one id for, say, a
// reserve and the confirm of the same order.
func WithRequestID(id string) CallOption { return func(o *callOptions) { o.requestID = id } }

// WithStale makes a read be served by any healthy node from its local state, chosen by the
// Balancer: faster and spread out, but possibly behind the leader (see WithReadInfo).
// Reads are strong (linearizable, served by the leader) without it.
func WithStale() CallOption { return func(o *callOptions) { o.stale = true } }

// WithKey gives a stale read a key (a user, a session) for the Balancer; with
// ConsistentHash the same key reads from the same node while it is healthy. It implies
// WithStale.
func WithKey(key string) CallOption {
	return func(o *callOptions) { o.stale, o.key = true, key }
}

// ReadInfo says which node served a read and how fresh its state was.
type ReadInfo struct {
	Node         string        // the node's HTTP address
	AppliedIndex uint64        // the log index its state reflects
	LastContact  time.Duration // since it heard from the leader; 0 on the leader, <0 never
}

// WithReadInfo fills info when the read succeeds.
func WithReadInfo(info *ReadInfo) CallOption { return func(o *callOptions) { o.info = info } }

// WithPerUserLimit sets a new SKU's per-user limit (CreateSKU); 0 means none.
func WithPerUserLimit(n int64) CallOption { return func(o *callOptions) { o.perUserLimit = n } }

// WithLimit bounds how many items a listing returns (ListSKUs, History); the server's
// default is 100, its maximum 1000.
func WithLimit(n int) CallOption { return func(o *callOptions) { o.limit = n } }

// WithAfter makes ListSKUs start after this SKU id, to page through a long list.
func WithAfter(sku string) CallOption { return func(o *callOptions) { o.after = sku } }

func (o *callOptions) fillInfo(resp *http.Response, e *Endpoint) {
	if o.info == nil {
		return
	}
	idx, _ := strconv.ParseUint(resp.Header.Get(api.HeaderAppliedIndex), 10, 64)
	lc, err := strconv.ParseInt(resp.Header.Get(api.HeaderLastContactMS), 10, 64)
	if err != nil {
		lc = -1
	}
	*o.info = ReadInfo{Node: e.addr, AppliedIndex: idx, LastContact: time.Duration(lc) * time.Millisecond}
}
