package node

import (
	"context"
	"errors"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// apiError turns any error of the write or read path into the wire vocabulary, naming
// the cluster group's leader where it says to go to the leader. It is the one place
// raft's errors are mapped; handlers never inspect raft errors themselves.
func (n *Node) apiError(err error) *api.Error {
	return n.mapError(err, n.clusterGroup().leaderHTTP)
}

// mapError is apiError with the leader hint leader gives: the leader of the group the
// error came from.
func (n *Node) mapError(err error, leader func() string) *api.Error {
	var ae *api.Error
	if errors.As(err, &ae) {
		if ae.Leader == "" && (ae.Code == api.NotLeader || ae.Code == api.NoLeader) {
			hinted := *ae // the sentinels are shared: never write into them
			hinted.Leader = leader()
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
		e.Leader = leader()
	}
	return e
}

var (
	errNotLeader = &api.Error{Code: api.NotLeader, Message: "this node is not the leader"}
	errNoLeader  = &api.Error{Code: api.NoLeader, Message: "the cluster has no leader right now"}
)
