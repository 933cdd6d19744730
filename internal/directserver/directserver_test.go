package directserver_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stampede-cache/stampede/internal/directserver"
	"github.com/stampede-cache/stampede/internal/manager"
	"github.com/stampede-cache/stampede/internal/testenv"
	"github.com/stampede-cache/stampede/internal/transport"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	store, _ := testenv.Store(t)
	clock := directserver.NewClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	mgr, err := manager.New(store, manager.Config{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(directserver.New(mgr, clock, transport.Options{}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func invoke(t *testing.T, srv *httptest.Server, function, payload string) directserver.InvokeResult {
	t.Helper()
	status, body := do(t, srv, http.MethodPost, "/invoke/"+function, payload)
	if status != http.StatusOK {
		t.Fatalf("invoke %s: status %d: %s", function, status, body)
	}
	var res directserver.InvokeResult
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("invoke %s: %v: %s", function, err, body)
	}
	return res
}

// TestLeasesFollowTheClock reserves a key, moves the clock past the lease
// and takes the key over: the manager decides expiry by the server's clock.
func TestLeasesFollowTheClock(t *testing.T) {
	srv := newServer(t)
	const key = `"project":"ml","domain":"dev","key":"k"`
	type reserved struct {
		Acquired    bool `json:"acquired"`
		Reservation struct {
			OwnerID   string `json:"owner_id"`
			Fence     int64  `json:"fence"`
			ExpiresAt string `json:"expires_at"`
		} `json:"reservation"`
	}
	reserve := func(owner string) reserved {
		t.Helper()
		res := invoke(t, srv, "reserve", `{`+key+`,"owner_id":"`+owner+`","heartbeat_interval_seconds":2}`)
		if res.Error != nil {
			t.Fatalf("reserve: %+v", res.Error)
		}
		var r reserved
		if err := json.Unmarshal(res.Result, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := reserve("a")
	if !first.Acquired || first.Reservation.ExpiresAt != "2026-11-21T12:00:06.000Z" {
		t.Fatalf("first reserve: %+v", first)
	}
	for _, tc := range []struct {
		offsetMS     int64
		owner        string
		wantAcquired bool
		wantHolder   string
	}{
		{5999, "b", false, "a"}, // one millisecond before the lease ends
		{6000, "b", true, "b"},  // the lease has ended
	} {
		if status, body := do(t, srv, http.MethodPut, "/clock", `{"offset_ms":`+jsonInt(tc.offsetMS)+`}`); status != http.StatusOK {
			t.Fatalf("set clock: %d %s", status, body)
		}
		got := reserve(tc.owner)
		if got.Acquired != tc.wantAcquired || got.Reservation.OwnerID != tc.wantHolder {
			t.Errorf("at +%d ms, reserve by %s: %+v", tc.offsetMS, tc.owner, got)
		}
		if got.Acquired && got.Reservation.Fence <= first.Reservation.Fence {
			t.Errorf("take-over fence %d, not above %d", got.Reservation.Fence, first.Reservation.Fence)
		}
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestRoutes(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"function error as Lambda reports it", http.MethodPost, "/invoke/get", `{"project":"ml"}`, http.StatusOK, `"errorType":"Stampede.InvalidArgument"`},
		{"miss", http.MethodPost, "/invoke/get", `{"project":"ml","domain":"dev","key":"nothing"}`, http.StatusOK, `"result":{"found":false`},
		{"unknown function", http.MethodPost, "/invoke/compute", `{}`, http.StatusNotFound, "no function"},
		{"invoke is a POST", http.MethodGet, "/invoke/get", ``, http.StatusNotFound, "no such route"},
		{"clock forward", http.MethodPut, "/clock", `{"offset_ms":1000}`, http.StatusOK, `"now":"2026-11-21T12:00:01Z"`},
		{"clock never goes back", http.MethodPut, "/clock", `{"offset_ms":999}`, http.StatusConflict, "never goes back"},
		{"clock needs an offset", http.MethodPut, "/clock", `{"offset":5}`, http.StatusBadRequest, "offset_ms"},
		{"clock read", http.MethodGet, "/clock", ``, http.StatusOK, `"offset_ms":1000`},
	} {
		// In order: the clock cases build on each other.
		status, body := do(t, srv, tc.method, tc.path, tc.body)
		if status != tc.status || !strings.Contains(body, tc.contains) {
			t.Errorf("%s: %d %s, want %d containing %s", tc.name, status, body, tc.status, tc.contains)
		}
	}
}
