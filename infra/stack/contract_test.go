package stack_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/stampede-cache/stampede/infra/internal/contractfacts"
	"github.com/stampede-cache/stampede/infra/stack"
)

// The drift tests tie the stack to the service's contract
// (internal/contract/contract.json): the table's schema, the functions and
// the routes each serves, the environment the functions read, and the
// metrics the alarms watch.

func TestContractTable(t *testing.T) {
	facts := loadFacts(t)
	if stack.PartitionKey != facts.Table.PartitionKey || stack.SortKey != facts.Table.SortKey || stack.TTLAttribute != facts.Table.TTLAttribute {
		t.Errorf("stack's schema %s/%s ttl %s, contract's %+v", stack.PartitionKey, stack.SortKey, stack.TTLAttribute, facts.Table)
	}
	for id, props := range contractTemplate(t).ofType("AWS::DynamoDB::Table") {
		var keys []string
		for _, k := range props["KeySchema"].([]any) {
			keys = append(keys, k.(map[string]any)["KeyType"].(string)+" "+k.(map[string]any)["AttributeName"].(string))
		}
		sort.Strings(keys)
		if want := []string{"HASH " + facts.Table.PartitionKey, "RANGE " + facts.Table.SortKey}; !slices.Equal(keys, want) {
			t.Errorf("%s: key schema %v, want %v", id, keys, want)
		}
		ttl, _ := props["TimeToLiveSpecification"].(map[string]any)
		if ttl["AttributeName"] != facts.Table.TTLAttribute || ttl["Enabled"] != true {
			t.Errorf("%s: TTL %v, want %s enabled", id, ttl, facts.Table.TTLAttribute)
		}
	}
}

func TestContractFunctionsAndRoutes(t *testing.T) {
	facts := loadFacts(t)
	var names []string
	for _, f := range stack.Functions() {
		names = append(names, f.Name)
		var got, want []string
		for _, r := range f.Routes {
			got = append(got, r.Method+" "+r.Path)
		}
		for _, r := range append(facts.Routes, facts.FlyteRoutes...) {
			if r.Function == f.Name {
				want = append(want, r.Method+" "+r.Template)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("function %s serves %v, the contract says %v", f.Name, got, want)
		}
	}
	if !slices.Equal(sortedCopy(names), sortedCopy(facts.Functions)) {
		t.Errorf("stack's functions %v, contract's %v", names, facts.Functions)
	}
	var keys, want []string
	for _, props := range contractTemplate(t).ofType("AWS::ApiGatewayV2::Route") {
		keys = append(keys, props["RouteKey"].(string))
	}
	for _, r := range append(facts.Routes, facts.FlyteRoutes...) {
		want = append(want, r.Method+" "+r.Template)
	}
	if !slices.Equal(sortedCopy(keys), sortedCopy(want)) {
		t.Errorf("HTTP API routes %v, the contract's %v", sortedCopy(keys), sortedCopy(want))
	}
}

func TestContractFunctionEnvironment(t *testing.T) {
	facts := loadFacts(t)
	n := 0
	for id, props := range contractTemplate(t).ofType("AWS::Lambda::Function") {
		if props["Handler"] != "bootstrap" {
			continue // a CDK helper function, not Stampede's
		}
		n++
		env, _ := props["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		var names []string
		for k := range vars {
			names = append(names, k)
		}
		if !slices.Equal(sortedCopy(names), sortedCopy(facts.FunctionEnv)) {
			t.Errorf("%s: environment %v, the functions read %v", id, sortedCopy(names), sortedCopy(facts.FunctionEnv))
		}
		level, _ := vars["STAMPEDE_LOG_LEVEL"].(string)
		if level != "" && !slices.Contains(facts.LogLevels, level) {
			t.Errorf("%s: log level %q, the functions accept %v", id, level, facts.LogLevels)
		}
	}
	if n != len(facts.Functions) {
		t.Errorf("%d Stampede functions in the template, want %d", n, len(facts.Functions))
	}
}

// TestContractMetrics: alarms in the functions' metric namespace watch
// metrics the functions emit.
func TestContractMetrics(t *testing.T) {
	facts := loadFacts(t)
	var names []string
	for _, m := range facts.Metrics.Metrics {
		names = append(names, m.Name)
	}
	for id, props := range contractTemplate(t).ofType("AWS::CloudWatch::Alarm") {
		metrics := []map[string]any{props}
		for _, m := range asList(props["Metrics"]) {
			if stat, ok := m.(map[string]any)["MetricStat"].(map[string]any); ok {
				metrics = append(metrics, stat["Metric"].(map[string]any))
			}
		}
		for _, m := range metrics {
			if m["Namespace"] == facts.Metrics.Namespace && !slices.Contains(names, m["MetricName"].(string)) {
				t.Errorf("%s watches %s/%v, which the functions do not emit", id, facts.Metrics.Namespace, m["MetricName"])
			}
		}
	}
}

func loadFacts(t *testing.T) contractfacts.Facts {
	t.Helper()
	facts, err := contractfacts.Load()
	if err != nil {
		t.Fatal(err)
	}
	return facts
}

// synthesized is one synthesized template.
type synthesized map[string]any

// defaultTemplate synthesizes the default stack (env dev, HTTP API), once.
var defaultTemplate = sync.OnceValues(synthesizeDefault)

func contractTemplate(t *testing.T) synthesized {
	t.Helper()
	tpl, err := defaultTemplate()
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func synthesizeDefault() (tpl synthesized, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("synthesis panicked: %v", r)
		}
	}()
	assets, err := os.MkdirTemp("", "stampede-contract-assets-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(assets)
	for _, f := range stack.Functions() {
		if err := os.MkdirAll(filepath.Join(assets, f.Name), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(assets, f.Name, "bootstrap"), []byte("stub "+f.Name), 0o755); err != nil {
			return nil, err
		}
	}
	out, err := os.MkdirTemp("", "stampede-contract-out-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	app := awscdk.NewApp(&awscdk.AppProps{
		Context: &map[string]any{"env": "dev", "assetDir": assets},
		Outdir:  jsii.String(out),
	})
	st, err := stack.FromContext(app)
	if err != nil {
		return nil, err
	}
	return *assertions.Template_FromStack(st.Stack, nil).ToJSON(), nil
}

// ofType returns the properties of the template's resources of type, by
// logical id.
func (tpl synthesized) ofType(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tpl["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["Type"] == typ {
			props, _ := r["Properties"].(map[string]any)
			out[id] = props
		}
	}
	return out
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }

// asList turns a CloudFormation value that may be a list into one.
func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
