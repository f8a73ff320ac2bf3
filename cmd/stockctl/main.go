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
	"group":   groupCommand,
	"backup":  {summary: "write a snapshot of the cluster's state to a file", run: runBackup},
	"bench":   {summary: "measure a flash sale: throughput, latency, sell-out, and an oversell check", run: runBench},
	"certs":   {summary: "make a development CA and node certificates for TLS", run: runCerts},
	"version": {summary: "print stockctl's version and each cluster member's", run: runVersion},
}

// errUsage means the arguments were wrong and usage has been printed: exit status 2.
var errUsage = errors.New("usage")

// usageErr is a usage error of one command: run prints it in one line with where to read
// more (or, with --json, as a JSON error). It matches errUsage.
type usageErr struct{ cmd, msg string }

func (e *usageErr) Error() string        { return e.msg }
func (e *usageErr) Is(target error) bool { return target == errUsage }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run follows the Go tool and etcdctl: help asked for goes to stdout with status 0; a
// mistake gets one line on stderr and status 2, not the whole help.
func run(args []string, stdout, stderr io.Writer) int {
	args = globalsAfterCommand(args)
	jsonErrors := wantsJSON(args)
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" { // "stockctl help sku" is "stockctl sku --help"
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	}
	name := args[0]
	cmd, ok := commands[name]
	var err error
	if ok {
		err = cmd.run(args[1:], stdout, stderr)
		for _, s := range groups[name] {
			if len(args) > 1 && s.name == args[1] {
				name += " " + s.name // errors name the leaf command
			}
		}
	} else {
		name = ""
		err = unknown("", "command", args[0], sortedKeys(commands))
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	code := exitCode(err)
	var ue *usageErr
	switch {
	case jsonErrors:
		writeJSONError(stderr, err, code)
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", prog(ue.cmd), ue.msg, prog(ue.cmd))
	case errors.Is(err, errUsage): // printed already
	default:
		fmt.Fprintf(stderr, "%s: %v\n", prog(name), err)
	}
	return code
}

// prog is "stockctl" and the command's name, if any.
func prog(cmd string) string {
	if cmd == "" {
		return "stockctl"
	}
	return "stockctl " + cmd
}

// unknown is the usage error of a command or subcommand name that does not exist, with
// the nearest known one when it is a likely typo.
func unknown(cmd, what, got string, known []string) error {
	msg := fmt.Sprintf("unknown %s %q", what, got)
	if near := nearest(got, known); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	return &usageErr{cmd: cmd, msg: msg}
}

// nearest is the known name closest to got by edit distance if that is close enough to be
// a typo (at most a third of its letters, and at least one), else one that starts with
// got, else "".
func nearest(got string, known []string) string {
	best, bestD := "", max(1, len(got)/3)+1
	for _, k := range known {
		if d := editDistance(got, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" && len(got) >= 2 {
		for _, k := range known {
			if strings.HasPrefix(k, got) {
				return k
			}
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// wantsJSON reports whether --json is among the arguments (before "--"), so even an error
// found before the flags are parsed is printed as JSON.
func wantsJSON(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "-json", "--json=true", "-json=true":
			return true
		}
	}
	return false
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
	fmt.Fprintln(w, "\nRun 'stockctl <command> --help' (or 'stockctl help <command>') for its flags and examples.")
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
