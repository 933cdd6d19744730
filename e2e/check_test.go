package e2e_test

// The porcupine check of a history, and what a failure leaves behind: the
// visualization, a listing, the history saved for TestSavedHistory, and an
// explanation of the first operations that cannot be linearized.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stampede-cache/stampede/internal/apimodel"
)

// checkHistory runs porcupine over the history. On a violation (or a check
// that runs out of time) it writes the visualization into a fresh temporary
// directory and fails the test naming it, with the operations that could
// not be linearized.
func checkHistory(t *testing.T, name string, history []porcupine.Operation, timeout time.Duration) bool {
	t.Helper()
	model := apimodel.Model()
	model.DescribeOperationMetadata = func(info interface{}) string {
		if m, ok := info.(*opMeta); ok {
			return m.text
		}
		return ""
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, history, timeout)
	t.Logf("%s: porcupine checked %d operations in %s: %s", name, len(history), time.Since(start).Round(time.Millisecond), res)
	if res == porcupine.Ok {
		return true
	}
	dir, err := os.MkdirTemp("", "stampede-linearizability-")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, sanitizeName(name)+".html")
	if err := porcupine.VisualizePath(model, info, file); err != nil {
		t.Errorf("write the visualization: %v", err)
	}
	listing := filepath.Join(dir, sanitizeName(name)+".txt")
	if err := os.WriteFile(listing, []byte(listHistory(history)), 0o644); err != nil {
		t.Errorf("write the history: %v", err)
	}
	if err := saveHistory(filepath.Join(dir, sanitizeName(name)+".json"), history); err != nil {
		t.Errorf("save the history: %v", err)
	}
	if res == porcupine.Unknown {
		t.Errorf("%s: porcupine could not decide within %s (not proven); visualization: %s, history: %s", name, timeout, file, listing)
		return false
	}
	t.Errorf("%s: the history is not linearizable; visualization: %s, history: %s\n%s", name, file, listing, explain(history, info))
	return false
}

// opMeta identifies an operation of a history and carries its HTTP
// exchange, for the visualization and the listing.
type opMeta struct{ text string }

// savedOp is an operation of a saved history (STAMPEDE_PROOF_HISTORY).
type savedOp struct {
	Client       int
	Input        apimodel.Input
	Output       apimodel.Output
	Call, Return int64
	Exchange     string
}

// saveHistory writes a history as JSON, for TestSavedHistory to check again.
func saveHistory(path string, history []porcupine.Operation) error {
	ops := make([]savedOp, len(history))
	for i, op := range history {
		ops[i] = savedOp{Client: op.ClientId, Input: op.Input.(apimodel.Input), Output: op.Output.(apimodel.Output), Call: op.Call, Return: op.Return}
		if m, ok := op.Metadata.(*opMeta); ok {
			ops[i].Exchange = m.text
		}
	}
	data, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// TestSavedHistory checks again a history a failed run saved: set
// STAMPEDE_PROOF_HISTORY to its .json file.
func TestSavedHistory(t *testing.T) {
	path := os.Getenv("STAMPEDE_PROOF_HISTORY")
	if path == "" {
		t.Skip("set STAMPEDE_PROOF_HISTORY to a history a failed run saved")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ops []savedOp
	if err := json.Unmarshal(data, &ops); err != nil {
		t.Fatal(err)
	}
	history := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		history[i] = porcupine.Operation{ClientId: op.Client, Input: op.Input, Output: op.Output, Call: op.Call, Return: op.Return, Metadata: &opMeta{text: op.Exchange}}
	}
	checkHistory(t, "saved", history, 10*time.Minute)
}

// listHistory lists a history key by key, in call order, with each
// operation's HTTP exchange.
func listHistory(history []porcupine.Operation) string {
	var b strings.Builder
	for _, part := range apimodel.PartitionByKey(history) {
		part = append([]porcupine.Operation(nil), part...)
		sort.Slice(part, func(i, j int) bool { return part[i].Call < part[j].Call })
		fmt.Fprintf(&b, "key %q\n", part[0].Input.(apimodel.Input).Key)
		for _, op := range part {
			in, out := op.Input.(apimodel.Input), op.Output.(apimodel.Output)
			fmt.Fprintf(&b, "  client %2d [%8.1f ms, %8.1f ms] now in [%d, %d] %s\n", op.ClientId, float64(op.Call)/1e6, float64(op.Return)/1e6,
				in.CallMs, out.ReturnMs, apimodel.Describe(in, out))
			if m, ok := op.Metadata.(*opMeta); ok {
				fmt.Fprintf(&b, "      %s\n", strings.ReplaceAll(m.text, "\n", "\n      "))
			}
		}
	}
	return b.String()
}

// dedupe drops repeated states.
func dedupe(states []apimodel.State) []apimodel.State {
	seen := map[apimodel.State]bool{}
	out := states[:0]
	for _, s := range states {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// explain describes, for each key whose history is not linearizable, the
// longest linearizable prefix's end state and the operations that could
// not follow it.
func explain(history []porcupine.Operation, info porcupine.LinearizationInfo) string {
	var b strings.Builder
	parts := apimodel.PartitionByKey(history)
	partials := info.PartialLinearizationsOperations()
	for i, part := range parts {
		if i >= len(partials) {
			break
		}
		var longest []porcupine.Operation
		for _, p := range partials[i] {
			if len(p) > len(longest) {
				longest = p
			}
		}
		if len(longest) == len(part) {
			continue
		}
		key := part[0].Input.(apimodel.Input).Key
		states := []apimodel.State{{}}
		for _, op := range longest {
			var next []apimodel.State
			for _, s := range states {
				next = append(next, apimodel.Step(s, op.Input.(apimodel.Input), op.Output.(apimodel.Output))...)
			}
			states = dedupe(next)
		}
		fmt.Fprintf(&b, "key %q: %d of %d operations linearize; then the state is one of:\n", key, len(longest), len(part))
		for j, s := range states {
			if j == 4 {
				fmt.Fprintf(&b, "    … %d more\n", len(states)-j)
				break
			}
			fmt.Fprintf(&b, "    %s\n", s)
		}
		done := map[any]bool{}
		for _, op := range longest {
			done[op.Metadata] = true
		}
		var rest []porcupine.Operation
		for _, op := range part {
			if !done[op.Metadata] {
				rest = append(rest, op)
			}
		}
		sort.Slice(rest, func(a, b int) bool { return rest[a].Call < rest[b].Call })
		// The candidates to come next are those called before any of the
		// rest returned; say which the model refuses outright.
		firstReturn := rest[0].Return
		for _, op := range rest {
			firstReturn = min(firstReturn, op.Return)
		}
		b.WriteString("  the operations that could come next:\n")
		for j, op := range rest {
			if op.Call > firstReturn {
				break
			}
			if j == 12 {
				b.WriteString("    …\n")
				break
			}
			in, out := op.Input.(apimodel.Input), op.Output.(apimodel.Output)
			verdict := "refused by the model"
			for _, s := range states {
				if len(apimodel.Step(s, in, out)) > 0 {
					verdict = "possible, but leads nowhere"
					break
				}
			}
			fmt.Fprintf(&b, "    client %d [%d ms, %d ms] %s: %s\n", op.ClientId, op.Call/1e6, op.Return/1e6, apimodel.Describe(in, out), verdict)
		}
	}
	return b.String()
}
