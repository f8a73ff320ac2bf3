// Package client is the Go client of flashstock for applications.
//
// It owns the client side of the HTTP contract (DESIGN.md, "HTTP API"): finding and
// following the leader, retrying what the error vocabulary says is safe to retry (always
// with the request_id made once per logical call, so a retry can never apply a command
// twice), spreading stale reads over healthy nodes with a pluggable Balancer, health checks,
// DNS endpoints, and typed errors that work with errors.Is.
//
// With several raft groups (DESIGN.md, "Routing") it sends each call to the leader of its
// SKU's group, tracks each group's leader, batches Deduct calls per group, and refuses an
// order whose lines span groups with ErrCrossGroup before sending it. It learns that a
// cluster has several groups from its health checks, fetches the placement from
// GET /v1/cluster when a call first needs it, and again when an answer says it is stale; a
// single-group cluster is never asked for it.
//
// It imports only api/ and the standard library, never node/ or fsm/: applications must be
// able to depend on it without pulling in raft or bbolt.
//
// A Client is safe for concurrent use and meant to be shared: it keeps one pool of
// keep-alive connections. Close stops its background goroutines (health checks, DNS
// re-resolution, watches).
package client
