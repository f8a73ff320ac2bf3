package node

import (
	"context"
	"errors"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// apiError turns any error of the write or read path into the wire vocabulary. It is the
// one place raft's errors are mapped; handlers never inspect raft errors themselves.
func (n *Node) apiError(err error) *api.Error {
	var ae *api.Error
	if errors.As(err, &ae) {
		if ae.Leader == "" && (ae.Code == api.NotLeader || ae.Code == api.NoLeader) {
			hinted := *ae // the sentinels are shared: never write into them
			hinted.Leader = n.clusterLeader()
			return &hinted
		}
		return ae
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
		e.Leader = n.clusterLeader()
	}
	return e
}

var (
	errNotLeader = &api.Error{Code: api.NotLeader, Message: "this node is not the leader"}
	errNoLeader  = &api.Error{Code: api.NoLeader, Message: "the cluster has no leader right now"}
)
