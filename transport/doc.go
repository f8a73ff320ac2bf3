// Package transport moves raft's bytes between flashstock nodes.
//
// It owns one thing: the stream layer under hashicorp/raft's NetworkTransport.
// [Listen] binds a TCP listener and returns a [Layer], which implements
// raft.StreamLayer for a process that hosts one raft group: it accepts peers'
// connections and dials peers by their raft address, optionally over mutual
// TLS ([MutualTLS]). node/ wires it up with
// raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layer, ...}).
//
// A process that hosts many raft groups binds one listener with [ListenMux]
// and opens one [GroupLayer] per group with [Mux.Layer], each the Stream of
// that group's NetworkTransport. Every stream names its group in a short
// header (header.go has the wire format and what happens during a rolling
// upgrade); the Mux routes accepted streams by it. The streams of
// [LegacyGroup] carry no header, so a single-group cluster's wire is the same
// whether its nodes run a Layer or a Mux.
//
// Two seams let tests break the network without touching node/:
// [Config.Dial] replaces the dialer and [Config.WrapListener] wraps the
// listener, both beneath TLS. [Faults] plugs into both and blackholes,
// delays, holds the incoming half of, or resets the links of one node, for
// every raft group at once or ([Faults.Group]) for one. It is ordinary
// production code meant for test harnesses (this package's tests, node/
// tests, the chaos suite); it does nothing unless told to.
//
// What this package must never do: know anything about raft state (terms,
// leaders, logs), the fsm, or HTTP. It sees opaque byte streams, peer
// addresses and group ids only. Which peers and groups exist, when to dial
// them and what the bytes mean is raft's business, and the policy around it
// is node/'s.
package transport
