package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// A cluster whose members all run this build raises its apply level by itself, through the
// log, so every replica has it.
func TestApplyLevel_RaisedOnceEveryMemberKnowsIt(t *testing.T) {
	c := newCluster(t, 3, nil)
	eventually(t, 10*time.Second, func() error {
		for _, n := range c.Running() {
			if got := n.cluster.fsm.Level(); got != fsm.ApplyLevel {
				return fmt.Errorf("%s is at level %d", n.ID(), got)
			}
		}
		return nil
	})
	var self api.Node
	c.mustCall(c.Node(1).HTTPAddr(), "GET", "/v1/cluster/self", nil, &self)
	if self.ApplyLevel != fsm.ApplyLevel || self.MaxApplyLevel != fsm.ApplyLevel {
		t.Fatalf("self = %+v, want apply level and max %d", self, fsm.ApplyLevel)
	}
}

// A node of an older build (it reports no max_apply_level) may not join a cluster whose log
// is already past level 0: it would apply the newer rules the old way.
func TestApplyLevel_OlderBuildMayNotJoin(t *testing.T) {
	c := newCluster(t, 1, nil)
	_, l := c.WaitLeader()
	eventually(t, 10*time.Second, func() error {
		if l.cluster.fsm.Level() < 1 {
			return errors.New("level not raised yet")
		}
		return nil
	})
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What a build before apply levels answers.
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "old", "role": "follower"})
	}))
	defer old.Close()
	_, err := c.call(l.HTTPAddr(), "POST", "/v1/cluster/members",
		api.JoinRequest{ID: "old", RaftAddr: "127.0.0.1:1", HTTPAddr: old.Listener.Addr().String()}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.FailedPrecondition {
		t.Fatalf("join of an older build: %v, want failed_precondition", err)
	}
	if cfg, _, _ := l.cluster.configuration(); len(cfg.Servers) != 1 {
		t.Fatalf("configuration %v: the older build was added", cfg.Servers)
	}
}
