package cachedtask_test

import (
	"slices"
	"testing"

	"github.com/stampede-cache/stampede/infra/cachedtask"
	"github.com/stampede-cache/stampede/infra/internal/contractfacts"
)

// TestErrorTypesAreTheContracts: the construct catches and retries the
// error types the functions raise (internal/contract).
func TestErrorTypesAreTheContracts(t *testing.T) {
	facts, err := contractfacts.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{cachedtask.ErrAlreadyExists, cachedtask.ErrThrottled, cachedtask.ErrUnavailable} {
		if !slices.Contains(facts.LambdaErrorTypes(), name) {
			t.Errorf("the construct matches %q, which no function raises: the contract's types are %v", name, facts.LambdaErrorTypes())
		}
	}
}
