package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	ctx := context.Background()
	code, out, errOut := runCLI(ctx, nil, "version", "-o", "json")
	var v buildVersion
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.GoVersion != runtime.Version() || v.Version == "" {
		t.Fatalf("version -o json: exit %d %q %s", code, out, errOut)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runCLI(ctx, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "stampede "+v.Version+" (") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("%v: exit %d %q", args, code, out)
		}
	}
}

// TestVersionFromBuildInfo: a binary built from a git checkout reports
// the module's pseudo-version and the revision (here: in a fresh
// repository with one commit, since a git worktree does not stamp).
func TestVersionFromBuildInfo(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	bin := filepath.Join(t.TempDir(), "stampede")
	script := `set -e
cp -r "$ROOT/go.mod" "$ROOT/go.sum" "$ROOT/client" "$ROOT/internal" "$ROOT/cmd" .
git init -q . && git add -A && git -c user.name=t -c user.email=t@example.com commit -qm test
go build -buildvcs=true -o "$BIN" ./cmd/stampede
git rev-parse HEAD`
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = repo
	cmd.Env = append(cmd.Environ(), "ROOT="+root, "BIN="+bin, "GOFLAGS=")
	rev, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, rev)
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v buildVersion
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	revision := strings.TrimSpace(string(rev))
	if v.Revision != revision || v.Modified || !strings.HasPrefix(v.Version, "v0.0.0-") || !strings.HasSuffix(v.Version, revision[:12]) {
		t.Fatalf("version %+v, want revision %s", v, revision)
	}
}
