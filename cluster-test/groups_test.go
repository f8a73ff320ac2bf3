package clustertest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/api"
)

// Terms are per raft group: two groups' leaders elected in the same term number are no
// conflict, two winners of one group's term are; a line without a group (a single-group
// build) is group 1's.
func TestCheckOneLeaderPerTerm_PerGroup(t *testing.T) {
	dir := t.TempDir()
	won := func(group string, term int) string {
		return fmt.Sprintf("2026-12-07T09:04:50.700Z [INFO]  stockd.raft: election won: %snode=nX term=%d tally=2\n", group, term)
	}
	logs := map[string]string{
		"n1": won("group=1 ", 4) + won("group=2 ", 5) + won("", 7),
		"n2": won("group=2 ", 4) + won("group=3 ", 5) + won("group=1 ", 7),
		"n3": won("group=0 ", 4) + won("group=3 ", 5),
	}
	var members []*Member
	for _, id := range []string{"n1", "n2", "n3"} {
		m := &Member{ID: id, LogPath: filepath.Join(dir, id+".log")}
		if err := os.WriteFile(m.LogPath, []byte(logs[id]), 0o644); err != nil {
			t.Fatal(err)
		}
		members = append(members, m)
	}
	problems, pairs := checkOneLeaderPerTerm(members)
	want := []string{"TWO LEADERS in group 1, term 7: n1, n2", "TWO LEADERS in group 3, term 5: n2, n3"}
	if !slices.Equal(problems, want) || pairs != 6 {
		t.Fatalf("got %q and %d (group, term) pairs, want %q and 6", problems, pairs, want)
	}
}

// The workload's SKUs give every data group the same number, each in the group whose
// slots hold it, and the same ones for the same placement (a seed replays them).
func TestSkusPerGroup(t *testing.T) {
	lay := Layout{Version: 3, Groups: []api.Group{{ID: api.MetaGroupID, Kind: api.GroupMeta}}}
	for g := range 6 {
		from, to := g*api.SlotCount/6, (g+1)*api.SlotCount/6
		lay.Groups = append(lay.Groups, api.Group{ID: uint64(g + 1), Kind: api.GroupData, Slots: []api.SlotRange{{From: from, To: to}}})
	}
	skus, err := skusPerGroup(lay, 3)
	if err != nil {
		t.Fatal(err)
	}
	per := map[uint64]int{}
	for _, sku := range skus {
		g := lay.GroupOf(sku)
		slot := api.SlotOf(sku)
		if r := lay.Group(g).Slots[0]; slot < r.From || slot >= r.To {
			t.Errorf("%s (slot %d) placed in group %d, which owns %+v", sku, slot, g, r)
		}
		per[g]++
	}
	if len(per) != 6 {
		t.Errorf("SKUs per group %v, want 3 in each of 6", per)
	}
	for g, n := range per {
		if n != 3 {
			t.Errorf("group %d has %d SKUs, want 3 (all: %v)", g, n, per)
		}
	}
	again, _ := skusPerGroup(lay, 3)
	if strings.Join(again, ",") != strings.Join(skus, ",") {
		t.Errorf("two picks differ: %v and %v", skus, again)
	}
}
