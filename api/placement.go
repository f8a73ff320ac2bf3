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
