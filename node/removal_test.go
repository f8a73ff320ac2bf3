package node

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// A group's deletion cut off by a crash after its tombstone is finished at start, before
// the node reads which groups its dir holds, so a half-deleted group is never reopened.
// Group 1's files are the root's and only they go, never what else sits there; and the
// bootstrapping node's dir, group 1 gone, still reads as a multi-group dir of its number
// of groups.
func TestRemoval_TombstoneIsFinishedBeforeStartReadsTheGroups(t *testing.T) {
	c := newMultiGroup(t, 3)
	dir := c.Config(0).DataDir
	c.Node(0).Kill()
	for _, id := range []uint64{1, 3} {
		if err := writeSynced(filepath.Join(dir, groupsDirName, strconv.FormatUint(id, 10)+removedSuffix), nil); err != nil {
			t.Fatal(err)
		}
		// Half deleted: the state file went before the crash, the log store did not.
		if err := os.Remove(filepath.Join(groupDir(dir, id), stateDBName)); err != nil {
			t.Fatal(err)
		}
	}
	notes := filepath.Join(dir, "operator-notes.txt")
	if err := os.WriteFile(notes, []byte("not a group's"), 0o600); err != nil {
		t.Fatal(err)
	}

	others, held, err := heldGroups(dir)
	if err != nil || !slices.Equal(others, []uint64{0, 2}) || held != 3 {
		t.Fatalf("heldGroups: %v, %d data groups, %v; want [0 2], 3", others, held, err)
	}
	if HasState(dir) || HasState(groupDir(dir, 3)) {
		t.Fatal("a tombstoned group's log store is still there")
	}
	for _, name := range []string{"1" + removedSuffix, "3" + removedSuffix, "3"} {
		if _, err := os.Stat(filepath.Join(dir, groupsDirName, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("groups/%s is still there: %v", name, err)
		}
	}
	for _, path := range []string{notes, groupDir(dir, 0), groupDir(dir, 2)} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s went with the removed groups: %v", path, err)
		}
	}
}
