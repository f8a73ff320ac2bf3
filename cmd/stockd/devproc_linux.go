package main

import "syscall"

// devSysProcAttr puts a node in its own process group, so that Ctrl-C reaches only the
// parent, which stops the nodes in order; and has the kernel send it SIGTERM (a graceful
// stop) if the parent dies without doing so, even by SIGKILL.
func devSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
