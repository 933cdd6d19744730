package contract_test

import (
	"slices"
	"testing"

	"github.com/stampede-cache/stampede/internal/contract"
)

func TestLambdaErrorType(t *testing.T) {
	for _, tt := range []struct{ code, want string }{
		{contract.CodeInvalidArgument, "Stampede.InvalidArgument"},
		{contract.CodeNotFound, "Stampede.NotFound"},
		{contract.CodeAlreadyExists, "Stampede.AlreadyExists"},
		{contract.CodeFailedPrecondition, "Stampede.FailedPrecondition"},
		{contract.CodePayloadTooLarge, "Stampede.PayloadTooLarge"},
		{contract.CodeThrottled, "Stampede.Throttled"},
		{contract.CodeUnavailable, "Stampede.Unavailable"},
		{contract.CodeInternal, "Stampede.Internal"},
		{"a__b_", "Stampede.AB"},
	} {
		if got := contract.LambdaErrorType(tt.code); got != tt.want {
			t.Errorf("LambdaErrorType(%q) = %q, want %q", tt.code, got, tt.want)
		}
	}
}

func TestErrorCodesAreDistinct(t *testing.T) {
	codes, types := map[string]bool{}, map[string]bool{}
	for _, c := range contract.ErrorCodes() {
		if codes[c.Code] || types[c.LambdaErrorType] {
			t.Errorf("%+v: code or Lambda error type listed twice", c)
		}
		codes[c.Code], types[c.LambdaErrorType] = true, true
		if c.Status < 400 || c.Status > 599 {
			t.Errorf("%+v: status is not an error status", c)
		}
		if (c.Status >= 500) != slices.Contains([]string{contract.CodeUnavailable, contract.CodeInternal}, c.Code) {
			t.Errorf("%+v: only unavailable and internal are server errors", c)
		}
	}
}

func TestRoutes(t *testing.T) {
	seen := map[string]bool{}
	ops := map[string]bool{}
	served := map[string]bool{}
	for _, r := range contract.Routes() {
		if seen[r.Key()] {
			t.Errorf("route %s listed twice", r.Key())
		}
		seen[r.Key()] = true
		if ops[r.Op] {
			t.Errorf("op %s has two routes", r.Op)
		}
		ops[r.Op] = true
		if !slices.Contains(contract.Functions(), r.Function) {
			t.Errorf("route %s: function %q is not one of %v", r.Key(), r.Function, contract.Functions())
		}
		served[r.Function] = true
		if got := contract.FunctionOf(r.Op); got != r.Function {
			t.Errorf("FunctionOf(%s) = %q, want %q", r.Op, got, r.Function)
		}
	}
	for _, r := range contract.FlyteRoutes() {
		served[r.Function] = true
	}
	for _, f := range contract.Functions() {
		if !served[f] {
			t.Errorf("function %s serves no route", f)
		}
	}
	if got := contract.FunctionOf(contract.OpInspect); got != contract.FunctionGet {
		t.Errorf("inspect is served by %q, want the get function", got)
	}
	if got := contract.FunctionOf("nope"); got != "" {
		t.Errorf("FunctionOf(unknown) = %q", got)
	}
	if got, want := contract.Ops(), []string{"get", "put", "delete", "reserve", "release", "inspect"}; !slices.Equal(got, want) {
		t.Errorf("Ops() = %v, want %v", got, want)
	}
}

func TestMetricsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range contract.Metrics() {
		if seen[m.Name] {
			t.Errorf("metric %s listed twice", m.Name)
		}
		seen[m.Name] = true
		if m.Unit != "Count" && m.Unit != "Milliseconds" {
			t.Errorf("metric %s: unit %q", m.Name, m.Unit)
		}
	}
	if len(seen) != 13 {
		t.Errorf("%d metrics, want the 13 of CONTRACT.md", len(seen))
	}
}
