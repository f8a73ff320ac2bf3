// Package placement decides where a multi-group cluster keeps its data: which raft group
// owns which SKUs, which nodes host each group's replicas, and which replica each group's
// leadership is steered to. It owns the rules of the placement document (api.Placement,
// held by the meta group): Validate, the first placement (Bootstrap), the changes an
// operator makes (AddNode, SetNodeState, RemoveNode, MoveReplica, PinLeader, Unpin), and
// the planner (Plan, BalanceLeaders) that turns a placement and the set of live nodes into
// raft steps, which Apply records once done.
//
// It is pure: no raft, no I/O, no clock, no randomness, no goroutines; it imports only api
// and the standard library. The same inputs give the same answer on every node, in every
// test, and every tie is broken by node id, then group order. node/ carries the steps out
// and stores the results through the meta group's log, whose state machine is package
// placement/meta.
//
// # SKUs to groups: fixed slots, not a ring
//
// A SKU's slot is api.SlotOf (CRC-32C modulo api.SlotCount, frozen forever); a slot's
// group is a table in the placement, each data group owning ranges of slots (contiguous
// and even at Bootstrap). Nodes do not appear in that mapping at all: adding, draining or
// losing a node moves replicas of groups, never a SKU from one group to another, which is
// the whole point (a SKU's state, its exactly-once table and its holds live in one group's
// fsm, and moving it between groups is a data migration, not a routing change). A hash
// ring with virtual nodes would also keep most keys in place, but it places keys on
// members; here the members of the ring would be groups, and growing it would still move
// some keys. A slot table moves keys only when a group is split or merged, later, by
// handing whole slots over, explicitly and versioned. Routing needs nothing but api: the
// Go client computes api.SlotOf and looks the slot up in the placement's ranges
// (api.Placement.GroupOf), as Redis Cluster clients do with its 16384 slots.
//
// # Replicas to nodes
//
// A node is good when it is active (not draining) and live. Each data group is steered to
// r = min(3, active nodes) voters, on good nodes as far as there are r of them, with the
// replicas per good node within one of each other, moving as few replicas as that allows;
// then preferred leaders are spread the same way. A node that is down keeps its replicas
// while there is no good node to move them to (a group does not shrink because of a
// failure); a draining node keeps them only while the group needs them and no good node
// can take them. Of two voters a group can spare, it removes a dead one first, a draining
// one next: the voters that stay are the ones that can form its quorum. A replica moves from X to Y in single raft membership changes:
// add Y as a nonvoter, promote it, hand leadership away from X if X has it, remove X. So a
// group never has fewer than r voters once it had them, and never moves two replicas at
// once (the document allows one nonvoter per group). Plan gives the next step of every
// group that has one; the caller performs them (concurrently across groups is fine),
// records each with Apply and plans again, until Plan returns nothing. A group that has
// lost its majority is left alone: no membership change can commit in it.
//
// # The meta group on every node
//
// The meta group (0) holds the placement, and every node reads it locally, so every
// active node hosts it: min(5, active nodes) of them rounded down to odd as voters (1, 1,
// 3, 3, 5: an even count survives no more failures than the odd one below it and needs
// one more acknowledgement per commit), the others as nonvoters, which cost it no quorum.
// Its voters go to the nodes that lead the fewest data groups, then vote in the fewest
// (the meta leader also runs the controller), and stay where they are once placed. Its
// membership changes one step at a time, and by roles rather than moves: a new node
// joins it as a nonvoter before any data group moves a replica onto it; a vote moves by
// promoting the new voter first (one voter beyond the count for a step), handing
// leadership away, then demoting the old one, which stays a nonvoter; the count shrinks
// by demotions, never below what it should be; a draining node keeps its vote only while
// no good node can take it, and leaves the meta group after its last data replica, so
// that it reads the placement of every group it serves until it serves none.
//
// # Operator moves are pins the planner carries out
//
// An operator does not perform raft steps; he records a wish in the placement, and the
// planner carries it out with the same single steps as any other move. MoveReplica pins a
// data group's voters (Group.PinnedReplicas): those it is steered to now (its pin, else
// its voters) with the source replaced by the destination; PinLeader pins its leader
// (Group.PinnedLeader) and its voters with it; Unpin clears every pin, which is what
// "rebalance now" means. Each is a command in the meta group's log, guarded by the
// placement version it was checked against like the controller's steps: two operators
// racing are ordered by the guard (the second is checked again against the first's pin),
// and a controller that crashes half way through a move resumes it from the placement,
// since the wish is there and not in the controller's memory.
//
// Pins stick until cleared. The alternative, a one-shot move that the balance rule may
// undo, would either let the planner move the replica straight back (in a balanced
// cluster nearly every move unbalances it by one) or have to refuse most moves an
// operator has a reason for (emptying a node before maintenance, putting a hot group's
// leader on a quiet machine). So the planner holds a pinned group where it was put and
// balances the other groups around it (targets, leaderSteps), and the operator's
// "balance" hands every group back to it. A pin yields only to safety: a pinned node that
// is draining or down is not held to (the group is topped up elsewhere, as for any lost
// replica, and comes back to the pin once the node is good again), and a node that leaves
// the placement takes its pins along (RemoveNode).
//
// What the placement alone can tell is checked by MoveReplica and PinLeader, on every
// replica of the meta group alike: an unknown group or node (not_found), the meta group
// (meta_group_pin: its voters and leader are the planner's), a destination that is a
// voter already (already_replica) or draining (node_draining), a source or leader that is
// not one of the voters the group is steered to (not_replica), a move off the pinned
// leader (pinned_leader). What only the live cluster can tell is checked by CheckLive on
// the meta leader before it proposes: a destination that does not answer (node_down), a
// group whose live voters would not be a majority now or at any step of the move
// (no_quorum). Forecast plays the planner forward for a dry run.
package placement
