package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/fsm"
	"github.com/flashstock/flashstock/placement"
	"github.com/flashstock/flashstock/placement/meta"
)

// A multi-group backup is a directory: one snapshot file per data group, each the stream
// GET /v1/backup?group=N answers (the format a single-group backup has, so each file is
// also what "stockd restore FILE" and "stockctl backup inspect FILE" read), and
// GroupBackupManifest naming them with their checksums and the placement they came from.
// The groups are backed up one after another, not at one instant: no operation spans
// groups yet (orders across groups are refused), so no state is split between two files.
const (
	GroupBackupManifest = "manifest.json"
	groupBackupKind     = "flashstock-groups-backup"
	groupBackupFormat   = 1
)

// GroupBackup is a multi-group backup's manifest.
type GroupBackup struct {
	Kind   string `json:"kind"`   // groupBackupKind
	Format int    `json:"format"` // groupBackupFormat
	// Placement is the cluster's placement when the backup began; a restore keeps its
	// slot table (which groups own which slots), never its nodes.
	Placement api.Placement     `json:"placement"`
	Groups    []GroupBackupFile `json:"groups"` // every data group, by id
}

// GroupBackupFile is one data group's snapshot in a multi-group backup.
type GroupBackupFile struct {
	ID           uint64 `json:"id"`
	File         string `json:"file"` // a name in the backup's directory
	Bytes        int64  `json:"bytes"`
	SHA256       string `json:"sha256"` // hex, of the file
	AppliedIndex uint64 `json:"applied_index"`
	StateHash    string `json:"state_hash"` // hex, as GET /v1/debug/state?group=N showed at AppliedIndex
	Node         string `json:"node"`       // the HTTP address that streamed it
}

// NewGroupBackup is the manifest of a backup of the cluster placed by p, its groups not
// yet filled in.
func NewGroupBackup(p api.Placement) GroupBackup {
	return GroupBackup{Kind: groupBackupKind, Format: groupBackupFormat, Placement: p}
}

// GroupBackupFileName is the file data group id's snapshot is written to.
func GroupBackupFileName(id uint64) string { return fmt.Sprintf("group-%d.snap", id) }

// DataGroups is the number of data groups the backup's placement has.
func (b *GroupBackup) DataGroups() int {
	n := 0
	for _, g := range b.Placement.Groups {
		if g.Kind == api.GroupData {
			n++
		}
	}
	return n
}

// ReadGroupBackup reads the multi-group backup in dir and checks it as a restore needs it:
// a manifest of this kind and format, one file for every data group of its placement and
// nothing else, each file's size and checksum as listed, each a snapshot that restores to
// the listed applied index and state hash (unpacked beside the backup and removed), and a
// slot table a new cluster of as many groups starts with (the only one this build makes).
func ReadGroupBackup(dir string) (GroupBackup, error) {
	raw, err := os.ReadFile(filepath.Join(dir, GroupBackupManifest))
	if err != nil {
		return GroupBackup{}, fmt.Errorf("group backup: %w", err)
	}
	var b GroupBackup
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return GroupBackup{}, fmt.Errorf("group backup: %s: %w", GroupBackupManifest, err)
	}
	if b.Kind != groupBackupKind || b.Format != groupBackupFormat {
		return GroupBackup{}, fmt.Errorf("group backup: %s is kind %q format %d; this build reads kind %q format %d",
			GroupBackupManifest, b.Kind, b.Format, groupBackupKind, groupBackupFormat)
	}
	g := b.DataGroups()
	// The slot table depends on the number of groups alone; the node is a stand-in.
	want, err := placement.Bootstrap([]api.PlacementNode{{ID: "restore", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}}, max(g, 1))
	if err != nil {
		return GroupBackup{}, fmt.Errorf("group backup: %w", err)
	}
	if !sameSlots(want, &b.Placement) {
		return GroupBackup{}, fmt.Errorf("group backup: the placement's slot table is not the one a cluster of %d data groups starts with; this build cannot restore it", g)
	}
	if len(b.Groups) != g {
		return GroupBackup{}, fmt.Errorf("group backup: %d group files for %d data groups", len(b.Groups), g)
	}
	for i, f := range b.Groups {
		if f.ID != uint64(i+1) || f.File != GroupBackupFileName(f.ID) {
			return GroupBackup{}, fmt.Errorf("group backup: entry %d is group %d in %q, want group %d in %q", i, f.ID, f.File, i+1, GroupBackupFileName(uint64(i+1)))
		}
		if err := checkGroupFile(dir, f); err != nil {
			return GroupBackup{}, fmt.Errorf("group backup: group %d: %w", f.ID, err)
		}
	}
	return b, nil
}

// sameSlots reports whether a and b give every data group the same slots.
func sameSlots(a, b *api.Placement) bool {
	slots := func(p *api.Placement) map[uint64][]api.SlotRange {
		m := map[uint64][]api.SlotRange{}
		for _, g := range p.Groups {
			if g.Kind == api.GroupData {
				m[g.ID] = g.Slots
			}
		}
		return m
	}
	sa, sb := slots(a), slots(b)
	if len(sa) != len(sb) {
		return false
	}
	for id, s := range sa {
		if !slices.Equal(s, sb[id]) {
			return false
		}
	}
	return true
}

func checkGroupFile(dir string, f GroupBackupFile) error {
	file, err := os.Open(filepath.Join(dir, f.File))
	if err != nil {
		return err
	}
	defer file.Close()
	sum := sha256.New()
	info, err := fsm.InspectSnapshot(io.TeeReader(file, sum), dir)
	if err != nil {
		return fmt.Errorf("%s: %w", f.File, err)
	}
	// The snapshot's reader may stop at its end marker: the checksum covers the file.
	n, err := io.Copy(sum, file)
	if err != nil {
		return fmt.Errorf("%s: %w", f.File, err)
	}
	switch got := hex.EncodeToString(sum.Sum(nil)); {
	case info.Bytes+n != f.Bytes:
		return fmt.Errorf("%s: %d bytes, the manifest lists %d", f.File, info.Bytes+n, f.Bytes)
	case got != f.SHA256:
		return fmt.Errorf("%s: sha256 %s, the manifest lists %s", f.File, got, f.SHA256)
	case info.AppliedIndex != f.AppliedIndex || hex.EncodeToString(info.StateHash[:]) != f.StateHash:
		return fmt.Errorf("%s: state at %d with hash %x, the manifest lists %d with %s", f.File, info.AppliedIndex, info.StateHash, f.AppliedIndex, f.StateHash)
	}
	return nil
}

// SeedGroupsFromBackup makes cfg.DataDir the first node of a NEW multi-group cluster whose
// state is the multi-group backup in dir (ReadGroupBackup checks it first): each data
// group seeded as SeedFromBackup seeds group 1 (group 1 at the data dir's root, the others
// in groups/<id>/), and the meta group with the first placement of a cluster of this node
// alone and the backup's number of data groups, whose slot table is the backup's. Start
// the node afterwards with cfg and Groups set to that number (no Bootstrap: the data dir
// has raft state); others join it and the controller spreads the groups over them.
// cfg.HTTPAdvertise (or cfg.HTTPAddr) must be the node's real HTTP address, as the raft
// one: the placement lists both. The results are by data group, from 1.
func SeedGroupsFromBackup(cfg Config, dir string) ([]SeedResult, error) {
	addr, err := seedAddr(cfg)
	if err != nil {
		return nil, err
	}
	httpAddr := cfg.HTTPAdvertise
	if httpAddr == "" {
		httpAddr = cfg.HTTPAddr
	}
	if httpAddr == "" || hasPortZero(httpAddr) {
		return nil, fmt.Errorf("seed: HTTP address %q must be the node's real address (the placement lists it)", httpAddr)
	}
	b, err := ReadGroupBackup(dir)
	if err != nil {
		return nil, err
	}
	if HasState(cfg.DataDir) || joinedDir(cfg.DataDir) {
		return nil, fmt.Errorf("seed: %s already holds raft state: a restore seeds a new cluster into an empty data dir", cfg.DataDir)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, groupsDirName)); err == nil {
		return nil, fmt.Errorf("seed: %s already holds %s: a restore seeds a new cluster into an empty data dir", cfg.DataDir, groupsDirName)
	}
	// The meta group last: a dir whose data groups failed to seed is not a cluster's
	// (heldGroups counts a dir as multi-group by its meta group).
	var out []SeedResult
	for _, f := range b.Groups {
		res, err := seedGroupFile(cfg, filepath.Join(dir, f.File), groupDir(cfg.DataDir, f.ID), addr)
		if err != nil {
			return nil, fmt.Errorf("group %d: %w", f.ID, err)
		}
		out = append(out, res)
	}
	m := meta.New()
	cmd, err := meta.Encode(meta.Command{Kind: meta.Bootstrap, DataGroups: b.DataGroups(),
		Nodes: []api.PlacementNode{{ID: cfg.ID, RaftAddr: addr, HTTPAddr: httpAddr}}})
	if err != nil {
		return nil, err
	}
	if res := m.Apply(1, cmd); res.Err != nil {
		return nil, fmt.Errorf("seed: the meta group's placement: %w", res.Err)
	}
	if p := m.Placement(); !sameSlots(&p, &b.Placement) {
		return nil, errors.New("seed: the new placement's slot table differs from the backup's")
	}
	snap, err := m.Snapshot()
	if err != nil {
		return nil, err
	}
	metaDir := groupDir(cfg.DataDir, api.MetaGroupID)
	if err := os.MkdirAll(metaDir, 0o700); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := seedRaft(cfg, metaDir, addr, 1, metaSnapshot(snap)); err != nil {
		return nil, fmt.Errorf("meta group: %w", err)
	}
	return out, nil
}

func seedGroupFile(cfg Config, path, dir, addr string) (SeedResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return SeedResult{}, err
	}
	defer f.Close()
	return seedGroup(cfg, dir, addr, f)
}
