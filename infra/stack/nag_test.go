package stack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/infra/stack"
)

// nagFinding is one finding of cdk-nag that is not compliant (see
// testdata/nag.mjs).
type nagFinding struct {
	Rule, Level, Resource, Finding, Status, Reason string
}

// runNag runs cdk-nag's AwsSolutions checks (npm cdk-nag, pinned in
// infra/package.json) over the templates, by file name.
func runNag(t *testing.T, templates map[string]map[string]any) map[string][]nagFinding {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for name, tpl := range templates {
		b, err := json.Marshal(tpl)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name+".json")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join("testdata", "nag.mjs")}, files...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cdk-nag: %v", err)
	}
	var report map[string][]nagFinding
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("cdk-nag's report: %v\n%s", err, out)
	}
	byName := map[string][]nagFinding{}
	for file, findings := range report {
		byName[strings.TrimSuffix(file, ".json")] = findings
	}
	return byName
}

// TestCdkNag runs cdk-nag's AwsSolutions pack over every variant: no
// finding may be left unfixed, every suppression has its reason (written
// in stack/nag.go, carried by the template's metadata) and is used, and a
// template with access logs and a suppression removed fails the checks.
func TestCdkNag(t *testing.T) {
	if _, err := os.Stat(filepath.Join("..", "node_modules", "cdk-nag")); err != nil {
		t.Skip("cdk-nag is not installed: run npm ci --prefix infra (make test-infra does)")
	}
	templates := map[string]map[string]any{}
	for _, v := range variants {
		v.load(t)
		templates[v.name] = v.json
	}
	// The control: the dev template without its stage's access logs and
	// without the bucket's suppression.
	var control map[string]any
	b, _ := json.Marshal(devHTTP.json)
	if err := json.Unmarshal(b, &control); err != nil {
		t.Fatal(err)
	}
	for _, r := range control["Resources"].(map[string]any) {
		res := r.(map[string]any)
		switch res["Type"] {
		case "AWS::ApiGatewayV2::Stage":
			delete(res["Properties"].(map[string]any), "AccessLogSettings")
		case "AWS::S3::Bucket":
			delete(res, "Metadata")
		}
	}
	templates["control"] = control

	report := runNag(t, templates)
	controlRules := map[string]string{}
	for _, f := range report["control"] {
		if f.Status == "non-compliant" {
			controlRules[f.Rule] = f.Resource
		}
	}
	if _, ok := controlRules["AwsSolutions-APIG1"]; !ok {
		t.Errorf("the control without access logs passed AwsSolutions-APIG1: %v", report["control"])
	}
	if _, ok := controlRules["AwsSolutions-S1"]; !ok {
		t.Errorf("the control without the bucket's suppression passed AwsSolutions-S1: %v", report["control"])
	}

	used := map[string]bool{} // variant/resource/rule
	for _, v := range variants {
		counts := map[string]int{}
		for _, f := range report[v.name] {
			switch f.Status {
			case "suppressed":
				if len(f.Reason) < 40 {
					t.Errorf("%s: %s on %s suppressed without a real reason: %q", v.name, f.Rule, f.Resource, f.Reason)
				}
				used[v.name+"/"+f.Resource+"/"+f.Rule] = true
				counts[f.Rule]++
			default:
				t.Errorf("%s: %s %s on %s (%s): %s", v.name, f.Status, f.Rule, f.Resource, f.Finding, f.Reason)
			}
		}
		var lines []string
		for rule, n := range counts {
			lines = append(lines, fmt.Sprintf("%s ×%d", rule, n))
		}
		sort.Strings(lines)
		t.Logf("%s: %d findings, all suppressed with a reason: %s", v.name, len(report[v.name]), strings.Join(lines, ", "))
		if len(report[v.name]) == 0 {
			t.Errorf("%s: cdk-nag reported nothing at all: did it run?", v.name)
		}
		// Every suppression the stack writes is needed.
		for id, r := range v.resources(t) {
			meta, _ := r["Metadata"].(map[string]any)
			nag, _ := meta[stack.NagMetadataKey].(map[string]any)
			for _, s := range list(nag["rules_to_suppress"]) {
				rule := s.(map[string]any)["id"].(string)
				if !used[v.name+"/"+id+"/"+rule] {
					t.Errorf("%s: %s's suppression of %s matches no finding", v.name, id, rule)
				}
			}
		}
	}
}
