package clustertest

import (
	"context"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// TestClockSkew is Jepsen's clock nemesis on a 3-node cluster: one member at a time has
// its wall clock bumped hours ahead or behind (stockd's faults build), leadership is moved
// onto and off the skewed member or its leader is killed, while buyers deduct with
// retried request ids (answers dropped after the server sent them) and a probe places
// short holds. Besides the suite's checks (linearizable, no oversell, exactly once,
// convergence): no hold is seen released before its TTL or held past TTL + holdLateBound,
// and cluster time ends near real time.
func TestClockSkew(t *testing.T) {
	runScenario(t, func(t *testing.T, seed int64) {
		w := defaultWorkload()
		w.DropResponses = 0.2
		cfg := ClusterConfig{Slots: 3, FaultControl: true, Extra: []string{"--expire-interval", probeExpireInterval.String()}}
		e := newEnv(t, settings, "clock-skew", seed, cfg, w)
		const holdSKU = "held-sku"
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := client.New(clientConfig(e.c.HTTPAddrs(e.members...), nil))
		if err != nil {
			e.fatal("client: %v", err)
		}
		defer admin.Close()
		if _, err := admin.CreateSKU(ctx, holdSKU, 1_000_000); err != nil {
			e.fatal("create %s: %v", holdSKU, err)
		}
		probe, err := startHoldProbe(e.c.HTTPAddrs(e.members...), holdSKU, e.tag, seed)
		if err != nil {
			e.fatal("hold probe: %v", err)
		}
		e.startLoad()
		e.sleep(time.Second)

		var skewed *Member
		for range e.rounds(4) {
			// One member at a time is skewed: cluster time trusts a majority of clocks.
			m := e.c.Members[e.rng.IntN(len(e.c.Members))]
			if skewed != nil && skewed != m {
				e.setClock(skewed, 0)
			}
			offset := time.Duration(1+e.rng.IntN(3)) * time.Hour
			if e.rng.IntN(2) == 0 {
				offset = -offset
			}
			e.setClock(m, offset)
			skewed = m
			switch e.rng.IntN(3) {
			case 0, 1: // leadership onto the skewed member, or off it
				to := m
				if e.rng.IntN(3) == 0 {
					to = e.c.Members[e.rng.IntN(len(e.c.Members))]
				}
				e.transferLeadership(admin, to)
			case 2:
				l := e.leader()
				e.events.fault("SIGKILL leader %s", l.ID)
				e.c.Kill(l)
				if _, err := e.waitProgress(10 * time.Second); err != nil {
					e.fail("after killing leader %s: %v", l.ID, err)
				}
				e.sleep(time.Duration(300+e.rng.IntN(700)) * time.Millisecond)
				e.c.Start(l)
			}
			e.sleep(time.Duration(1500+e.rng.IntN(1500)) * time.Millisecond)
		}
		if skewed != nil && e.rng.IntN(2) == 0 {
			e.setClock(skewed, 0) // sometimes the skew stays to the end
		}
		// The scenario's own checks before finish, so that a failure leaves its evidence.
		e.heal()
		holds := probe.stop()
		problems, placed, worstLate := checkHolds(holds)
		for _, p := range problems {
			e.fail("HOLDS: %s", p)
		}
		if placed == 0 {
			e.fail("HOLDS: no hold was placed, nothing was checked")
		}
		e.checkClusterTime(ctx)
		t.Logf("clock-skew: %d holds placed and checked, worst lateness %v (bound %v)", placed, worstLate.Round(time.Millisecond), holdLateBound)
		e.finish()
	})
}

// setClock bumps m's wall clock to real time + d.
func (e *env) setClock(m *Member, d time.Duration) {
	e.t.Helper()
	e.events.fault("clock of %s set to %+v", m.ID, d)
	if err := e.c.SetClockOffset(context.Background(), m, d); err != nil {
		e.fatal("%v", err)
	}
}

// transferLeadership asks the cluster to hand leadership to m; a refusal (m is down or
// behind) is an event, not a failure.
func (e *env) transferLeadership(c *client.Client, m *Member) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.TransferLeadership(ctx, m.ID); err != nil {
		e.events.add("leadership to %s refused: %v", m.ID, err)
		return
	}
	e.events.fault("leadership moved to %s", m.ID)
}

// checkClusterTime fails the scenario when cluster time, as the leader reports it, is not
// near the test's own clock (every node runs on this machine's one real clock; only their
// readings were shifted).
func (e *env) checkClusterTime(ctx context.Context) {
	l := e.leader()
	var self api.Node
	if err := e.c.getJSON(ctx, l.HTTPAddr, "/v1/cluster/self", &self); err != nil {
		e.fail("CLUSTER TIME: %v", err)
		return
	}
	drift := time.Duration(self.ClusterTimeMS-time.Now().UnixMilli()) * time.Millisecond
	e.t.Logf("cluster time on leader %s: %+v from real time", l.ID, drift)
	if drift > time.Second || drift < -holdLateBound {
		e.fail("CLUSTER TIME: %v from real time on leader %s, want within [-%v, +1s]", drift, l.ID, holdLateBound)
	}
}
