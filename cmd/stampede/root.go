package main

import (
	"github.com/spf13/cobra"
)

// Command groups, for the help text.
const (
	groupServer = "server"
	groupCache  = "cache"
	groupRes    = "reservations"
)

// newRoot builds the command tree.
func (a *app) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "stampede",
		Short: "Stampede's command line: the local server and the client commands",
		Long: `Stampede remembers, per (project, domain, key), where a task's output lives,
and lets workers reserve a key so that one computes while the others wait.
This command runs the local server and calls the API. See docs/cli.md.`,
		Version:       readVersion().String(),
		SilenceErrors: true,
		SilenceUsage:  true,
		// Run only without arguments (any argument is a subcommand or an
		// unknown one): the usage was not asked for, so it goes to stderr.
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(a.stderr)
			_ = cmd.Help()
			return exitCode(exitUsage)
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddGroup(
		&cobra.Group{ID: groupServer, Title: "Server:"},
		&cobra.Group{ID: groupCache, Title: "Cache entries:"},
		&cobra.Group{ID: groupRes, Title: "Reservations and memoized commands:"},
	)
	for _, c := range []*cobra.Command{
		a.newServeCmd(),
		a.newGetCmd(), a.newPutCmd(), a.newDeleteCmd(),
		a.newReserveCmd(), a.newReleaseCmd(), a.newReservationCmd(), a.newRunCmd(),
		a.newVersionCmd(),
	} {
		root.AddCommand(c)
	}
	return root
}
