package node

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
)

// checkRemoval refuses to remove voter id when the voters that would remain could not
// commit anything: fewer of them are healthy than a majority of the remaining voters.
// Healthy means the leader itself, or a voter that answers GET /v1/cluster/self within a
// second and heard from the leader within 3×HeartbeatTimeout (the same view GET /v1/cluster
// gives). Examples with three voters: removing a dead one leaves two healthy of two — fine;
// with one dead, removing a healthy one leaves one healthy of two — refused, as the cluster
// would stall until the dead one came back. With two voters, removing either leaves one
// healthy of one: allowed (the cluster then has no fault tolerance; the operator asked for
// a one-node cluster). DELETE ...?force=true skips this check (stockctl cluster leave
// --force); the last voter can never be removed, forced or not, as raft needs one voter.
func (g *Group) checkRemoval(ctx context.Context, cfg raft.Configuration, id string) error {
	var remaining []raft.Server
	for _, s := range cfg.Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != id {
			remaining = append(remaining, s)
		}
	}
	need := len(remaining)/2 + 1
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var mu sync.Mutex
	var healthy, unhealthy []string
	var wg sync.WaitGroup
	for _, s := range remaining {
		if string(s.ID) == g.cfg.ID {
			mu.Lock() // the checks of members listed before this one are running
			healthy = append(healthy, g.cfg.ID)
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func(sid string) {
			defer wg.Done()
			ok := false
			if addr := g.memberHTTP(sid); addr != "" {
				got, err := g.srv.askSelf(ctx, addr)
				ok = err == nil && got.LastContactMS >= 0 && time.Duration(got.LastContactMS)*time.Millisecond < 3*g.cfg.HeartbeatTimeout
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				healthy = append(healthy, sid)
			} else {
				unhealthy = append(unhealthy, sid)
			}
		}(string(s.ID))
	}
	wg.Wait()
	if len(healthy) >= need {
		return nil
	}
	return api.Errorf(api.FailedPrecondition,
		"removing %q would leave %d voters of which %d are healthy (%s), fewer than the %d needed to commit; unhealthy: %s. Remove an unhealthy member instead, or force it",
		id, len(remaining), len(healthy), strings.Join(healthy, ","), need, strings.Join(unhealthy, ","))
}

func queryBool(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	return strconv.ParseBool(s)
}

// pruneMemberRecords removes, on the leader, the member records of servers that are not in
// the raft configuration. Normal joins and leaves never leave such records behind (a record
// is written after its server is added and removed before it is removed), but a cluster
// recovered from a lost quorum or seeded from a backup inherits the old cluster's records.
//
// The records are read before the configuration: a record present then was written after
// its server was added, so the configuration read afterwards lists it unless it was
// removed since; a join racing with the prune is never mistaken for a stale record.
func (g *Group) pruneMemberRecords(ctx context.Context) error {
	if g.raft.State() != raft.Leader {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
	defer cancel()
	members, err := g.fsm.Members()
	if err != nil {
		return err
	}
	cfg, _, err := g.configuration()
	if err != nil {
		return err
	}
	inConfig := map[string]bool{}
	for _, s := range cfg.Servers {
		inConfig[string(s.ID)] = true
	}
	for _, m := range members {
		if inConfig[m.ID] {
			continue
		}
		g.log.Info("removing the record of a member that is not in the configuration", "id", m.ID, "http", m.HTTPAddr)
		if _, err := g.propose(ctx, fsm.Command{Kind: fsm.KindRemoveMember, Member: fsm.Member{ID: m.ID}}); err != nil {
			return err
		}
	}
	return nil
}
