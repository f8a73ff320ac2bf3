// Package proc starts, stops and watches stockd processes: the one launcher behind
// "stockd dev", "stockctl bench"'s cluster, cmd/stockd's end-to-end tests and the chaos
// suite (cluster-test).
//
// It owns what every one of them must do alike: the members' command lines as DESIGN.md's
// "Node start-up" says (n1 --bootstrap, the others --join n1), free loopback ports, a
// goroutine per run that reaps the process, a stop that sends SIGTERM and then SIGKILL past
// a deadline, the rule that says when a cluster is ready (Ready), and the node logs (their
// header line per start, their tails, a copy kept on request).
//
// It is production code ("stockd dev" and "stockctl bench" import it), so it must never
// import testing; internal/proc/proctest adds the *testing.T conveniences. Every process
// is signalled by its own PID, never by name or process group.
package proc
