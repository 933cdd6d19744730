// Command stampede is Stampede's command line: the local server and (see
// the README) the client commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. run returns the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands.
func commands() map[string]command {
	return map[string]command{
		"serve": {"run the local API backed by DynamoDB Local", runServe},
		// Client commands: see docs/cli.md.
		"get":     {"print a key's cached entry", runGet},
		"put":     {"store where a key's output lives", runPut},
		"delete":  {"delete a key's cached entry", runDelete},
		"reserve": {"acquire or extend a key's reservation", runReserve},
		"release": {"release a key's reservation", runRelease},
		"run":     {"run a command once across machines, memoized under a key", runRun},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "stampede: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for name := range cmds {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: stampede <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w, "\nRun 'stampede <command> -h' for a command's flags.")
}
