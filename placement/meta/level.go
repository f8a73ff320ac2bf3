package meta

// ApplyLevel is the highest meta apply level this build knows: the meta log's counterpart
// of fsm.ApplyLevel, with the same rule (fsm/level.go, node/level.go). A command kind that
// older builds cannot decode is tied to a level; the leader refuses to propose it while
// the log is below that level (apply itself takes it at any level: KindLevel), and the
// level rises only by a SetLevel entry, which the leader proposes once every member
// reports (api.Node.MaxMetaLevel) that its build knows it. An older build stops its meta replica at an entry it cannot decode (doc.go), so a
// pin written while one still runs would take its meta group down mid-upgrade.
//
// The levels:
//
//	0  bootstrap, add_node, set_node_state, remove_node, step.
//	1  the operator's pins: move_replica, pin_leader, unpin. (set_level came with level 1
//	   too, but needs no level: a build of level 0 reports no max_meta_level, so the
//	   leader never writes one while such a build is a member.)
//
// The level is a separate count from fsm's: the meta log and a data group's log are
// different logs, each raised by its own entry, and a build may add a kind to one
// without a rule of the other changing.
const ApplyLevel = 1

// kindLevel is the level from which apply knows a kind; kinds not listed are known at
// every level. SetLevel is not listed: it is written only once every member reports a
// level, so only builds that know it ever meet it.
var kindLevel = map[Kind]uint64{MoveReplica: 1, PinLeader: 1, Unpin: 1}

// KindLevel is the meta apply level a kind needs: the node refuses to propose it below.
//
// Apply does not check it: a pin in the log applies at any level. The gate is the
// proposer's, because the build that introduced pins wrote them without one: a replica of
// this build replaying such a log, or running beside such a build during the upgrade,
// must apply them as that build did, or the two would hold different placements. A build
// that knows no pins stops at one either way (doc.go); the level keeps new ones out of
// the log until no such build is a member.
func KindLevel(k Kind) uint64 { return kindLevel[k] }

// Level is the meta apply level in force as of the last entry applied.
func (m *Machine) Level() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.level
}
