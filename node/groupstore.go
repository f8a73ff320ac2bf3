package node

import (
	"context"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/fsm"
)

// groupStore is what the HTTP handlers need of this node's replica of one data group, as
// rqlite's HTTP service declares the Store it needs: who leads (serve here, or forward
// there), the state machine to read, a linearizable read, proposals, and a watch. *Group
// is the one a process serves with; the unit tier (unit_test.go) serves the same handlers
// from fsm.Machines applied directly, without raft.
type groupStore interface {
	groupID() uint64
	// leads reports this replica's belief that it leads its group: writes and strong reads
	// are served here when it does, and forwarded to leaderHTTP when it does not.
	leads() bool
	// leaderHTTP is the group leader's HTTP address, "" when none is known.
	leaderHTTP() string
	// awaitLeader is the leader's address other than not, waiting for an election (see
	// Group.awaitLeader); "" when none came in time.
	awaitLeader(ctx context.Context, not string) string
	// state is the replica's state machine, read locally: stale, or after strongRead.
	state() *fsm.Machine
	// strongRead returns once state has applied everything committed before the call.
	strongRead(ctx context.Context) error
	// clusterNow is the cluster time (ms) reads of orders are judged by.
	clusterNow() int64
	// lastContactMS is how long since the replica heard from its leader (0 on the leader,
	// -1 never).
	lastContactMS() int64
	// submit proposes cmds on the leader and returns each one's outcome once applied, or
	// the error that left it unknown.
	submit(ctx context.Context, cmds []fsm.Command) []outcome
	// countResult records the leader's answer to cmd (fastPath: made without the log).
	countResult(cmd fsm.Command, res fsm.Result, fastPath bool)
	// awaitSKU makes sure the local state has sku before a watch of it starts.
	awaitSKU(ctx context.Context, sku string) error
	// subscribe hears of each change to sku until cancel.
	subscribe(sku string) (changed <-chan struct{}, cancel func())
}

var _ groupStore = (*Group)(nil)

func (g *Group) groupID() uint64     { return g.id }
func (g *Group) leads() bool         { return g.raft.State() == raft.Leader }
func (g *Group) state() *fsm.Machine { return g.fsm }
func (g *Group) submit(ctx context.Context, cmds []fsm.Command) []outcome {
	return g.coalesce.submit(ctx, cmds)
}

func (g *Group) subscribe(sku string) (<-chan struct{}, func()) {
	return g.watch.subscribe(sku)
}

// groupStores is where groupFor and friends find the group stores a request acts on: the
// process's Groups (hostedGroups), or the unit tier's in-memory ones.
type groupStores interface {
	// placed reports a multi-group cluster: the meta group's placement (Node.placement)
	// says which group owns a SKU. Otherwise every SKU is group 1's.
	placed() bool
	// store is this process's replica of data group id, or nil.
	store(id uint64) groupStore
	// data is the data groups' replicas this process hosts, by id.
	data() []groupStore
}

// hostedGroups is the process's own Groups as groupStores.
type hostedGroups struct{ n *Node }

func (h hostedGroups) placed() bool { return h.n.metaGroup != nil }

func (h hostedGroups) store(id uint64) groupStore {
	if id == legacyGroup && h.n.cluster != nil {
		return h.n.cluster // every answer asks for it: no lock on the groups
	}
	if g := h.n.group(id); g != nil && !g.isMeta() {
		return g
	}
	return nil // never a nil *Group in the interface
}

func (h hostedGroups) data() []groupStore {
	gs := h.n.dataGroups()
	out := make([]groupStore, len(gs))
	for i, g := range gs {
		out[i] = g
	}
	return out
}

// clusterLeader is the leader a process names on every answer and on errors of no group's
// in particular: group 1's, whose configuration is the cluster's membership.
func (n *Node) clusterLeader() string {
	if n.metaGroup != nil {
		return n.metaGroup.leaderHTTP()
	}
	if s := n.stores.store(legacyGroup); s != nil {
		return s.leaderHTTP()
	}
	return ""
}
