package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/flashstock/flashstock/internal/lazyfs"
)

// Machines: with ClusterConfig.Machines each member's data dir is a lazyfs mount of its
// own (that member's disk, served by this test process) and each start of its stockd runs
// in a private mount namespace where the member's boot id file is bind-mounted over the
// kernel's, so a power loss can drop exactly that member's un-fsynced writes and reboot
// its "machine": stockd then sees a new boot id, as after a real power cut (node's
// statefile.go decides from it whether its state file can be trusted).

// bootIDPath is the kernel's per-boot id, which stockd reads.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// The launcher's environment: the binary to run and the boot id file to show it.
const (
	envLaunchExec   = "CLUSTERTEST_LAUNCH_EXEC"
	envLaunchBootID = "CLUSTERTEST_LAUNCH_BOOT_ID"
)

// launchIfAsked is the first thing TestMain runs. In a child started by machineCommand
// (already in its own mount namespace, with "/" made private by os/exec) it bind-mounts the
// boot id file and execs stockd with the remaining arguments; it never returns there.
func launchIfAsked() {
	bin := os.Getenv(envLaunchExec)
	if bin == "" {
		return
	}
	if err := syscall.Mount(os.Getenv(envLaunchBootID), bootIDPath, "", syscall.MS_BIND, ""); err != nil {
		fmt.Fprintf(os.Stderr, "clustertest launcher: bind-mount the boot id: %v\n", err)
		os.Exit(111)
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, envLaunchExec+"=") || strings.HasPrefix(kv, envLaunchBootID+"=")
	})
	err := syscall.Exec(bin, append([]string{bin}, os.Args[1:]...), env)
	fmt.Fprintf(os.Stderr, "clustertest launcher: exec %s: %v\n", bin, err)
	os.Exit(111)
}

// machine is what a member with its own simulated machine has besides its process.
type machine struct {
	disk     *lazyfs.FS
	bootFile string // shown as the kernel's boot id
	boots    int
}

// mountMachines gives every member a lazyfs disk at its data dir and a first boot id.
func (c *Cluster) mountMachines() {
	c.t.Helper()
	c.machines = map[*Member]*machine{}
	for _, m := range c.Members {
		backing := m.DataDir + ".disk"
		for _, d := range []string{backing, m.DataDir} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				c.t.Fatal(err)
			}
		}
		disk, err := lazyfs.Mount(backing, m.DataDir)
		if errors.Is(err, lazyfs.ErrNoFUSE) {
			lazyfs.SkipUnlessCI(c.t, err)
		}
		if err != nil {
			c.t.Fatalf("%s: %v", m.ID, err)
		}
		mc := &machine{disk: disk, bootFile: filepath.Join(c.dir, m.ID+".boot_id")}
		c.machines[m] = mc
		if err := mc.writeBootID(m.ID); err != nil {
			c.t.Fatal(err)
		}
	}
}

// writeBootID writes the machine's boot id for its current boot.
func (mc *machine) writeBootID(id string) error {
	var n int
	for _, b := range []byte(id) {
		n = n*31 + int(b)
	}
	boot := fmt.Sprintf("%08x-0000-4000-8000-%012x\n", n&0xffffffff, mc.boots)
	return os.WriteFile(mc.bootFile, []byte(boot), 0o644)
}

// unmountMachines detaches the members' disks; their processes must be gone.
func (c *Cluster) unmountMachines() {
	for m, mc := range c.machines {
		if err := mc.disk.Unmount(); err != nil {
			c.t.Errorf("unmount %s's disk: %v", m.ID, err)
		}
	}
}

// onMachine makes cmd, m's stockd command line, start through the launcher in a mount
// namespace of its own when m has a machine.
func (c *Cluster) onMachine(m *Member, cmd *exec.Cmd) {
	mc := c.machines[m]
	if mc == nil {
		return
	}
	self, err := os.Executable()
	if err != nil {
		c.t.Fatalf("find the test binary for the launcher: %v", err)
	}
	cmd.Path, cmd.Args = self, append([]string{self}, cmd.Args[1:]...)
	cmd.Env = append(os.Environ(), envLaunchExec+"="+c.bin, envLaunchBootID+"="+mc.bootFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
}

// PowerLoss cuts m's power: SIGKILL, every write its disk did not fsync is dropped (or,
// with keep, some of them survive: a torn loss, see lazyfs.FS.PowerLoss), and the machine
// boots again with a new boot id (the caller starts the member again). It returns how many
// files and bytes were rolled back.
func (c *Cluster) PowerLoss(m *Member, keep func() bool) (files int, bytes int64) {
	c.t.Helper()
	mc := c.machines[m]
	if mc == nil {
		c.t.Fatalf("power loss of %s: it has no machine (ClusterConfig.Machines)", m.ID)
	}
	c.Kill(m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	files, bytes, err := mc.disk.PowerLoss(ctx, keep)
	if err != nil {
		c.t.Fatalf("power loss of %s: %v", m.ID, err)
	}
	mc.boots++
	if err := mc.writeBootID(m.ID); err != nil {
		c.t.Fatal(err)
	}
	c.events.add("power loss of %s: %d files rolled back to their last fsync (%d bytes rewritten), boot %d", m.ID, files, bytes, mc.boots)
	return files, bytes
}
