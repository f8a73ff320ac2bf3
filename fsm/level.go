package fsm

import (
	"fmt"

	"github.com/flashstock/flashstock/api"
)

// ApplyLevel is the highest set of apply rules this build knows. A rule that changes what
// apply does with a command that older builds also apply must not take effect while a
// replica of an older build still applies the same log, or the replicas' states would part
// during a rolling upgrade. So such a rule is tied to a level, kept in the state (meta)
// and raised only by a SetLevel entry in the log, which the leader proposes once every
// member reports that its build knows the level (node/level.go), as etcd's cluster version
// gates features. Every replica switches rules at the same log index.
//
// The levels:
//
//	0  every rule up to and including state format 3.
//	1  an order past its hold is expired for every action: confirm, cancel or ship of a
//	   held order whose time has passed releases the hold as expired (ledger: expire) and
//	   answers expired; a read shows it expired. At level 0 confirm refuses it, cancel
//	   cancels it and ship names its status, and the hold waits for the expiry round.
//	   Also the commands Adjust and Retire: below level 1 apply treats them as builds
//	   before them do, as an entry it cannot decode.
const ApplyLevel = 1

// kindLevel is the level from which apply knows a command kind; the kinds not listed are
// known at every level.
var kindLevel = map[Kind]uint64{KindAdjust: 1, KindRetire: 1}

// KindLevel is the apply level a kind needs: the node refuses to propose it below.
func KindLevel(k Kind) uint64 { return kindLevel[k] }

// unknownAtLevel finds the first kind in cmd that the log's level does not know yet, in the
// order a build before it would fail to decode them.
func unknownAtLevel(cmd Command, level uint64) (Kind, bool) {
	if kindLevel[cmd.Kind] > level {
		return cmd.Kind, true
	}
	for _, sub := range cmd.Batch {
		if kindLevel[sub.Kind] > level {
			return sub.Kind, true
		}
	}
	return 0, false
}

// setLevel raises the apply level. A level this build does not know stops the replica:
// going on under older rules than the other replicas would make it diverge.
func (a *applier) setLevel(c Command) (Result, error) {
	if c.Level > ApplyLevel {
		return Result{}, fmt.Errorf("the log raises the apply level to %d; this build applies up to %d: upgrade this node", c.Level, ApplyLevel)
	}
	if c.Level <= a.meta.Level {
		return Result{Code: api.OK}, nil
	}
	a.meta.Level = c.Level
	return Result{Code: api.OK}, nil
}

// Level is the apply level in force as of the last entry applied.
func (m *Machine) Level() uint64 { return m.level.Load() }
