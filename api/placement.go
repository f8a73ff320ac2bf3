package api

// The placement: which raft groups exist, which nodes host their replicas, and which slots
// (SlotOf) each data group owns. The metadata group holds it; nodes and clients route by
// it. Package placement owns its rules (Validate) and the planner that changes it; these
// are only the wire types, so a client can decode and route without importing more than
// api. `stockctl group list --json` and /v1/cluster print the same shape.

// Node states in a placement.
const (
	NodeActive   = "active"   // may host replicas and lead groups
	NodeDraining = "draining" // its replicas are being moved off; it gets no new ones
)

// Group kinds.
const (
	GroupMeta = "meta" // the one metadata group: holds the placement, owns no slots
	GroupData = "data" // holds the SKUs of the slots it owns
)

// MetaGroupID is the id of the metadata group. Data groups are numbered from 1, so the
// data group of a cluster created before groups existed is group 1.
const MetaGroupID uint64 = 0

// Placement is one version of the placement document.
type Placement struct {
	// Version grows by one with every change to the placement; a node or client keeps
	// the highest it has seen.
	Version uint64 `json:"version"`
	// SlotCount is SlotCount, written down so that a reader of a different build can
	// tell it routes by the same table.
	SlotCount int             `json:"slot_count"`
	Nodes     []PlacementNode `json:"nodes"`
	Groups    []Group         `json:"groups"`
}

// PlacementNode is a node the placement may put replicas on.
type PlacementNode struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	State    string `json:"state"` // NodeActive or NodeDraining
}

// Group is one raft group.
type Group struct {
	ID   uint64 `json:"id"`
	Kind string `json:"kind"` // GroupData or GroupMeta
	// Leader is the node that leads the group now, when the answering node knows it. It is
	// live state, not placement: it is filled in for answers and for the planner's view,
	// and changes without a new Version.
	Leader string `json:"leader,omitempty"`
	// PreferredLeader is the voter the group's leadership is steered to; preferred leaders
	// are spread evenly over the nodes.
	PreferredLeader string    `json:"preferred_leader"`
	Replicas        []Replica `json:"replicas"`
	// PinnedReplicas, when set, are the voters an operator asked this data group to have
	// (stockctl group move): the planner moves its replicas there and balances the other
	// groups around it, until the pins are cleared (stockctl group balance). A pinned node
	// that is draining or down is not held to.
	PinnedReplicas []string `json:"pinned_replicas,omitempty"`
	// PinnedLeader, when set, is the voter an operator asked this data group to be led by
	// (stockctl group leader), held the same way.
	PinnedLeader string `json:"pinned_leader,omitempty"`
	// Slots are the slots a data group owns, as half-open ranges [from, to).
	Slots []SlotRange `json:"slots,omitempty"`
}

// Replica is one member of a group.
type Replica struct {
	Node string `json:"node"`
	// Role is raft's suffrage: Voter, or Nonvoter (a learner: it receives the log but does
	// not count for quorum; a replica moving onto a node is one until it has caught up).
	Role string `json:"role"`
}

// RoleOf is node's role in g (Voter or Nonvoter), or "" if it hosts no replica of g.
// Voters is the group's voting replicas, in the placement's order.
func (g Group) Voters() []string {
	var v []string
	for _, r := range g.Replicas {
		if r.Role == Voter {
			v = append(v, r.Node)
		}
	}
	return v
}

func (g Group) RoleOf(node string) string {
	for _, r := range g.Replicas {
		if r.Node == node {
			return r.Role
		}
	}
	return ""
}

// SlotRange is the slots From, From+1, ..., To-1.
type SlotRange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// GroupOf returns the data group that owns sku's slot, or nil if no group does (a
// placement that passed validation always has one).
func (p *Placement) GroupOf(sku string) *Group {
	slot := SlotOf(sku)
	for i := range p.Groups {
		g := &p.Groups[i]
		if g.Kind != GroupData {
			continue
		}
		for _, r := range g.Slots {
			if r.From <= slot && slot < r.To {
				return g
			}
		}
	}
	return nil
}

// MoveRequest is the body of POST /v1/groups/{id}/move: move the data group's replica on
// node From to node To. The move is recorded as a pin the placement controller carries
// out (docs/OPERATIONS.md, "Moving replicas and leaders").
type MoveRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// LeaderRequest is the body of POST /v1/groups/{id}/leader: pin the data group's
// leadership to Node.
type LeaderRequest struct {
	Node string `json:"node"`
}

// BalanceRequest is the body of POST /v1/placement/balance: clear every pin so that the
// controller balances every group again, or with DryRun only say what it would do.
type BalanceRequest struct {
	DryRun bool `json:"dry_run,omitempty"`
}

// PlacementChange answers the move, leader and balance routes.
type PlacementChange struct {
	// PlacementVersion is the placement's version once the change is recorded (the
	// version it already had when there was nothing to change, or for a dry run).
	PlacementVersion uint64 `json:"placement_version"`
	// Steps are the steps the controller is expected to take from there, every group's,
	// in the order the planner would give them if each succeeded; empty when the
	// placement is where it should be. Live leaderships that merely differ from the
	// preferred ones are not steps.
	Steps []PlannedStep `json:"steps"`
}

// PlannedStep is one raft operation the placement controller plans: Kind is one of
// add_nonvoter, promote, transfer_leader, demote, remove, done to Node in Group.
type PlannedStep struct {
	Group uint64 `json:"group"`
	Kind  string `json:"kind"`
	Node  string `json:"node"`
}
