// Command stockctl is flashstock's operator and application CLI. Each subcommand lives in
// its own file and registers itself in the commands table; main only dispatches.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand: run gets the arguments after its name and the output streams.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands is the table main dispatches on. sku, deduct, order, cluster, backup and bench
// join it as their files are written.
var commands = map[string]command{
	"paxos":   {summary: "teaching Paxos: `stockctl paxos demo` traces a run step by step", run: runPaxos},
	"sku":     skuCommand,
	"deduct":  {summary: "buy now: take units of a SKU for a user", run: runDeduct},
	"order":   orderCommand,
	"cluster": clusterCommand,
	"backup":  {summary: "write a snapshot of the cluster's state to a file", run: runBackup},
	"bench":   {summary: "measure a flash sale: throughput, latency, sell-out, and an oversell check", run: runBench},
	"certs":   {summary: "make a development CA and node certificates for TLS", run: runCerts},
	"version": {summary: "print stockctl's version and each cluster member's", run: runVersion},
}

// errUsage means the arguments were wrong and usage has been printed: exit status 2.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	args = globalsAfterCommand(args)
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "stockctl: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintf(stderr, "stockctl %s: %v\n", args[0], err)
		return exitCode(err)
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: stockctl <command> [arguments]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'stockctl <command> --help' for its flags and examples.")
	fmt.Fprintln(w, "\n"+globalHelp+"\n\n"+exitCodesHelp)
}

// globalFlags take a value; globalBools do not. They are the flags every cluster command
// accepts (cli.go).
var (
	globalFlags = map[string]bool{"endpoints": true, "timeout": true, "token": true, "cacert": true, "cert": true, "key": true}
	globalBools = map[string]bool{"json": true}
)

// globalsAfterCommand moves global flags given before the command name to the end, so
// `stockctl --endpoints a,b cluster status` works as etcdctl users expect: every leaf
// command parses them with its own flags, in any position after its subcommand.
func globalsAfterCommand(args []string) []string {
	var globals []string
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-h" && args[i] != "--help" {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		switch {
		case globalBools[name] || globalFlags[name] && hasValue:
			globals = append(globals, args[i])
			i++
		case globalFlags[name] && i+1 < len(args):
			globals = append(globals, args[i], args[i+1])
			i += 2
		default:
			return args // not ours: let the usual errors name it
		}
	}
	if len(globals) == 0 || i == len(args) {
		return args
	}
	return append(append([]string{}, args[i:]...), globals...)
}
