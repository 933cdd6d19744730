package contract_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/stampede-cache/stampede/internal/contract"
)

var update = flag.Bool("update", false, "rewrite contract.json from the package")

// TestSnapshot keeps contract.json, which infra/ (its own Go module) reads
// in its drift tests, equal to the package: after changing a fact, run
// go test ./internal/contract -run TestSnapshot -update.
func TestSnapshot(t *testing.T) {
	want, err := json.MarshalIndent(contract.All(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile("contract.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("contract.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("contract.json is out of date: run go test ./internal/contract -run TestSnapshot -update\n--- want\n%s", want)
	}
}
