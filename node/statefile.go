package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/fsm"
)

// The state file (state.db) is committed without fsync. A replica does not need it to be
// durable: its raft log and snapshots are, and the state can always be rebuilt from them
// (catchUpFromSnapshot restores the newest snapshot into a state that is behind it, then
// raft replays the log after it). Two fsyncs per applied batch on every node were about a
// third of the state machine's cost and sat on the path of every answer.
//
// What the node does need is a consistent file. A crash of the process keeps it (bbolt's
// writes are in the page cache and reach the disk later); a crash of the machine may leave
// it stale or torn. So while the file is open it is marked unclean with the machine's boot
// id, and a clean close syncs it and removes the mark. A mark from another boot means the
// machine went down under an open state file: the file is set aside and rebuilt.

const (
	uncleanName   = "state.unclean"
	untrustedName = stateDBName + ".untrusted"
)

// bootIDPath names the kernel's per-boot random id. Tests that need another boot give the
// process another file there (a private mount namespace, cluster-test/powerloss.go), so
// nothing in the package changes it.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

func bootID() string {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// openState opens the data dir's state file without fsync, after setting it aside if the
// machine restarted while it was open (or, without a boot id to compare, after any stop
// that was not clean).
func openState(dataDir string, opts fsm.Options, log hclog.Logger) (*fsm.Machine, error) {
	path := filepath.Join(dataDir, stateDBName)
	marker := filepath.Join(dataDir, uncleanName)
	boot := bootID()
	prev, err := os.ReadFile(marker)
	switch {
	case err == nil:
		if boot == "" || strings.TrimSpace(string(prev)) != boot {
			log.Warn("the machine restarted while the state file was open; setting it aside and rebuilding the state from the raft snapshot and log",
				"state", path, "moved_to", untrustedName)
			if err := os.Rename(path, filepath.Join(dataDir, untrustedName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("set aside the untrusted state file: %w", err)
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", marker, err)
	}
	if err := writeSynced(marker, []byte(boot+"\n")); err != nil {
		return nil, fmt.Errorf("mark the state file open: %w", err)
	}
	// Neither fsynced nor committed per batch: the raft log holds every entry until a
	// snapshot covers it, and a state that lost its last batches replays them from there.
	opts.NoSync, opts.DeferCommit = true, true
	return fsm.Open(path, opts)
}

// stateFlushInterval bounds how long applied batches stay staged, uncommitted, when no
// reader needs them (fsm.Options.DeferCommit; reads see staged batches either way): how far
// the applied index (its header, the readiness check, /metrics) lags what the fsm applied,
// and how much a crashed process replays. etcd commits its backend every 100ms likewise.
const stateFlushInterval = 50 * time.Millisecond

// flushLoop commits the state's staged batches now and then; linearizable reads commit
// what they wait for themselves (fsm.Machine.WaitApplied).
func (g *Group) flushLoop() {
	g.every(stateFlushInterval, func() bool {
		err := g.fsm.Flush()
		if err != nil && g.ctx.Err() == nil {
			g.fail(fmt.Errorf("state machine: %w", err))
		}
		return err == nil
	})
}

// closeState syncs and closes the state file and clears its unclean mark. On any failure
// the mark stays, so the next start after a reboot does not trust the file.
func closeState(m *fsm.Machine, dataDir string) error {
	if err := m.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync state: %w", err), m.Close())
	}
	if err := m.Close(); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dataDir, uncleanName)); err != nil {
		return fmt.Errorf("clear the unclean mark: %w", err)
	}
	return syncDir(dataDir)
}

// writeSynced writes a small file durably: temp file, fsync, rename, fsync of the dir.
func writeSynced(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
