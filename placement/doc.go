// Package placement decides where a multi-group cluster keeps its data: which raft group
// owns which SKUs, which nodes host each group's replicas, and which replica each group's
// leadership is steered to. It owns the rules of the placement document (api.Placement,
// held by the meta group): Validate, the first placement (Bootstrap), the changes an
// operator makes (AddNode, SetNodeState, RemoveNode), and the planner (Plan,
// BalanceLeaders) that turns a placement and the set of live nodes into raft steps, which
// Apply records once done.
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
package placement
