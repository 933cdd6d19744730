package stack_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/stampede-cache/stampede/infra/stack"
)

// Each variant is synthesized once per test binary (jsii's start-up and a
// synthesis take seconds), the first time a test asks for it.
type variant struct {
	name    string
	context map[string]string

	once  sync.Once
	st    *stack.Stampede
	tpl   assertions.Template
	json  map[string]any
	err   error
	stack string
}

var (
	devHTTP = &variant{name: "dev", context: map[string]string{"env": "dev"}}
	prod    = &variant{name: "prod", context: map[string]string{"env": "prod"}}
	// The REST variant also exercises the other context switches.
	stagingREST = &variant{name: "staging-rest", context: map[string]string{
		"env": "staging", "api": "rest", "arch": "x86_64", "outputsExpirationDays": "0",
		"logLevel": "debug", "memory": "512", "alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:oncall",
		"reservedConcurrency": "0", "throttleRateLimit": "50", "throttleBurstLimit": "75",
		"noncurrentVersionExpirationDays": "3",
	}}
	example = &variant{name: "example", context: map[string]string{"env": "dev", "example": "true"}}
	// REST with API Gateway's account-wide CloudWatch Logs role.
	restRole = &variant{name: "rest-role", context: map[string]string{"env": "qa", "api": "rest", "apiGatewayCloudWatchRole": "true"}}

	variants = []*variant{devHTTP, prod, stagingREST, example, restRole}
)

var assetDir string

func TestMain(m *testing.M) {
	// Stand-ins for the binaries `make build` writes: synthesis only
	// hashes and copies them.
	dir, err := os.MkdirTemp("", "stampede-assets-")
	if err != nil {
		panic(err)
	}
	for _, f := range stack.Functions() {
		if err := os.MkdirAll(filepath.Join(dir, f.Name), 0o755); err != nil {
			panic(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name, "bootstrap"), []byte("stub "+f.Name), 0o755); err != nil {
			panic(err)
		}
	}
	assetDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	jsii.Close() // stops the node process and removes its temp dir
	os.Exit(code)
}

// cdkJSONContext is infra/cdk.json's context: the feature flags the app
// synthesizes with.
func cdkJSONContext(t testing.TB) map[string]any {
	b, err := os.ReadFile(filepath.Join("..", "cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Context
}

// newApp is an app with cdk.json's flags and ctx, writing to a temp dir.
func newApp(t testing.TB, ctx map[string]string) awscdk.App {
	c := cdkJSONContext(t)
	c["assetDir"] = assetDir
	for k, v := range ctx {
		c[k] = v
	}
	out, err := os.MkdirTemp("", "stampede-cdk-out-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(out) })
	return awscdk.NewApp(&awscdk.AppProps{Context: &c, Outdir: jsii.String(out)})
}

func (v *variant) load(t *testing.T) {
	t.Helper()
	v.once.Do(func() {
		defer func() {
			if r := recover(); r != nil {
				v.err = fmt.Errorf("synthesis panicked: %v", r)
			}
		}()
		// The app outlives this test: use a directory of the binary's.
		c := cdkJSONContext(t)
		c["assetDir"] = assetDir
		for k, val := range v.context {
			c[k] = val
		}
		out, err := os.MkdirTemp("", "stampede-cdk-out-")
		if err != nil {
			v.err = err
			return
		}
		defer os.RemoveAll(out)
		app := awscdk.NewApp(&awscdk.AppProps{Context: &c, Outdir: jsii.String(out)})
		v.st, v.err = stack.FromContext(app)
		if v.err != nil {
			return
		}
		v.stack = *v.st.Stack.StackName()
		v.tpl = assertions.Template_FromStack(v.st.Stack, nil)
		v.json = *v.tpl.ToJSON()
	})
	if v.err != nil {
		t.Fatalf("variant %s: %v", v.name, v.err)
	}
}

func (v *variant) template(t *testing.T) assertions.Template {
	v.load(t)
	return v.tpl
}

func (v *variant) resources(t *testing.T) map[string]map[string]any {
	v.load(t)
	out := map[string]map[string]any{}
	for id, r := range v.json["Resources"].(map[string]any) {
		out[id] = r.(map[string]any)
	}
	return out
}

// ofType returns the logical ids and properties of the resources of type.
func (v *variant) ofType(t *testing.T, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range v.resources(t) {
		if r["Type"] == typ {
			props, _ := r["Properties"].(map[string]any)
			out[id] = props
		}
	}
	return out
}

// check runs an assertion of the CDK assertions module, which panics (a
// JavaScript exception) when it fails, and reports that as a test error.
func check(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

// flat renders a CloudFormation value as a string: Ref and Fn::GetAtt as
// ${Id} and ${Id.Attr}, Fn::Join concatenated.
func flat(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if ref, ok := x["Ref"]; ok {
			return "${" + ref.(string) + "}"
		}
		if att, ok := x["Fn::GetAtt"].([]any); ok {
			return "${" + att[0].(string) + "." + att[1].(string) + "}"
		}
		if join, ok := x["Fn::Join"].([]any); ok {
			parts := []string{}
			for _, p := range join[1].([]any) {
				parts = append(parts, flat(p))
			}
			return strings.Join(parts, join[0].(string))
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// list turns a single value or a list into a list.
func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// logicalID returns the id of the only resource of typ whose id starts
// with prefix (CDK appends a hash).
func (v *variant) logicalID(t *testing.T, typ, prefix string) string {
	t.Helper()
	var ids []string
	for id := range v.ofType(t, typ) {
		if strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		sort.Strings(ids)
		t.Fatalf("want one %s with id %s*, got %v", typ, prefix, ids)
	}
	return ids[0]
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}
