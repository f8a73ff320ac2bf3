package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flashstock/flashstock/api"
)

// A multi-group node hosts what the placement says. A data replica the placement no
// longer gives this node was removed from its group's raft configuration first (the
// controller records a Remove step only after raft committed it), so once this node's
// placement is current it stops that replica alone and deletes its files:
//
//  1. the group stops (its raft, loops and stores) and leaves the process's groups;
//  2. a tombstone, groups/<id>.removed, is written durably;
//  3. the group's files are deleted: groups/<id>/, or for group 1, whose files are the
//     data dir's root (groupDir), the files a group keeps there (groupRootFiles), never
//     groups/ nor anything else an operator put beside them;
//  4. the tombstone goes.
//
// A crash before 2 leaves the group whole: the restart reopens it and step 1 comes again.
// A crash after 2 leaves the tombstone, and start finishes the deletion before it looks
// at which groups the dir holds (finishRemovals), so a half-deleted group is never opened.

// removedSuffix names a group's tombstone under groups/: not a number, so heldGroups never
// takes it for a group.
const removedSuffix = ".removed"

// dataGroupsFileName, under groups/, records the number of data groups a multi-group
// cluster was bootstrapped with: once replicas move, the bootstrapping node's dirs no
// longer tell (its group 1 may be gone from the root).
const dataGroupsFileName = "data_groups"

// groupRootFiles are the files a group keeps in its dir: what deleting group 1, whose dir
// is the data dir's root, deletes. Every name a group writes is here: the log store of
// either kind and an interrupted migration's, its lock, the state file and its marks, the
// snapshots.
var groupRootFiles = []string{
	raftDBName, raftDBName + ".migrating", walDirName, walDirName + ".migrating", lockName,
	stateDBName, stateDBName + ".tmp", uncleanName, uncleanName + ".tmp", untrustedName, "snapshots",
}

func writeDataGroups(dataDir string, groups int) error {
	dir := filepath.Join(dataDir, groupsDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", groupsDirName, err)
	}
	if err := writeSynced(filepath.Join(dir, dataGroupsFileName), []byte(strconv.Itoa(groups)+"\n")); err != nil {
		return fmt.Errorf("record the number of data groups: %w", err)
	}
	return nil
}

// readDataGroups is the number of data groups recorded at bootstrap; ok is false for a
// dir without the record (a joined node's, or one bootstrapped by an older build).
func readDataGroups(dataDir string) (groups int, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dataDir, groupsDirName, dataGroupsFileName))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if groups, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil || groups < 1 {
		return 0, false, fmt.Errorf("%s: not a number of groups: %q", dataGroupsFileName, b)
	}
	return groups, true, nil
}

// deleteGroupFiles removes group id's files from dataDir, crash-safe as described above.
func deleteGroupFiles(dataDir string, id uint64) error {
	groups := filepath.Join(dataDir, groupsDirName)
	if err := os.MkdirAll(groups, 0o700); err != nil {
		return err
	}
	tomb := filepath.Join(groups, strconv.FormatUint(id, 10)+removedSuffix)
	if err := writeSynced(tomb, nil); err != nil {
		return fmt.Errorf("group %d: write its tombstone: %w", id, err)
	}
	return finishRemoval(dataDir, id, tomb)
}

func finishRemoval(dataDir string, id uint64, tomb string) error {
	dir := groupDir(dataDir, id)
	if id == legacyGroup {
		for _, name := range groupRootFiles {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("group %d: delete %s: %w", id, name, err)
			}
		}
		if err := syncDir(dir); err != nil {
			return err
		}
	} else if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("group %d: delete its dir: %w", id, err)
	}
	if err := os.Remove(tomb); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(tomb))
}

// finishRemovals completes the deletions a crash interrupted, before start reads which
// groups the data dir holds.
func finishRemovals(dataDir string) error {
	entries, err := os.ReadDir(filepath.Join(dataDir, groupsDirName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", groupsDirName, err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), removedSuffix)
		id, perr := strconv.ParseUint(name, 10, 64)
		if !ok || perr != nil || e.IsDir() {
			continue
		}
		if err := finishRemoval(dataDir, id, filepath.Join(dataDir, groupsDirName, e.Name())); err != nil {
			return fmt.Errorf("finish removing group %d: %w", id, err)
		}
	}
	return nil
}

// placementCurrent reports whether this node's placement is new enough to act on a
// replica's absence from it: the meta replica leads, or has heard from a leader since it
// started, and its state machine has applied every command it knows committed. While it
// replays its log after a restart it passes through older placements, some from before a
// group came to this node, and those must not delete it.
//
// raft's own AppliedIndex will not do: raft advances it when it hands entries to the state
// machine's goroutine, before they are applied, so right after a restart it can equal the
// commit index while the machine still shows an old placement. The machine's own applied
// index counts commands only, so the committed entries past it are read from the log: any
// command among them is one the machine has yet to apply.
func (n *Node) placementCurrent() bool {
	m := n.metaGroup
	if m.failed() != nil {
		return false
	}
	if m.raft.State() != raft.Leader && m.raft.LastContact().IsZero() {
		return false
	}
	for i := m.meta.Applied() + 1; i <= m.raft.CommitIndex(); i++ {
		var l raft.Log
		if err := m.logStore.GetLog(i, &l); err != nil || l.Type == raft.LogCommand {
			return false
		}
	}
	return true
}

// dropUnplaced stops and deletes each data replica this node hosts that p does not give
// it, once p is current. Only placementLoop calls it, the one goroutine that opens groups
// after start, so a group is never opened and dropped at once.
func (n *Node) dropUnplaced(p *api.Placement) {
	if !n.placementCurrent() {
		return
	}
	// p is the newest placement placementLoop has taken, and the meta replica may have
	// applied newer ones since (a restart replays them quickly): judged current now, the
	// replica must not act on an older one, which may predate a group's arrival here.
	// The loop comes back with the newest, hosts what it adds, then drops.
	if latest := n.metaGroup.meta.Placement(); latest.Version != p.Version {
		return
	}
	for _, g := range n.dataGroups() {
		i := slices.IndexFunc(p.Groups, func(pg api.Group) bool { return pg.ID == g.id })
		if i >= 0 && slices.ContainsFunc(p.Groups[i].Replicas, func(r api.Replica) bool { return r.Node == n.cfg.ID }) {
			continue
		}
		if n.ctx.Err() != nil {
			return
		}
		g.log.Info("the placement no longer gives this node a replica of the group: stopping it and deleting its files", "version", p.Version)
		if err := n.dropGroup(g); err != nil {
			g.log.Error("deleting a removed replica", "error", err)
		}
	}
}

// dropGroup stops g, takes it out of the process's groups and deletes its files.
func (n *Node) dropGroup(g *Group) error {
	serr := g.stop()
	n.groupsMu.Lock()
	if n.groups[g.id] == g {
		delete(n.groups, g.id)
	}
	n.groupsMu.Unlock()
	return errors.Join(serr, deleteGroupFiles(n.cfg.DataDir, g.id))
}

// checkLeft stops the process once it has left a multi-group cluster: drained, out of the
// meta group, and unlisted by RemoveNode. Its own meta replica does not learn the last
// two (a leader stops replicating to a server it removed), so when this node is draining
// and has not heard from a meta leader for a while, it asks the placement's other nodes:
// one with a leader and a newer placement that does not list it settles it. It reports
// whether the process is stopping.
func (n *Node) checkLeft(p *api.Placement) bool {
	m := n.metaGroup
	if pn := n.placedNode(n.cfg.ID); pn == nil || pn.State != api.NodeDraining || m.raft.State() == raft.Leader ||
		time.Since(m.raft.LastContact()) < 3*n.cfg.ElectionTimeout {
		return false
	}
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	for _, pn := range p.Nodes {
		if pn.ID == n.cfg.ID {
			continue
		}
		var cl api.Cluster
		// Only a view newer than this node's, which lists it draining, can tell of the
		// RemoveNode that followed: a peer still replaying older placements cannot.
		if err := n.getJSON(ctx, pn.HTTPAddr, "/v1/cluster", &cl); err != nil || cl.Leader == "" || cl.PlacementVersion <= p.Version {
			continue
		}
		if slices.ContainsFunc(cl.Nodes, func(o api.Node) bool { return o.ID == n.cfg.ID }) {
			return false
		}
		n.log.Warn("this node was drained and removed from the cluster; stopping", "told_by", pn.ID)
		// A placement without this node gives it no replica: one whose removal its meta
		// replica did not apply before leaving goes now, as dropUnplaced would have.
		for _, g := range n.dataGroups() {
			if err := n.dropGroup(g); err != nil {
				g.log.Error("deleting a removed replica", "error", err)
			}
		}
		m.leftCluster.Store(true)
		go n.stopSelf() // not n.spawn: Shutdown waits for the spawned loops
		return true
	}
	return false
}
