package paxos

// faults are deliberate bugs. They exist so the model checker and the simulator can prove
// they catch real mistakes: a checker that never fails proves nothing. Only tests in this
// package set them; the zero value (and a nil pointer) is correct Paxos.
type faults struct {
	// quorumOfOne lets a proposer and a learner act on one reply instead of a majority, so
	// two disjoint "majorities" can choose different values.
	quorumOfOne bool
	// ignorePromiseValues makes a proposer propose its own value even when a promise
	// reports an accepted one: it breaks P2c.
	ignorePromiseValues bool
	// acceptBelowPromise makes an acceptor accept a ballot lower than one it promised: it
	// breaks P1a.
	acceptBelowPromise bool
	// forgetPromiseOnRestart keeps a promise only in memory, so a restart lets the acceptor
	// accept a ballot it promised to ignore.
	forgetPromiseOnRestart bool
}
