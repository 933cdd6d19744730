package flyte_test

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates internal/flyte/gen from proto/
// with the pinned generators, as `make generate` does, into a temporary
// directory and compares it with the committed code, file by file. It
// needs the generators' modules in the module cache (downloaded on the
// first run), nothing else.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to regenerate the code: %v", err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command(goBin, "tool", "-modfile=proto/tools/go.mod", "buf", "generate", "proto",
		"--template", "proto/buf.gen.yaml", "--output", out)
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, output)
	}
	const gen = "internal/flyte/gen"
	want := readTree(t, filepath.Join(out, gen))
	got := readTree(t, filepath.Join(root, gen))
	if len(want) == 0 {
		t.Fatal("the generators wrote nothing")
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		committed, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s/%s is generated but not committed: run make generate", gen, name)
		case !bytes.Equal(committed, want[name]):
			t.Errorf("%s/%s differs from what the generators write: run make generate", gen, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[name]; !ok {
			t.Errorf("%s/%s is committed but no longer generated: run make generate", gen, name)
		}
	}
}

// readTree returns the files under dir by path relative to dir.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
