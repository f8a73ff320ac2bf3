// Package testcluster runs real flashstock nodes inside a test's process: real raft over
// loopback TCP, real bbolt files under t.TempDir(), each node's raft links behind a
// transport.Faults for partitions. It is the one builder of in-process clusters, for node's
// tests and for every package above node (client, ui, stockctl), as etcd's tests/framework
// is for etcd; it owns the fast raft timings, the start-up order (n1 bootstraps, the
// others join it), the wait for a ready cluster, restarts on the same ports, and the
// tier rule: under -short every test that asks for a node is skipped (Config).
//
// It does not import node. node's own tests are in package node (they read the node's
// insides: its fsm, its raft), and a package they import cannot import node. So the
// cluster is generic in the node type N and its config type C: callers pass
// node.DefaultConfig and node.New (node's tests pass DefaultConfig and New), and Config
// sets the config's fields by name. The seam costs one reflection helper and no copy of
// the builder; a renamed field of node.Config fails every cluster test at once, naming it.
package testcluster
