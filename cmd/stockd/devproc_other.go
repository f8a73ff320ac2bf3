//go:build !linux

package main

import "syscall"

// devSysProcAttr: outside Linux there is no Pdeathsig, so a node outlives a parent killed
// by SIGKILL, and Ctrl-C reaches the nodes too (they stop on their own, as the parent
// would stop them).
func devSysProcAttr() *syscall.SysProcAttr { return nil }
