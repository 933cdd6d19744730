package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/jsii-runtime-go"

	"github.com/stampede-cache/stampede/infra/stack"
)

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close() // stops the node process and removes its temp dir
	os.Exit(code)
}

// TestSynthesizeOffline runs the app as `make synth` does (no CDK CLI, no
// AWS credentials) and checks the template it writes.
func TestSynthesizeOffline(t *testing.T) {
	assets := t.TempDir()
	for _, f := range stack.Functions() {
		if err := os.MkdirAll(filepath.Join(assets, f.Name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(assets, f.Name, "bootstrap"), []byte(f.Name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	t.Setenv("CDK_OUTDIR", out)
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "CDK_CONTEXT_JSON"} {
		t.Setenv(v, "")
	}
	if err := run([]string{"-c", "env=qa", "-c", "assetDir=" + assets, "--context", "api=rest"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "Stampede-qa.template.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Resources map[string]struct{ Type string }
	}
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, r := range tpl.Resources {
		types[r.Type]++
	}
	if types["AWS::Lambda::Function"] != 6 || types["AWS::ApiGateway::RestApi"] != 1 {
		t.Errorf("resources: %v", types)
	}
	// cdk.json's feature flags apply: e.g. no API Gateway CloudWatch role.
	if types["AWS::ApiGateway::Account"] != 0 {
		t.Errorf("resources: %v", types)
	}
	for _, name := range []string{"stampede-qa-get", "stampede-qa-flyte"} {
		if !strings.Contains(string(b), `"`+name+`"`) {
			t.Errorf("no function %s in the template", name)
		}
	}
}

func TestArguments(t *testing.T) {
	for _, args := range [][]string{{"-c", "novalue"}, {"stray"}, {"-x"}} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) accepted bad arguments", args)
		}
	}
}
