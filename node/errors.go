package node

import (
	"context"
	"errors"
	"net/http"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// apiError turns any error of the write or read path into the wire vocabulary, naming
// the cluster group's leader where it says to go to the leader. It is the one place
// raft's errors are mapped; handlers never inspect raft errors themselves.
func (n *Node) apiError(err error) *api.Error {
	return n.mapError(err, nil)
}

// mapError is apiError for an answer written to w: the leader it names is that of the
// group the answer is about (answerLeader); w nil names the cluster group's.
func (n *Node) mapError(err error, w http.ResponseWriter) *api.Error {
	var ae *api.Error
	if errors.As(err, &ae) {
		if ae.Leader == "" && (ae.Code == api.NotLeader || ae.Code == api.NoLeader) {
			hinted := *ae // the sentinels are shared: never write into them
			hinted.Leader = n.answerLeader(w)
			return &hinted
		}
		return ae
	}
	var nh *notHostedError
	if errors.As(err, &nh) {
		return nh.apiError()
	}
	e := &api.Error{Code: api.Internal, Message: err.Error()}
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused before entering the log: nothing happened, try the leader.
		e.Code, e.Message = api.NotLeader, "this node is not the leader"
	case errors.Is(err, raft.ErrLeadershipLost):
		// The entry may still commit under the next leader (raft #561): unknown outcome.
		e.Code, e.Message = api.NoLeader, "leadership lost with the command in flight; the outcome is unknown: retry with the same request_id"
	case errors.Is(err, raft.ErrRaftShutdown):
		e.Code, e.Message = api.NoLeader, "node is shutting down; retry with the same request_id on another node"
	case errors.Is(err, raft.ErrEnqueueTimeout):
		e.Code, e.Message = api.Overloaded, "the leader could not queue the command in time"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		e.Code, e.Message = api.Timeout, "no answer in time; the outcome is unknown: retry with the same request_id"
	}
	if e.Code == api.NotLeader || e.Code == api.NoLeader {
		e.Leader = n.answerLeader(w)
	}
	return e
}

var (
	errNotLeader = &api.Error{Code: api.NotLeader, Message: "this node is not the leader"}
	errNoLeader  = &api.Error{Code: api.NoLeader, Message: "the cluster has no leader right now"}
)
