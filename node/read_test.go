package node

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// An old leader whose followers' answers reach it late must not confirm a read with them:
// an answer sent before the followers moved on to a new leader says nothing about a read
// that began after the new leader committed. hashicorp/raft's VerifyLeader counts any
// successful AppendEntries response it processes (replication.go, updateLastAppended →
// notifyAll), also one sent before the election; a paused leader (SIGSTOP, GC, a frozen VM)
// resumes with exactly those in its socket buffers.
//
// The old leader's answers are held, then its links are blocked, and only then does the
// cluster move on: everything held was sent while the followers still followed it. A
// paused leader would not run its lease check either; this one does, and steps down a
// lease timeout after its last answer. So the followers do not wait out an election
// timeout: the test hands the first one raft's TimeoutNow, as a leadership transfer would,
// and the election and the new leader's write fit inside the old leader's lease.
func TestStrongRead_HeldAnswersFromBeforeAnElectionDoNotConfirm(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stock int64
		// change commits on the new leader what the old leader must not miss.
		change func(c *testCluster, addr string)
		// ask asks the old leader; it returns what the answer shows if it is stale.
		ask func(c *testCluster, addr string) (stale string)
	}{{
		name:  "strong read",
		stock: 1,
		change: func(c *testCluster, addr string) {
			c.mustCall(addr, "POST", "/v1/skus/tee/deduct", api.DeductRequest{Qty: 1, RequestID: "last", UserID: "u"}, nil)
		},
		ask: func(c *testCluster, addr string) string {
			var s api.SKU
			_, err := c.call(addr, "GET", "/v1/skus/tee", nil, &s)
			if err == nil && s.Sold == 0 {
				return fmt.Sprintf("strong read answered %+v, without the sale the new leader committed", s)
			}
			return ""
		},
	}, {
		name:  "sold-out answer",
		stock: 0,
		change: func(c *testCluster, addr string) {
			c.mustCall(addr, "POST", "/v1/skus/tee/restock", api.RestockRequest{Qty: 5, RequestID: "more"}, nil)
		},
		ask: func(c *testCluster, addr string) string {
			code, err := c.deductTry(addr, "tee", "late", 1, 1)
			if errors.Is(err, &api.Error{Code: api.SoldOut}) {
				return fmt.Sprintf("first try answered %d %v after the new leader restocked", code, err)
			}
			return ""
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3, func(cfg *Config) {
				// A lease as long as the heartbeat timeout gives the election room inside it.
				cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = time.Second, time.Second, time.Second
				cfg.ExpireInterval = time.Hour // no log writes of its own: a transfer waits for none
			})
			t.Cleanup(c.Heal) // before the nodes stop: a blocked link would hold their shutdown up
			c.createSKU("tee", tc.stock)
			li, old := c.WaitLeader()
			c.converged()
			var followers []*Node
			for i, n := range c.Nodes() {
				if i != li {
					followers = append(followers, n)
					// Nothing the followers send on their own (votes, a new leader's appends)
					// reaches the old leader: only answers to what it sends.
					c.Faults(i).Block(old.RaftAddr())
				}
			}
			held := time.Now()
			for _, f := range followers {
				c.Faults(li).HoldIncoming(f.RaftAddr())
			}
			// Each follower has answered a request sent after the hold, with success: that
			// answer now waits at the old leader.
			eventually(t, 5*time.Second, func() error {
				for _, f := range followers {
					if !f.cluster.raft.LastContact().After(held) {
						return fmt.Errorf("%s has not heard the old leader since the hold", f.ID())
					}
				}
				return nil
			})
			for _, f := range followers {
				c.Faults(li).Block(f.RaftAddr())
			}
			next := followers[0]
			timeoutNow(t, next)
			eventually(t, 5*time.Second, func() error {
				if !next.IsLeader() {
					return fmt.Errorf("%s not elected yet", next.ID())
				}
				return nil
			})
			tc.change(c, next.HTTPAddr())

			// The held answers are let in once the old leader's round for the call has
			// begun, as they would be when a paused leader resumes with a read waiting.
			rounds := old.cluster.readRounds.Load()
			answer := make(chan string, 1)
			go func() { answer <- tc.ask(c, old.HTTPAddr()) }()
			eventually(t, 5*time.Second, func() error {
				if old.cluster.readRounds.Load() == rounds {
					return fmt.Errorf("the old leader has not started confirming the read")
				}
				return nil
			})
			if !old.IsLeader() {
				t.Fatal("the old leader stepped down before the read: the scenario did not hold its answers long enough")
			}
			c.Faults(li).Heal()
			stale := <-answer
			if stale != "" {
				t.Fatalf("old leader %s, confirmed by answers held since before %s's election: %s", old.ID(), next.ID(), stale)
			}
			c.Heal()
			c.converged()
		})
	}
}

// timeoutNow sends n raft's TimeoutNow, the last step of a leadership transfer: n starts an
// election at once, and the other voters grant it although they have heard from a leader.
func timeoutNow(t *testing.T, n *Node) {
	t.Helper()
	trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	req := raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("test"), Addr: []byte(trans.LocalAddr())}}
	var resp raft.TimeoutNowResponse
	if err := trans.TimeoutNow(raft.ServerID(n.ID()), raft.ServerAddress(n.RaftAddr()), &req, &resp); err != nil {
		t.Fatalf("TimeoutNow to %s: %v", n.ID(), err)
	}
}
