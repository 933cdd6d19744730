package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestExitCodesDocumented keeps docs/cli.md's exit code table and the
// constants in step.
func TestExitCodesDocumented(t *testing.T) {
	data, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Exit codes\n")
	if !ok {
		t.Fatal("docs/cli.md has no Exit codes section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[int]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(\\d+)` \\|").FindAllStringSubmatch(section, -1) {
		n, _ := strconv.Atoi(m[1])
		documented[n] = true
	}
	codes := map[string]int{
		"exitOK": exitOK, "exitFailure": exitFailure, "exitUsage": exitUsage, "exitMiss": exitMiss,
		"exitUnavailable": exitUnavailable, "exitWrongEndpoint": exitWrongEndpoint, "exitNotStored": exitNotStored,
		"exitTimeout": exitTimeout, "exitCannotExecute": exitCannotExecute, "exitCommandNotFound": exitCommandNotFound,
	}
	used := map[int]bool{}
	for name, code := range codes {
		used[code] = true
		if !documented[code] {
			t.Errorf("%s = %d is not in docs/cli.md's exit code table", name, code)
		}
	}
	for code := range documented {
		if !used[code] {
			t.Errorf("docs/cli.md documents exit code %d, which no constant has", code)
		}
	}
	if !strings.Contains(section, "| `128+n` |") {
		t.Error("docs/cli.md does not document 128+n (signals)")
	}
}
