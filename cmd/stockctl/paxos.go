package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/flashstock/flashstock/paxos"
)

// runPaxos dispatches `stockctl paxos <subcommand>`; demo is the only one.
func runPaxos(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "demo" {
		fmt.Fprintln(stderr, "usage: stockctl paxos demo [flags]   (stockctl paxos demo -h for the flags)")
		return errUsage
	}
	fs := flag.NewFlagSet("stockctl paxos demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c paxos.DemoConfig
	fs.StringVar(&c.Mode, "mode", "single", "single (one value, Paxos Made Simple) or multi (Multi-Paxos running a flash sale on the inventory fsm)")
	fs.IntVar(&c.Acceptors, "acceptors", 3, "acceptors (in multi mode: replicas)")
	fs.IntVar(&c.Proposers, "proposers", 2, "competing proposers (in multi mode: replicas allowed to lead)")
	fs.Float64Var(&c.Drop, "drop", 0, "probability that a message is lost")
	fs.Float64Var(&c.Duplicate, "duplicate", 0, "probability that a message is delivered twice")
	fs.BoolVar(&c.Crash, "crash", false, "crash a node mid-run and restart it from its disk")
	fs.BoolVar(&c.Partition, "partition", false, "cut a node off for a while, then heal")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the simulation: the same flags and seed print the same trace")
	fs.StringVar(&c.Format, "format", "text", "text, or mermaid for a sequence diagram")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: stockctl paxos demo [flags]\n\nRuns Paxos on a simulated network and prints each step with the rule behind it.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage // the flag package has already said what was wrong
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if c.Mode == "multi" && c.Proposers > c.Acceptors {
		c.Proposers = c.Acceptors
	}
	return paxos.RunDemo(stdout, c)
}
