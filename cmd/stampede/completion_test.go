package main

import (
	"context"
	"strings"
	"testing"
)

func TestCompletionScripts(t *testing.T) {
	for _, tc := range []struct{ shell, want string }{
		{"bash", "# bash completion V2 for stampede"},
		{"zsh", "#compdef stampede"},
		{"fish", "# fish completion for stampede"},
	} {
		code, out, errOut := runCLI(context.Background(), nil, "completion", tc.shell)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("completion %s: exit %d, want %q in\n%.300s%s", tc.shell, code, tc.want, out, errOut)
		}
	}
}

// TestCompletions asks what the shell scripts ask (cobra's __complete).
func TestCompletions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"g"}, []string{"get"}},
		{[]string{"get", "--consistency", ""}, []string{"strong", "eventual"}},
		{[]string{"get", "-o", ""}, []string{"text", "json", "uri", "output_uri", "version"}},
		{[]string{"reserve", "--output", ""}, []string{"acquired", "fence", "owner", "owner_id"}},
		{[]string{"put", "--sigv4", ""}, []string{"auto", "on", "off"}},
		{[]string{"run", "--st"}, []string{"--store-timeout"}},
		{[]string{"serve", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
	} {
		code, out, errOut := runCLI(context.Background(), nil, append([]string{"__complete"}, tc.args...)...)
		got := strings.Fields(out)
		for _, w := range tc.want {
			found := false
			for _, g := range got {
				if g == w {
					found = true
				}
			}
			if code != 0 || !found {
				t.Errorf("__complete %q: exit %d, %q missing from %q %s", tc.args, code, w, out, errOut)
			}
		}
	}
}
