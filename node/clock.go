package node

import "time"

// clusterNow is this node's notion of the time the log runs on, in Unix milliseconds: the
// time propose stamps into commands, and the "now" reads judge holds against (an order
// past its hold reads as expired). Both go through here so they can only change together.
// For now it is the wall clock; the cluster-time work replaces this body.
func (n *Node) clusterNow() int64 {
	return time.Now().UnixMilli()
}
