package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stampede-cache/stampede/client"
)

// Output formats; any other --output value is a field name.
const (
	formatText = "text"
	formatJSON = "json"
)

// fieldAliases are short names --output accepts for fields.
func fieldAliases() map[string]string {
	return map[string]string{"uri": "output_uri", "owner": "owner_id"}
}

// fieldSet is what --output may pick for a command: field names, and
// prefixes of open-ended ones (labels).
type fieldSet struct {
	names    []string
	prefixes []string
}

func (s fieldSet) has(name string) bool {
	if slices.Contains(s.names, name) {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return true
		}
	}
	return false
}

// entryFieldSet are an entry's fields.
func entryFieldSet(extra ...string) fieldSet {
	return fieldSet{
		names: append([]string{"project", "domain", "key", "output_uri", "version", "created_at", "last_updated_at", "expires_at",
			"metadata.source.project", "metadata.source.domain", "metadata.source.name", "metadata.source.version"}, extra...),
		prefixes: []string{"metadata.labels."},
	}
}

// reservationFieldSet are a reservation's fields.
func reservationFieldSet(extra ...string) fieldSet {
	return fieldSet{names: append([]string{"project", "domain", "key", "owner_id", "heartbeat_interval_seconds", "expires_at", "fence"}, extra...)}
}

// outputFlags are --output (-o) and --json.
type outputFlags struct {
	format string
	json   bool
	fields fieldSet
}

func (o *outputFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", formatText, "what to print on stdout: text (name value lines), json, or one `field`'s value (e.g. uri)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON (same as --output json)")
	choices := append([]string{formatText, formatJSON}, o.fields.names...)
	for alias, name := range fieldAliases() {
		if o.fields.has(name) {
			choices = append(choices, alias)
		}
	}
	sort.Strings(choices[2:])
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(choices, cobra.ShellCompDirectiveNoFileComp))
}

// check validates --output before any request.
func (o *outputFlags) check() error {
	if o.json {
		if o.format != formatText && o.format != formatJSON {
			return usageErrorf("--json and --output %s: choose one", o.format)
		}
		o.format = formatJSON
	}
	if name, ok := fieldAliases()[o.format]; ok && o.fields.has(name) {
		o.format = name
	}
	if o.format == formatText || o.format == formatJSON || o.fields.has(o.format) {
		return nil
	}
	names := append([]string{formatText, formatJSON}, o.fields.names...)
	if len(o.fields.prefixes) > 0 {
		names = append(names, o.fields.prefixes[0]+"NAME")
	}
	return usageErrorf("--output %q: want one of %s", o.format, strings.Join(names, ", "))
}

// print writes the result: v as JSON, the fields as text, or one field's
// value (an empty line when the result does not have it, e.g. expires_at
// of an entry without TTL).
func (o *outputFlags) print(w io.Writer, v any, fields []field) error {
	switch o.format {
	case formatJSON:
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	case formatText, "":
		printFields(w, fields)
		return nil
	}
	value := ""
	for _, f := range fields {
		if f.name == o.format {
			value = f.value
		}
	}
	_, err := fmt.Fprintln(w, value)
	return err
}

// field is one line of human output.
type field struct{ name, value string }

// printFields prints name/value lines in aligned columns.
func printFields(w io.Writer, fields []field) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s\t%s\n", f.name, f.value)
	}
	_ = tw.Flush()
}

// entryFields renders an entry, with the API's field names.
func entryFields(e *client.Entry) []field {
	fs := []field{
		{"project", e.Project},
		{"domain", e.Domain},
		{"key", e.Key},
		{"output_uri", e.OutputURI},
		{"version", strconv.FormatInt(e.Version, 10)},
		{"created_at", formatTime(e.CreatedAt)},
		{"last_updated_at", formatTime(e.LastUpdatedAt)},
	}
	if !e.ExpiresAt.IsZero() {
		fs = append(fs, field{"expires_at", formatTime(e.ExpiresAt)})
	}
	if s := e.Metadata.Source; s != nil {
		for _, f := range []field{{"project", s.Project}, {"domain", s.Domain}, {"name", s.Name}, {"version", s.Version}} {
			if f.value != "" {
				fs = append(fs, field{"metadata.source." + f.name, f.value})
			}
		}
	}
	names := make([]string, 0, len(e.Metadata.Labels))
	for k := range e.Metadata.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fs = append(fs, field{"metadata.labels." + k, e.Metadata.Labels[k]})
	}
	return fs
}

// reservationFields renders a reservation.
func reservationFields(r *client.Reservation) []field {
	return []field{
		{"project", r.Project},
		{"domain", r.Domain},
		{"key", r.Key},
		{"owner_id", r.OwnerID},
		{"heartbeat_interval_seconds", strconv.FormatInt(int64(r.HeartbeatInterval/time.Second), 10)},
		{"expires_at", formatTime(r.ExpiresAt)},
		{"fence", strconv.FormatInt(r.Fence, 10)},
	}
}
