package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flashstock/flashstock/client"
)

// Environment variables that give the global flags their defaults.
const (
	envEndpoints = "STOCKCTL_ENDPOINTS"
	envToken     = "STOCKCTL_TOKEN"
)

const defaultEndpoints = "127.0.0.1:4001"

const globalHelp = `global flags (every cluster command):
  --endpoints  comma-separated node addresses, or a DNS name with one record per node
               (default $` + envEndpoints + `, else ` + defaultEndpoints + `)
  --json       print JSON for scripts instead of tables; a failure prints
               {"error": {"code", "message", "exit_status"}} on stderr
  --timeout    give up after this long (default 10s)
  --token      bearer token (default $` + envToken + `)
  --cacert, --cert, --key   TLS: CA to trust, client certificate and key`

// sub is one subcommand of a command group (sku create, cluster status, ...).
type sub struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

// groups lists each group's subcommands, for shell completion.
var groups = map[string][]sub{}

// group makes a command that dispatches on its first argument.
func group(name, summary string, subs []sub) command {
	groups[name] = subs
	return command{summary: summary, run: func(args []string, stdout, stderr io.Writer) error {
		groupUsage := func(w io.Writer) {
			fmt.Fprintf(w, "usage: stockctl %s <subcommand> [flags]\n\n%s\n\nsubcommands:\n", name, summary)
			for _, s := range subs {
				fmt.Fprintf(w, "  %-16s %s\n", s.name, s.summary)
			}
			fmt.Fprintf(w, "\nRun 'stockctl %s <subcommand> --help' for its flags and examples.\n", name)
		}
		if len(args) == 0 {
			groupUsage(stderr)
			return errUsage
		}
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			groupUsage(stdout)
			return flag.ErrHelp
		}
		for _, s := range subs {
			if s.name == args[0] {
				return s.run(args[1:], stdout, stderr)
			}
		}
		names := make([]string, len(subs))
		for i, s := range subs {
			names[i] = s.name
		}
		return unknown(name, "subcommand", args[0], names)
	}}
}

// cli is one leaf command's flags and outputs: the global flags every cluster command
// shares, its own flags, and how it prints.
type cli struct {
	name           string // "sku create"
	fs             *flag.FlagSet
	stdout, stderr io.Writer

	endpoints string
	json      bool
	timeout   time.Duration
	token     string
	cacert    string
	cert, key string

	help func() // prints the full usage to stdout

	// untimed lets --timeout 0 mean "no limit" (watch); elsewhere it is a usage error.
	untimed bool
}

// endpointResolver resolves DNS names in --endpoints; nil is the system's resolver.
var endpointResolver client.Resolver

// newCLI makes the flag set of "stockctl <name>": usage is the synopsis line, help the
// description and examples shown by --help.
func newCLI(name, usage, help string, stdout, stderr io.Writer) *cli {
	c := &cli{name: name, stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet("stockctl "+name, flag.ContinueOnError)
	// Defaults from the environment are applied after parsing, so --help reads the same
	// everywhere (and golden files do not depend on the environment).
	c.fs.StringVar(&c.endpoints, "endpoints", "", "comma-separated node addresses or a DNS name (default $"+envEndpoints+", else "+defaultEndpoints+")")
	c.fs.BoolVar(&c.json, "json", false, "print JSON instead of a table")
	c.fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "give up after this long")
	c.fs.StringVar(&c.token, "token", "", "bearer token (default $"+envToken+")")
	c.fs.StringVar(&c.cacert, "cacert", "", "TLS: PEM file of the CA that signed the nodes' certificates")
	c.fs.StringVar(&c.cert, "cert", "", "TLS: client certificate PEM file")
	c.fs.StringVar(&c.key, "key", "", "TLS: client key PEM file")
	// Parse errors are reported by usageError in one line; the full usage is for --help.
	c.fs.SetOutput(io.Discard)
	c.fs.Usage = func() {}
	c.help = func() {
		c.fs.SetOutput(c.stdout)
		w := c.stdout
		fmt.Fprintf(w, "usage: stockctl %s\n\n%s\n\nflags:\n", usage, strings.TrimSpace(help))
		c.fs.PrintDefaults()
		fmt.Fprintln(w, "\n"+exitCodesHelp)
	}
	return c
}

// parse parses flags and positional arguments in any order ("sku create tee --stock 5"
// as well as "sku create --stock 5 tee") and checks the number of positional ones.
func (c *cli) parse(args []string, minPos, maxPos int) ([]string, error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" || a == "--h" {
			c.help()
			return nil, flag.ErrHelp
		}
	}
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			return nil, c.usageError("%v", err)
		}
		args = c.fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if c.endpoints == "" {
		c.endpoints = os.Getenv(envEndpoints)
	}
	if c.endpoints == "" {
		c.endpoints = defaultEndpoints
	}
	if c.token == "" {
		c.token = os.Getenv(envToken)
	}
	if c.timeout <= 0 && !c.untimed {
		return nil, c.usageError("--timeout must be more than 0 (for example 10s or 1m), got %v", c.timeout)
	}
	switch {
	case len(pos) < minPos:
		return nil, c.usageError("missing argument: want %d, got %d", minPos, len(pos))
	case len(pos) > maxPos:
		return nil, c.usageError("unexpected argument %q", pos[maxPos])
	}
	return pos, nil
}

// isSet reports whether the flag was given on the command line.
func (c *cli) isSet(name string) bool {
	set := false
	c.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// usageError says what was wrong (exit status 2); run prints it.
func (c *cli) usageError(format string, args ...any) error {
	return &usageErr{cmd: c.name, msg: fmt.Sprintf(format, args...)}
}

// client connects as the global flags say. A bad flag value is a usage error naming the
// flag.
func (c *cli) client() (*client.Client, error) {
	// One command makes one call: batching concurrent calls would only change the route.
	cfg := client.Config{Token: c.token, DisableBatching: true, Resolver: endpointResolver}
	for _, e := range strings.Split(c.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			cfg.Endpoints = append(cfg.Endpoints, e)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, c.usageError("--endpoints %q: %v", c.endpoints, err)
	}
	if c.cacert != "" || c.cert != "" || c.key != "" || strings.HasPrefix(c.endpoints, "https://") {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	cl, err := client.New(cfg)
	if err != nil {
		// The flag is well formed (Validate said so): a name that does not resolve is the
		// network's answer now, a runtime error, not a usage one.
		return nil, fmt.Errorf("cannot resolve --endpoints %s: %v", c.endpoints, err)
	}
	return cl, nil
}

func (c *cli) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.cacert != "" {
		pem, err := os.ReadFile(c.cacert)
		if err != nil {
			return nil, c.usageError("--cacert: %v", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, c.usageError("--cacert %s: no PEM certificate in it", c.cacert)
		}
	}
	if (c.cert == "") != (c.key == "") {
		return nil, c.usageError("--cert and --key go together")
	}
	if c.cert != "" {
		pair, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			return nil, c.usageError("--cert/--key: %v", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// context bounds the command by --timeout and ends it on Ctrl-C.
func (c *cli) context() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return ctx, func() { cancel(); stop() }
}

// connect is client and context together, for the common case; done releases both.
func (c *cli) connect() (cl *client.Client, ctx context.Context, done func(), err error) {
	cl, err = c.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := c.context()
	return cl, ctx, func() { cancel(); cl.Close() }, nil
}

// explain adds a hint to an error the user can act on.
func (c *cli) explain(err error) error {
	switch {
	case exitCode(err) != exitUnavailable:
		return err
	case errors.Is(err, client.ErrNotSent):
		return &hinted{err, fmt.Sprintf("Is a node running at --endpoints %s? Nothing was sent, so running the command again is safe. (exit status %d: unavailable)", c.endpoints, exitUnavailable)}
	case errors.Is(err, context.DeadlineExceeded):
		return &hinted{err, fmt.Sprintf("No definite answer within --timeout %v: the cluster may have no leader or be overloaded (stockctl cluster status), or the command needs a longer --timeout. (exit status %d: unavailable)", c.timeout, exitUnavailable)}
	}
	return &hinted{err, fmt.Sprintf("Is the cluster at --endpoints %s up and does it have a leader? (exit status %d: unavailable)", c.endpoints, exitUnavailable)}
}

// hinted is an error with advice for a person, printed on the next line; --json leaves the
// advice out.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() + "\n" + h.hint }
func (h *hinted) Unwrap() error { return h.err }

// print writes v as indented JSON with --json, else as the table rows give it.
func (c *cli) print(v any, header string, rows [][]string) error {
	if c.json {
		return writeJSON(c.stdout, v)
	}
	return writeTable(c.stdout, header, rows)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeTable aligns tab-separated columns; header is tab-separated too.
func writeTable(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// stringsFlag is a repeatable flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeJSONLine writes v as one line of JSON, for streams.
func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// msTime shows a log timestamp (ms since the epoch) in UTC.
func msTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}
