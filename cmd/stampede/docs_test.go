package main

import (
	"bufio"
	"context"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/testenv"
)

// The examples test: every example in README.md and docs/*.md runs as
// written.
//
//   - ```sh, ```bash and ```shell blocks run with bash (errexit, pipefail),
//     in order, one file after another, each file against its own
//     `stampede serve` (over the tests' DynamoDB Local, a fresh table, an
//     in-process S3 with the managed bucket stampede-outputs), with the
//     `stampede` just built first on PATH. The examples say
//     http://127.0.0.1:8080 (make run): that address is replaced by the
//     test server's. Exported variables carry over from one block to the
//     next of the same file. curl runs with --fail-with-body (through
//     CURL_HOME), so an error status fails the example.
//   - A command on one line ending in "# exit N" must exit with N.
//   - ```go blocks must compile: a block starting with "package" as a file,
//     any other as file-level declarations or, failing that, as the body of
//     func(ctx context.Context) error. Imports of the packages used are
//     added (the client, and the standard library's common ones); unused
//     variables and imports are allowed. A setup comment (below) declares
//     what a fragment assumes.
//   - ```json blocks must be valid JSON.
//   - Every s3:// URI in any block names a valid bucket (but on a line
//     that shows a failure, "# exit N").
//
// An HTML comment right before a block directs the test:
//
//	<!-- example: skip: why it cannot run here -->
//	<!-- example: setup:
//	func train(ctx context.Context) (string, error) { return "", nil }
//	-->

// docFiles are the Markdown files whose examples are tested, relative to
// the repository root.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(root, "README.md")}, files...)
}

// pendingExamples are blocks in files this package's owner does not edit
// that do not run here yet, keyed by file and the block's first line:
// each is skipped with its reason (and reported to the file's owner).
// Remove an entry once its block is fixed or marked with a directive.
func pendingExamples() map[string]string {
	return map[string]string{}
}

// docBlock is one fenced block of a Markdown file.
type docBlock struct {
	file string // relative to the repository root
	line int    // of the opening fence
	lang string
	text string
	// skip and setup come from an "example:" comment right before it.
	skip  string
	setup string
}

func (b docBlock) name() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// pendingKey identifies a block for pendingExamples.
func (b docBlock) pendingKey() string {
	first, _, _ := strings.Cut(b.text, "\n")
	return b.file + ": " + first
}

var fenceRE = regexp.MustCompile("^```([a-z]*)")

// parseMarkdown returns the fenced blocks of a Markdown file.
func parseMarkdown(root, path string) ([]docBlock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rel, _ := filepath.Rel(root, path)
	var (
		blocks  []docBlock
		cur     *docBlock
		body    strings.Builder
		comment strings.Builder // the last HTML comment, while only blank lines follow it
		inCmt   bool
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.HasPrefix(line, "```"):
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		case inCmt:
			comment.WriteString(line + "\n")
			inCmt = !strings.Contains(line, "-->")
		case strings.HasPrefix(line, "<!--"):
			comment.Reset()
			comment.WriteString(line + "\n")
			inCmt = !strings.Contains(line, "-->")
		case fenceRE.MatchString(line):
			cur = &docBlock{file: rel, line: n, lang: fenceRE.FindStringSubmatch(line)[1]}
			body.Reset()
			if err := cur.direct(comment.String()); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", rel, n, err)
			}
			comment.Reset()
		case strings.TrimSpace(line) != "":
			comment.Reset()
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: unterminated block", rel, cur.line)
	}
	return blocks, sc.Err()
}

// direct applies an "example:" comment to the block.
func (b *docBlock) direct(comment string) error {
	c := strings.TrimSpace(comment)
	if !strings.HasPrefix(c, "<!-- example:") {
		return nil
	}
	c = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(c, "<!-- example:"), "-->"))
	switch {
	case strings.HasPrefix(c, "skip:") && strings.TrimSpace(strings.TrimPrefix(c, "skip:")) != "":
		b.skip = strings.TrimSpace(strings.TrimPrefix(c, "skip:"))
	case strings.HasPrefix(c, "setup:"):
		b.setup = strings.TrimPrefix(c, "setup:")
	default:
		return fmt.Errorf("unknown example directive %q (want skip: REASON or setup: GO DECLARATIONS)", c)
	}
	return nil
}

// TestDocExamples runs every example of README.md and docs/.
func TestDocExamples(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pending := pendingExamples()
	used := map[string]bool{}
	byFile := map[string][]docBlock{}
	var files []string
	var goBlocks []docBlock
	for _, path := range docFiles(t, root) {
		blocks, err := parseMarkdown(root, path)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			t.Run("uris/"+b.name(), func(t *testing.T) { checkS3URIs(t, b) })
			if reason, ok := pending[b.pendingKey()]; ok && b.skip == "" {
				used[b.pendingKey()] = true
				b.skip = "pending: " + reason
			}
			switch b.lang {
			case "sh", "bash", "shell":
				if len(byFile[b.file]) == 0 {
					files = append(files, b.file)
				}
				byFile[b.file] = append(byFile[b.file], b)
			case "go":
				goBlocks = append(goBlocks, b)
			case "json":
				t.Run("json/"+b.name(), func(t *testing.T) { checkJSON(t, b) })
			}
		}
	}
	for key := range pending {
		if !used[key] {
			t.Logf("pendingExamples has %q, which matches no block any more: remove it", key)
		}
	}
	t.Run("go", func(t *testing.T) { checkGoBlocks(t, root, goBlocks) })
	bin := buildStampede(t, root)
	for _, file := range files {
		t.Run("sh/"+file, func(t *testing.T) { runShellBlocks(t, bin, byFile[file]) })
	}
}

// s3URIRE finds s3:// URIs in examples.
var s3URIRE = regexp.MustCompile(`s3://[^\s"'` + "`" + `)\\]*`)

// checkS3URIs checks the buckets of a block's URIs, except on a line that
// shows a failure ("# exit N", N > 0).
func checkS3URIs(t *testing.T, b docBlock) {
	var text strings.Builder
	for _, line := range strings.Split(b.text, "\n") {
		if m := exitAnnotationRE.FindStringSubmatch(line); m == nil || m[3] == "0" {
			text.WriteString(line + "\n")
		}
	}
	for _, uri := range s3URIRE.FindAllString(text.String(), -1) {
		bucket, _, _ := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
		if strings.ContainsAny(bucket, "${<") || strings.Trim(bucket, ".…") == "" {
			continue // a placeholder, or built by the shell or a template
		}
		if !validBucketName(bucket) {
			t.Errorf("%s: %s: %q is not a valid bucket name (3 to 63 characters; the local server's managed bucket is %s)", b.name(), uri, bucket, defaultLocalBucket)
		}
	}
}

func checkJSON(t *testing.T, b docBlock) {
	if b.skip != "" {
		t.Skip(b.skip)
	}
	cmd := exec.Command("jq", "-e", ".")
	cmd.Stdin = strings.NewReader(b.text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: not valid JSON: %v\n%s", b.name(), err, out)
	}
}

// buildStampede builds the command into a directory for PATH.
func buildStampede(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "stampede"), "./cmd/stampede")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return dir
}

// exitAnnotationRE is a one-line command that says how it exits.
var exitAnnotationRE = regexp.MustCompile(`^(\s*)(\S.*?)\s+#\s*exit\s+(\d+)\b.*$`)

// shellScript turns a block into the script bash runs: "# exit N"
// annotations become checks.
func shellScript(b docBlock) string {
	lines := strings.Split(strings.TrimSuffix(b.text, "\n"), "\n")
	for i, line := range lines {
		continued := i > 0 && strings.HasSuffix(lines[i-1], "\\")
		m := exitAnnotationRE.FindStringSubmatch(line)
		if m == nil || continued || strings.HasSuffix(line, "\\") {
			continue
		}
		lines[i] = fmt.Sprintf(`%sif %s; then __rc=0; else __rc=$?; fi; [ "$__rc" = %s ] || { echo "%s:%d: exited $__rc; the example says %s" >&2; exit 1; }`,
			m[1], m[2], m[3], b.file, b.line+1+i, m[3])
	}
	return strings.Join(lines, "\n") + "\n"
}

// runShellBlocks runs a file's shell blocks in order against a fresh
// server.
func runShellBlocks(t *testing.T, bin string, blocks []docBlock) {
	var runnable []docBlock
	for _, b := range blocks {
		if b.skip == "" {
			runnable = append(runnable, b)
		}
	}
	for _, b := range blocks {
		if b.skip != "" {
			t.Run(strconv.Itoa(b.line), func(t *testing.T) { t.Skipf("%s: %s", b.name(), b.skip) })
		}
	}
	if len(runnable) == 0 {
		return
	}
	addr := startDocServer(t, bin, blocks[0].file)
	env := docEnv(t)
	work := t.TempDir()
	state := filepath.Join(t.TempDir(), "env")
	curlHome := t.TempDir()
	if err := os.WriteFile(filepath.Join(curlHome, ".curlrc"), []byte("fail-with-body\nsilent\nshow-error\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range runnable {
		t.Run(strconv.Itoa(b.line), func(t *testing.T) {
			script := strings.ReplaceAll(shellScript(b), "127.0.0.1:8080", addr)
			full := `set -eo pipefail
[ -f "$STATE" ] && source "$STATE"
` + script + `
export -p | grep -vE '^declare -x (PWD|OLDPWD|SHLVL|_)=' > "$STATE"
`
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-c", full)
			cmd.Dir = work
			cmd.Env = append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"STATE="+state, "CURL_HOME="+curlHome, envEndpoint+"=http://"+addr)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n--- script\n%s--- output\n%s", b.name(), err, script, out)
			}
			t.Logf("%s:\n%s", b.name(), out)
		})
	}
}

// docEnv is the environment examples run in: the test's without
// Stampede's own variables (the examples set what they need) and without
// any way to reach AWS, so that an example that would call AWS fails
// rather than touching an account: no AWS_* variables, no ~/.aws (HOME is
// a fresh directory; Go keeps its caches).
func docEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "AWS_"), name == "HOME", name == "GOFLAGS":
		case strings.HasPrefix(name, "STAMPEDE_") && name != "STAMPEDE_DYNAMODB_LOCAL_DIR":
		default:
			env = append(env, kv)
		}
	}
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	goEnv := strings.Split(strings.TrimSpace(string(out)), "\n")
	return append(env, "HOME="+t.TempDir(), "GOCACHE="+goEnv[0], "GOMODCACHE="+goEnv[1], "GOPATH="+goEnv[2],
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")
}

// startDocServer starts `stampede serve` for one file's examples and
// returns its address.
func startDocServer(t *testing.T, bin, file string) string {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	table := "docs-" + strings.NewReplacer("/", "-", ".", "-").Replace(file) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cmd := exec.Command(filepath.Join(bin, "stampede"), "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--dynamodb-endpoint", testenv.Endpoint(t), "--table", table, "--ready-file", ready, "--log-level", "warn")
	cmd.Env = docEnv(t)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var addr string
	waitFor(ctx, t, "the examples' server", func() bool {
		data, err := os.ReadFile(ready)
		addr = string(data)
		return err == nil && addr != ""
	}, logs)
	return addr
}

// goImports are the packages a fragment may use without importing them.
func goImports() map[string]string {
	return map[string]string{
		"client":  "github.com/stampede-cache/stampede/client",
		"context": "context",
		"errors":  "errors",
		"fmt":     "fmt",
		"http":    "net/http",
		"io":      "io",
		"log":     "log",
		"os":      "os",
		"slog":    "log/slog",
		"strings": "strings",
		"time":    "time",
	}
}

// goSource is a Go block as a compilable file.
type goSource struct {
	block docBlock
	src   string
	// imports are the packages it needs.
	imports []string
	err     error
}

// goFile makes a file of a block: as it is, or with a package clause and
// imports, around declarations or a function body.
func goFile(b docBlock) goSource {
	text := b.text
	if strings.HasPrefix(strings.TrimSpace(text), "package ") {
		return goSource{block: b, src: text, imports: parsedImports(text)}
	}
	fset := token.NewFileSet()
	header := "package example\n\n"
	// A fragment may open with its imports.
	var importDecl string
	if f, err := parser.ParseFile(fset, "", header+text, parser.ImportsOnly); err == nil && len(f.Imports) > 0 {
		end := fset.Position(f.Decls[len(f.Decls)-1].End()).Offset - len(header)
		importDecl, text = text[:end]+"\n", text[end:]
	}
	var body string
	if _, err := parser.ParseFile(fset, "", header+importDecl+b.setup+"\n"+text, parser.SkipObjectResolution); err == nil {
		body = b.setup + "\n" + text
	} else {
		body = b.setup + "\nfunc _(ctx context.Context) error {\n" + text + "\nreturn nil\n}\n"
	}
	if importDecl != "" && !strings.Contains(importDecl, `"context"`) && strings.Contains(body, "func _(ctx context.Context)") {
		importDecl += "import \"context\"\n"
	}
	header += importDecl
	src := header + body
	f, err := parser.ParseFile(fset, "", src, parser.SkipObjectResolution)
	if err != nil {
		return goSource{block: b, err: err}
	}
	var explicit []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		explicit = append(explicit, p)
	}
	if len(explicit) > 0 {
		return goSource{block: b, src: src, imports: explicit}
	}
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	if strings.Contains(body, "func _(ctx context.Context)") {
		used["context"] = true
	}
	var imports []string
	for name, path := range goImports() {
		if used[name] {
			imports = append(imports, path)
		}
	}
	sort.Strings(imports)
	var decl strings.Builder
	for _, p := range imports {
		fmt.Fprintf(&decl, "import %q\n", p)
	}
	return goSource{block: b, src: "package example\n\n" + decl.String() + body, imports: imports}
}

func parsedImports(src string) []string {
	f, err := parser.ParseFile(token.NewFileSet(), "", src, parser.ImportsOnly)
	if err != nil {
		return nil
	}
	var out []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		out = append(out, p)
	}
	return out
}

// checkGoBlocks type-checks every Go block against the packages' export
// data (go list -export), allowing unused variables and imports.
func checkGoBlocks(t *testing.T, root string, blocks []docBlock) {
	sources := make([]goSource, 0, len(blocks))
	want := map[string]bool{}
	for _, b := range blocks {
		s := goFile(b)
		sources = append(sources, s)
		for _, p := range s.imports {
			want[p] = true
		}
	}
	exports := exportData(t, root, want)
	for _, s := range sources {
		t.Run(s.block.name(), func(t *testing.T) {
			if s.block.skip != "" {
				t.Skip(s.block.skip)
			}
			if s.err != nil {
				t.Fatalf("%s: does not parse: %v\n%s", s.block.name(), s.err, s.block.text)
			}
			for _, p := range s.imports {
				if _, ok := exports[p]; !ok {
					t.Fatalf("%s: imports %s, which the root module does not build", s.block.name(), p)
				}
			}
			if errs := typeCheck(s.src, exports); len(errs) > 0 {
				t.Fatalf("%s: does not compile:\n%s\n--- as compiled\n%s", s.block.name(), strings.Join(errs, "\n"), s.src)
			}
		})
	}
}

// exportData returns the export data files of the packages (and their
// dependencies) that the root module can build.
func exportData(t *testing.T, root string, want map[string]bool) map[string]string {
	t.Helper()
	exports := map[string]string{}
	for p := range want {
		cmd := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}", p)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			continue // not in the build list: reported per block
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if path, file, ok := strings.Cut(line, "\t"); ok && file != "" {
				exports[path] = file
			}
		}
	}
	return exports
}

// typeCheck returns the hard errors of a file.
func typeCheck(src string, exports map[string]string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "example.go", src, 0)
	if err != nil {
		return []string{err.Error()}
	}
	var errs []string
	conf := types.Config{
		Importer: importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
			file, ok := exports[path]
			if !ok {
				return nil, fmt.Errorf("no export data for %s", path)
			}
			return os.Open(file)
		}),
		Error: func(err error) {
			if te, ok := err.(types.Error); ok && te.Soft && (strings.Contains(te.Msg, "declared and not used") || strings.Contains(te.Msg, "imported and not used")) {
				return
			}
			errs = append(errs, err.Error())
		},
	}
	_, _ = conf.Check("example", fset, []*ast.File{f}, nil)
	return slices.Compact(errs)
}
