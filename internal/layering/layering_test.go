package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/stampede-cache/stampede"

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Standard   bool
	// Imports excludes test files' imports.
	Imports []string
}

// rule limits which of the module's packages may import a family of
// packages.
type rule struct {
	// what names the family in messages.
	what string
	// matches tells an import of the family.
	matches func(importPath string) bool
	// allowed tells a package that may import it.
	allowed func(importPath string) bool
}

func prefixes(ps ...string) func(string) bool {
	return func(s string) bool {
		for _, p := range ps {
			if s == p || strings.HasPrefix(s, p+"/") {
				return true
			}
		}
		return false
	}
}

func only(pkgs ...string) func(string) bool {
	return func(s string) bool { return slices.Contains(pkgs, s) }
}

func except(pkgs ...string) func(string) bool {
	return func(s string) bool { return !slices.Contains(pkgs, s) }
}

// rules are the module's layering.
func rules(standard func(string) bool) []rule {
	return []rule{
		{
			what:    "the DynamoDB SDK",
			matches: prefixes("github.com/aws/aws-sdk-go-v2/service/dynamodb", "github.com/aws/aws-sdk-go-v2/feature/dynamodb"),
			allowed: only(module + "/internal/dynamostore"),
		},
		{
			what:    "the S3 SDK",
			matches: prefixes("github.com/aws/aws-sdk-go-v2/service/s3", "github.com/aws/aws-sdk-go-v2/feature/s3"),
			allowed: only(module + "/internal/s3blobs"),
		},
		{
			what:    "anything beyond the standard library",
			matches: func(s string) bool { return !standard(s) },
			allowed: except(module + "/internal/contract"),
		},
		{
			what: "Lambda, HTTP or the AWS SDK",
			matches: prefixes("github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go", "github.com/aws/aws-lambda-go",
				"net/http"),
			allowed: except(module + "/internal/manager"),
		},
	}
}

// violations lists every import of pkgs that a rule forbids.
func violations(pkgs []pkg, rules []rule) []string {
	var out []string
	for _, p := range pkgs {
		if !strings.HasPrefix(p.ImportPath, module) {
			continue
		}
		for _, imp := range p.Imports {
			for _, r := range rules {
				if r.matches(imp) && !r.allowed(p.ImportPath) {
					out = append(out, p.ImportPath+" imports "+imp+": "+r.what+" is not for it")
				}
			}
		}
	}
	return out
}

// list runs go list -deps -json over the module's packages.
func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Standard,Imports", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestLayering(t *testing.T) {
	pkgs := list(t)
	standard := map[string]bool{}
	ours := 0
	for _, p := range pkgs {
		standard[p.ImportPath] = p.Standard
		if strings.HasPrefix(p.ImportPath, module) {
			ours++
		}
	}
	if ours < 10 || !standard["net/http"] {
		t.Fatalf("go list found %d of the module's packages (net/http standard: %v): not the module", ours, standard["net/http"])
	}
	for _, v := range violations(pkgs, rules(func(s string) bool { return standard[s] })) {
		t.Error(v)
	}
}

// TestRulesCatchViolations feeds the rules imports they forbid and allow.
func TestRulesCatchViolations(t *testing.T) {
	standard := func(s string) bool { return !strings.Contains(s, ".") }
	tests := []struct {
		pkg, imp string
		bad      bool
	}{
		{module + "/internal/config", "github.com/aws/aws-sdk-go-v2/service/dynamodb", true},
		{module + "/internal/testenv", "github.com/aws/aws-sdk-go-v2/service/dynamodb/types", true},
		{module + "/internal/transport", "github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue", true},
		{module + "/internal/dynamostore", "github.com/aws/aws-sdk-go-v2/service/dynamodb", false},
		{module + "/internal/config", "github.com/aws/aws-sdk-go-v2/service/s3", true},
		{module + "/internal/dynamostore", "github.com/aws/aws-sdk-go-v2/service/s3", true},
		{module + "/internal/s3blobs", "github.com/aws/aws-sdk-go-v2/service/s3", false},
		{module + "/internal/s3blobs", "github.com/aws/aws-sdk-go-v2/service/s3control", false},
		{module + "/internal/config", "github.com/aws/aws-sdk-go-v2/service/s3control", false},
		{module + "/internal/contract", "net/http", false},
		{module + "/internal/contract", module + "/internal/manager", true},
		{module + "/internal/manager", "net/http", true},
		{module + "/internal/manager", "github.com/aws/aws-lambda-go/events", true},
		{module + "/internal/manager", "github.com/hashicorp/golang-lru/v2", false},
		{"example.com/other", "github.com/aws/aws-sdk-go-v2/service/s3", false},
	}
	for _, tt := range tests {
		got := violations([]pkg{{ImportPath: tt.pkg, Imports: []string{tt.imp}}}, rules(standard))
		if (len(got) > 0) != tt.bad {
			t.Errorf("%s importing %s: violations %q, want any: %v", tt.pkg, tt.imp, got, tt.bad)
		}
	}
}

// linkRule keeps a family of packages out of some Lambda functions'
// binaries: what a function links it carries into every cold start.
type linkRule struct {
	what    string
	matches func(importPath string) bool
	// banned lists the functions (folders under functions/) that must
	// not link it.
	banned []string
}

var httpAPIFunctions = []string{"get", "put", "delete", "reserve", "release"}

// linkRules: the protobuf and Connect code of Flyte's cache service lives
// in the flyte function only; reserve and release never touch objects.
var linkRules = []linkRule{
	{"Flyte's protobuf and Connect code", prefixes("google.golang.org/protobuf", "connectrpc.com/connect", module+"/internal/flyte"), httpAPIFunctions},
	{"the S3 SDK", prefixes("github.com/aws/aws-sdk-go-v2/service/s3", "github.com/aws/aws-sdk-go-v2/feature/s3"), []string{"reserve", "release"}},
}

// TestFunctionsLinkOnlyWhatTheyUse checks each function's transitive
// dependencies against linkRules.
func TestFunctionsLinkOnlyWhatTheyUse(t *testing.T) {
	for _, rule := range linkRules {
		for _, fn := range rule.banned {
			out, err := exec.Command("go", "list", "-deps", module+"/functions/"+fn).Output()
			if err != nil {
				t.Fatalf("go list %s: %v", fn, err)
			}
			deps := strings.Fields(string(out))
			if !slices.Contains(deps, module+"/internal/transport") {
				t.Fatalf("functions/%s: go list found no transport among %d dependencies", fn, len(deps))
			}
			for _, d := range deps {
				if rule.matches(d) {
					t.Errorf("functions/%s links %s (%s)", fn, d, rule.what)
					break
				}
			}
		}
	}
	// The rule can fail: the flyte function does link Flyte's code.
	out, err := exec.Command("go", "list", "-deps", module+"/functions/flyte").Output()
	if err != nil {
		t.Fatalf("go list flyte: %v", err)
	}
	if !slices.ContainsFunc(strings.Fields(string(out)), linkRules[0].matches) {
		t.Error("functions/flyte links no protobuf: the rule's prefixes are stale")
	}
}
