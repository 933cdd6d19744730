package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stampede-cache/stampede/internal/transport"
)

// inspectRouted reports whether the API routes GET …/reservations/{key+}.
func inspectRouted() bool {
	for _, r := range transport.Routes() {
		if r.Method == http.MethodGet && r.Template == transport.ReservationRoute {
			return true
		}
	}
	return false
}

// TestReservationCommand shows the holder through the real route, changes
// nothing, and exits 3 when nobody holds the key.
func TestReservationCommand(t *testing.T) {
	if !inspectRouted() {
		t.Skip("GET /v1/projects/{project}/domains/{domain}/reservations/{key+} (op inspect) is not routed by internal/transport yet")
	}
	url := startAPI(t, nil)
	ctx := context.Background()
	common := []string{"--endpoint", url, "--project", "proj", "--domain", "dev"}
	cli := func(args ...string) (int, string, string) {
		return runCLI(ctx, nil, append(append([]string{args[0]}, common...), args[1:]...)...)
	}
	if code, out, errOut := cli("reservation", "jobs/x y"); code != exitMiss || out != "" || !strings.Contains(errOut, `nobody holds "jobs/x y"`) {
		t.Fatalf("no holder: exit %d %q %s", code, out, errOut)
	}
	if code, out, errOut := cli("reserve", "--owner", "worker-1", "-o", "fence", "jobs/x y"); code != 0 || out == "" {
		t.Fatalf("reserve: exit %d %q %s", code, out, errOut)
	}
	code, out, errOut := cli("holder", "-o", "owner", "jobs/x y")
	if code != 0 || out != "worker-1\n" {
		t.Fatalf("holder: exit %d %q %s", code, out, errOut)
	}
	code, out, errOut = cli("reservation", "--json", "jobs/x y")
	if code != 0 || !strings.Contains(out, `"owner_id":"worker-1"`) || !strings.Contains(out, `"key":"jobs/x y"`) {
		t.Fatalf("reservation --json: exit %d %q %s", code, out, errOut)
	}
	// Inspecting changed nothing: another owner is still refused.
	if code, _, _ := cli("reserve", "--owner", "worker-2", "jobs/x y"); code != exitFailure {
		t.Fatalf("reserve by another owner after inspecting: exit %d, want %d", code, exitFailure)
	}
}
