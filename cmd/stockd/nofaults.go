//go:build !faults

package main

import (
	"flag"

	"github.com/hashicorp/go-hclog"

	"github.com/flashstock/flashstock/node"
)

// faultOptions is empty in the normal build: the fault flags exist only with -tags faults
// (faults.go).
type faultOptions struct{}

var faultFlagNames []string

func addFaultFlags(*flag.FlagSet, *faultOptions) {}

func startFaults(*node.Config, *faultOptions, hclog.Logger) (stop func(), err error) {
	return func() {}, nil
}
