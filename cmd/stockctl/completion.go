package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

const bashCompletion = `# bash completion for stockctl. Load it with:
#   source <(stockctl completion bash)
# or install it: stockctl completion bash > /etc/bash_completion.d/stockctl
_stockctl() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local words
	words=$(stockctl completion __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null)
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _stockctl stockctl
`

const zshCompletion = `#compdef stockctl
# zsh completion for stockctl. Load it with:
#   source <(stockctl completion zsh)
autoload -U +X bashcompinit && bashcompinit
` + bashCompletion

// completion is registered here rather than in the commands table: it reads that table,
// and a table entry would make its initialisation depend on itself.
func init() {
	commands["completion"] = command{summary: "print a shell completion script (bash or zsh)", run: runCompletion}
}

func runCompletion(args []string, stdout, stderr io.Writer) error {
	usage := func(w io.Writer) {
		fmt.Fprint(w, `usage: stockctl completion bash|zsh

Prints a shell completion script: commands, subcommands and flags complete with Tab.

examples:
  source <(stockctl completion bash)
  stockctl completion zsh > "${fpath[1]}/_stockctl"
`)
	}
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	switch args[0] {
	case "bash":
		fmt.Fprint(stdout, bashCompletion)
	case "zsh":
		fmt.Fprint(stdout, zshCompletion)
	case "__complete":
		fmt.Fprintln(stdout, strings.Join(completions(args[1:]), "\n"))
	case "-h", "--help", "help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "stockctl completion: unknown shell %q: want bash or zsh\n", args[0])
		return errUsage
	}
	return nil
}

// completions are the words that may follow words (the command line so far, without
// "stockctl" and the word being typed). Flags are read from the command's own --help, so
// they never drift from what it accepts.
func completions(words []string) []string {
	var leaf []string // the command words of the leaf, once known
	switch {
	case len(words) == 0:
		return sortedKeys(commands)
	case groups[words[0]] != nil:
		if len(words) == 1 {
			var names []string
			for _, s := range groups[words[0]] {
				names = append(names, s.name)
			}
			return names
		}
		leaf = words[:2]
	case words[0] == "completion":
		return []string{"bash", "zsh"}
	case words[0] == "paxos":
		if len(words) == 1 {
			return []string{"demo"}
		}
		leaf = words[:2]
	default:
		leaf = words[:1]
	}
	cmd, ok := commands[leaf[0]]
	if !ok {
		return nil
	}
	var help bytes.Buffer
	_ = cmd.run(append(leaf[1:], "--help"), &help, &help) // some commands print help to stderr
	var flags []string
	for _, line := range strings.Split(help.String(), "\n") {
		if f, ok := strings.CutPrefix(line, "  -"); ok && f != "" && f[0] != ' ' {
			flags = append(flags, "--"+strings.Fields(f)[0])
		}
	}
	return flags
}
