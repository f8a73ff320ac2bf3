package placement

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// testNodes lists n nodes n1..nN with addresses.
func testNodes(n int) []api.PlacementNode {
	var nodes []api.PlacementNode
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		nodes = append(nodes, api.PlacementNode{ID: id, RaftAddr: "127.0.0.1:70" + fmt.Sprint(i), HTTPAddr: "127.0.0.1:80" + fmt.Sprint(i)})
	}
	return nodes
}

func bootstrap(t testing.TB, nodes, groups int) *api.Placement {
	t.Helper()
	p, err := Bootstrap(testNodes(nodes), groups)
	if err != nil {
		t.Fatalf("bootstrap %d nodes, %d groups: %v", nodes, groups, err)
	}
	return p
}

func TestValidate_NamesTheBrokenRule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(p *api.Placement)
		want   Rule
	}{
		{"version 0", func(p *api.Placement) { p.Version = 0 }, ErrVersion},
		{"other slot count", func(p *api.Placement) { p.SlotCount = 16384 }, ErrSlotCount},
		{"node without id", func(p *api.Placement) { p.Nodes[0].ID = "" }, ErrNodeID},
		{"node without raft address", func(p *api.Placement) { p.Nodes[1].RaftAddr = "" }, ErrNodeAddr},
		{"node without HTTP address", func(p *api.Placement) { p.Nodes[1].HTTPAddr = "" }, ErrNodeAddr},
		{"unknown node state", func(p *api.Placement) { p.Nodes[2].State = "gone" }, ErrNodeState},
		{"node listed twice", func(p *api.Placement) { p.Nodes[1].ID = p.Nodes[0].ID }, ErrNodeTwice},
		{"group listed twice", func(p *api.Placement) { p.Groups[2].ID = 1 }, ErrGroupTwice},
		{"unknown kind", func(p *api.Placement) { p.Groups[1].Kind = "index" }, ErrGroupKind},
		{"meta group off id 0", func(p *api.Placement) { p.Groups[0].ID = 9 }, ErrGroupKind},
		{"data group on id 0", func(p *api.Placement) { p.Groups[0].Kind = api.GroupData }, ErrGroupKind},
		{"no meta group", func(p *api.Placement) { p.Groups = p.Groups[1:] }, ErrMetaGroup},
		{"no data group", func(p *api.Placement) { p.Groups = p.Groups[:1] }, ErrNoDataGroup},
		{"replica on unknown node", func(p *api.Placement) { p.Groups[1].Replicas[0].Node = "n9" }, ErrReplicaNode},
		{"node twice in a group", func(p *api.Placement) { p.Groups[1].Replicas[1].Node = p.Groups[1].Replicas[0].Node }, ErrReplicaTwice},
		{"unknown role", func(p *api.Placement) { p.Groups[1].Replicas[0].Role = "witness" }, ErrReplicaRole},
		{"no voter", func(p *api.Placement) {
			for i := range p.Groups[1].Replicas {
				p.Groups[1].Replicas[i].Role = api.Nonvoter
			}
		}, ErrNoVoter},
		{"two moves at once", func(p *api.Placement) {
			p.Groups[1].Replicas[0].Role = api.Nonvoter
			p.Groups[1].Replicas[1].Role = api.Nonvoter
			p.Groups[1].PreferredLeader = p.Groups[1].Replicas[2].Node
		}, ErrTwoMoves},
		{"seven meta voters", func(p *api.Placement) {
			for i := range p.Groups[0].Replicas {
				p.Groups[0].Replicas[i].Role = api.Voter
			}
		}, ErrMetaVoters},
		{"no preferred leader", func(p *api.Placement) { p.Groups[1].PreferredLeader = "" }, ErrPreferred},
		{"preferred leader not a voter", func(p *api.Placement) {
			p.Groups[1].Replicas[0].Role = api.Nonvoter
			p.Groups[1].PreferredLeader = p.Groups[1].Replicas[0].Node
		}, ErrPreferred},
		{"empty range", func(p *api.Placement) { p.Groups[1].Slots[0].To = p.Groups[1].Slots[0].From }, ErrSlotRange},
		{"range past the end", func(p *api.Placement) { p.Groups[2].Slots[0].To = api.SlotCount + 1 }, ErrSlotRange},
		{"negative range", func(p *api.Placement) { p.Groups[1].Slots[0].From = -1 }, ErrSlotRange},
		{"meta group owns slots", func(p *api.Placement) { p.Groups[0].Slots = []api.SlotRange{{From: 0, To: 1}} }, ErrMetaSlots},
		{"slot of no group", func(p *api.Placement) { p.Groups[1].Slots[0].To-- }, ErrSlotUnowned},
		{"slot of two groups", func(p *api.Placement) { p.Groups[1].Slots[0].To++ }, ErrSlotOwnedTwice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := bootstrap(t, 7, 2) // its meta group has two nonvoters: valid
			tc.mutate(p)
			err := Validate(p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Validate = %v, want rule %s", err, tc.want)
			}
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.InvalidArgument {
				t.Errorf("travels as %v, want invalid_argument", ae)
			}
		})
	}
}

// The issue's `group list --json` shape: {"groups":[{"id":...,"kind":"data"|"meta",
// "leader":<node id>,"replicas":[...]}]}.
func TestPlacement_JSONFieldNames(t *testing.T) {
	p := bootstrap(t, 1, 1)
	p.Groups[1].Leader = "n1"
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"slot_count":1024,` +
		`"nodes":[{"id":"n1","raft_addr":"127.0.0.1:701","http_addr":"127.0.0.1:801","state":"active"}],` +
		`"groups":[{"id":0,"kind":"meta","preferred_leader":"n1","replicas":[{"node":"n1","role":"voter"}]},` +
		`{"id":1,"kind":"data","leader":"n1","preferred_leader":"n1","replicas":[{"node":"n1","role":"voter"}],"slots":[{"from":0,"to":1024}]}]}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
}

// Decoding any bytes and validating never panics; whatever validates is routable (every
// SKU finds its group) and planned for with steps that apply.
func FuzzValidate(f *testing.F) {
	for _, p := range []*api.Placement{bootstrap(f, 1, 1), bootstrap(f, 3, 2), bootstrap(f, 5, 6)} {
		b, _ := json.Marshal(p)
		f.Add(b)
	}
	// Live state is not validated: here it names a nonvoter, whose move Plan abandons.
	stale := bootstrap(f, 2, 1)
	stale = must(AddNode(stale, api.PlacementNode{ID: "n3", RaftAddr: "r3", HTTPAddr: "h3"}))
	stale = must(Apply(stale, Step{Group: 1, Kind: AddNonvoter, Node: "n3"}))
	stale = must(SetNodeState(stale, "n3", api.NodeDraining))
	stale.Groups[1].Leader = "n3"
	b, _ := json.Marshal(stale)
	f.Add(b)
	f.Add([]byte(`{"version":1,"slot_count":1024,"groups":[{"id":0,"kind":"meta"}]}`))
	f.Add([]byte(`{"version":1,"slot_count":1024,"nodes":[{"id":"a","raft_addr":"r","http_addr":"h","state":"active"}],` +
		`"groups":[{"id":0,"kind":"meta","preferred_leader":"a","replicas":[{"node":"a","role":"voter"}]},` +
		`{"id":1,"kind":"data","preferred_leader":"a","replicas":[{"node":"a","role":"voter"}],"slots":[{"from":0,"to":512},{"from":512,"to":1024}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p api.Placement
		if json.Unmarshal(b, &p) != nil {
			return
		}
		err := Validate(&p)
		if err == nil {
			for _, sku := range []string{"", "a", "sku-1", "SKU-000042"} {
				if p.GroupOf(sku) == nil {
					t.Fatalf("valid placement routes %q nowhere: %s", sku, b)
				}
			}
			// Every step the planner gives applies and keeps the placement valid.
			live := []string{"a", "n1", "n2"}
			steps, err := Plan(&p, live)
			if err != nil {
				t.Fatalf("Plan refuses a valid placement: %v", err)
			}
			for _, s := range steps {
				q, err := Apply(&p, s)
				if err != nil {
					t.Fatalf("Plan gave %v, Apply refuses it: %v", s, err)
				}
				if err := Validate(q); err != nil {
					t.Fatalf("%v leaves an invalid placement: %v", s, err)
				}
			}
			return
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Fatalf("Validate error %T %v is not a *placement.Error", err, err)
		}
	})
}
