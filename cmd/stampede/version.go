package main

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// buildVersion is what the binary knows about its own build, from the
// build information the Go toolchain embeds.
type buildVersion struct {
	// Module is the main module's path.
	Module string `json:"module"`
	// Version is the module version: a release tag for `go install
	// …@vX.Y.Z`, a pseudo-version for a build from a checkout (with
	// "+dirty" when it had changes), "(devel)" when unknown.
	Version string `json:"version"`
	// Revision and RevisionTime are the VCS commit the binary was built
	// from, when the build saw one.
	Revision     string `json:"revision,omitempty"`
	RevisionTime string `json:"revision_time,omitempty"`
	Modified     bool   `json:"modified,omitempty"`
	GoVersion    string `json:"go_version"`
}

// readVersion reads the running binary's build information.
func readVersion() buildVersion {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return buildVersion{Version: "(unknown)"}
	}
	v := buildVersion{Module: info.Main.Path, Version: info.Main.Version, GoVersion: info.GoVersion}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.RevisionTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String renders the version on one line, e.g.
// "stampede v1.2.0 (revision 4f2a9c1d0e7b, go1.26.8)".
func (v buildVersion) String() string {
	var extra []string
	if v.Revision != "" {
		rev := v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if v.Modified {
			rev += ", modified"
		}
		extra = append(extra, "revision "+rev)
	}
	if v.GoVersion != "" {
		extra = append(extra, v.GoVersion)
	}
	s := "stampede " + v.Version
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s
}

func (a *app) newVersionCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and the VCS revision of this binary",
		Args:  cobra.NoArgs,
		RunE: action(func(*cobra.Command, []string) error {
			v := readVersion()
			switch format {
			case formatText:
				fmt.Fprintln(a.stdout, v)
			case formatJSON:
				data, err := json.Marshal(v)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s\n", data)
			default:
				return usageErrorf("--output must be text or json, not %q", format)
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&format, "output", "o", formatText, "text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{formatText, formatJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
