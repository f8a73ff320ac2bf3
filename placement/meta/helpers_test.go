package meta_test

import (
	"errors"
	"testing"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

func node(id string) api.PlacementNode {
	return api.PlacementNode{ID: id, RaftAddr: id + ":7000", HTTPAddr: id + ":8000"}
}

func nodes(ids ...string) []api.PlacementNode {
	var ns []api.PlacementNode
	for _, id := range ids {
		ns = append(ns, node(id))
	}
	return ns
}

func encode(t testing.TB, c meta.Command) []byte {
	t.Helper()
	b, err := meta.Encode(c)
	if err != nil {
		t.Fatalf("encode %+v: %v", c, err)
	}
	return b
}

// apply proposes c at the next index and fails the test if it is refused.
func apply(t testing.TB, m *meta.Machine, c meta.Command) meta.Result {
	t.Helper()
	res := m.Apply(m.Applied()+1, encode(t, c))
	if res.Err != nil {
		t.Fatalf("apply %s: %v", c.Kind, res.Err)
	}
	return res
}

// bootstrapped is a machine holding version 1 of a cluster of n1, n2, n3 with two data
// groups, applied at index 1.
func bootstrapped(t testing.TB) *meta.Machine {
	t.Helper()
	m := meta.New()
	apply(t, m, meta.Command{Kind: meta.Bootstrap, Nodes: nodes("n1", "n2", "n3"), DataGroups: 2})
	return m
}

// rule is the placement rule err broke, or "" for nil; it fails the test for an error
// that is not a *placement.Error.
func rule(t testing.TB, err error) placement.Rule {
	t.Helper()
	if err == nil {
		return ""
	}
	var e *placement.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *placement.Error", err, err)
	}
	return e.Rule
}

func snapshot(t testing.TB, m *meta.Machine) []byte {
	t.Helper()
	b, err := m.Snapshot()
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return b
}
