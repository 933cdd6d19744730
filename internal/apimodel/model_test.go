package apimodel_test

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/stampede-cache/stampede/internal/apimodel"
)

const lease = 3000 // ms: a 1 s heartbeat times 3

// op is one operation of a test history; call and ret are milliseconds.
func op(client int, call, ret int64, in apimodel.Input, out apimodel.Output) porcupine.Operation {
	if in.Key == "" {
		in.Key = "k"
	}
	in.CallMs, out.ReturnMs = call, ret
	if in.Op == apimodel.Reserve && in.LeaseMs == 0 {
		in.LeaseMs = lease
	}
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
}

// pending is an operation whose outcome is unknown: it may take effect at
// any time after its call.
func pending(client int, call, answered int64, in apimodel.Input, status int) porcupine.Operation {
	o := op(client, call, answered, in, apimodel.Output{Unknown: true, Status: status})
	o.Return = math.MaxInt64 / 2
	return o
}

func put(uri string) apimodel.Input { return apimodel.Input{Op: apimodel.Put, URI: uri} }

func overwrite(uri string) apimodel.Input {
	return apimodel.Input{Op: apimodel.Put, URI: uri, Overwrite: true}
}

func fenced(uri, owner string, fence int64, release bool) apimodel.Input {
	return apimodel.Input{Op: apimodel.Put, URI: uri, Overwrite: true, Owner: owner, Fence: fence, Release: release}
}

func entry(status int, uri string, v int64) apimodel.Output {
	return apimodel.Output{Status: status, Entry: &apimodel.Entry{URI: uri, Version: v}}
}

var (
	get      = apimodel.Input{Op: apimodel.Get}
	del      = apimodel.Input{Op: apimodel.Delete}
	inspect  = apimodel.Input{Op: apimodel.Inspect}
	notFound = apimodel.Output{Status: 404}
)

func reserve(owner string) apimodel.Input { return apimodel.Input{Op: apimodel.Reserve, Owner: owner} }
func release(owner string) apimodel.Input { return apimodel.Input{Op: apimodel.Release, Owner: owner} }

func reservation(acquired bool, owner string, fence, exp int64) apimodel.Output {
	return apimodel.Output{Status: 200, Acquired: acquired, Reservation: &apimodel.Reservation{Owner: owner, Fence: fence, ExpiresMs: exp}}
}

func holder412(owner string, fence, exp int64) apimodel.Output {
	return apimodel.Output{Status: 412, Reservation: &apimodel.Reservation{Owner: owner, Fence: fence, ExpiresMs: exp}}
}

func TestModel(t *testing.T) {
	tests := []struct {
		name    string
		history []porcupine.Operation
		legal   bool
	}{
		{"entry lifecycle, versions growing across a delete", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1000)),
			op(0, 20, 30, get, entry(200, "a", 1000)),
			op(0, 40, 50, overwrite("b"), entry(200, "b", 1001)),
			op(0, 60, 70, del, apimodel.Output{Status: 200, Deleted: true}),
			op(0, 80, 90, get, notFound),
			op(0, 100, 110, del, apimodel.Output{Status: 200}),
			op(0, 120, 130, put("c"), entry(201, "c", 1002)),
		}, true},
		{"a version repeats after a delete", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1)),
			op(0, 20, 30, del, apimodel.Output{Status: 200, Deleted: true}),
			op(0, 40, 50, put("b"), entry(201, "b", 1)),
		}, false},
		{"of two concurrent creates one wins", []porcupine.Operation{
			op(0, 0, 50, put("a"), entry(201, "a", 1000)),
			op(1, 10, 40, put("b"), apimodel.Output{Status: 409, Entry: &apimodel.Entry{URI: "a", Version: 1000}}),
		}, true},
		{"both concurrent creates win", []porcupine.Operation{
			op(0, 0, 50, put("a"), entry(201, "a", 1000)),
			op(1, 10, 40, put("b"), entry(201, "b", 1001)),
		}, false},
		{"a create refused by its own entry (a retry tripping over itself)", []porcupine.Operation{
			op(0, 0, 50, put("a"), apimodel.Output{Status: 409, Entry: &apimodel.Entry{URI: "a", Version: 1000}}),
		}, false},
		{"a stale read after an acknowledged overwrite", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1000)),
			op(0, 20, 30, overwrite("b"), entry(200, "b", 1001)),
			op(1, 40, 50, get, entry(200, "a", 1000)),
		}, false},
		{"a read concurrent with an overwrite may see either", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1000)),
			op(0, 20, 60, overwrite("b"), entry(200, "b", 1001)),
			op(1, 30, 40, get, entry(200, "a", 1000)),
			op(2, 30, 40, get, entry(200, "b", 1001)),
		}, true},
		{"compare-and-set and validators", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1000)),
			op(0, 20, 30, apimodel.Input{Op: apimodel.Get, IfNoneMatch: 1000}, apimodel.Output{Status: 304}),
			op(0, 40, 50, apimodel.Input{Op: apimodel.Put, URI: "b", IfMatch: 1000}, entry(200, "b", 1001)),
			op(0, 60, 70, apimodel.Input{Op: apimodel.Put, URI: "c", IfMatch: 1000}, apimodel.Output{Status: 412, Entry: &apimodel.Entry{URI: "b", Version: 1001}}),
			op(0, 80, 90, apimodel.Input{Op: apimodel.Get, IfNoneMatch: 1000}, entry(200, "b", 1001)),
			op(0, 100, 110, apimodel.Input{Op: apimodel.Delete, IfMatch: 1000}, apimodel.Output{Status: 412, Entry: &apimodel.Entry{URI: "b", Version: 1001}}),
			op(0, 120, 130, apimodel.Input{Op: apimodel.Delete, IfMatch: 1001}, apimodel.Output{Status: 200, Deleted: true}),
			op(0, 140, 150, apimodel.Input{Op: apimodel.Delete, IfMatch: 1001}, apimodel.Output{Status: 412}),
			op(0, 160, 170, apimodel.Input{Op: apimodel.Put, URI: "d", IfMatch: 1001}, apimodel.Output{Status: 412}),
		}, true},
		{"If-Match delete of a missing entry answers deleted:false", []porcupine.Operation{
			op(0, 0, 10, apimodel.Input{Op: apimodel.Delete, IfMatch: 5}, apimodel.Output{Status: 200}),
		}, false},
		{"If-None-Match matches a different entry", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1)),
			op(0, 20, 30, del, apimodel.Output{Status: 200, Deleted: true}),
			op(0, 40, 50, put("b"), entry(201, "b", 2)),
			op(0, 60, 70, apimodel.Input{Op: apimodel.Get, IfNoneMatch: 1}, apimodel.Output{Status: 304}),
		}, false},
		{"leases: contention, expiry, takeover, fencing", []porcupine.Operation{
			op(0, 0, 10, reserve("o1"), reservation(true, "o1", 500, 3005)),
			op(1, 100, 110, reserve("o2"), reservation(false, "o1", 500, 3005)),
			op(2, 200, 210, inspect, apimodel.Output{Status: 200, Reservation: &apimodel.Reservation{Owner: "o1", Fence: 500, ExpiresMs: 3005}}),
			op(0, 1000, 1010, reserve("o1"), reservation(true, "o1", 500, 4002)),
			op(1, 5000, 5010, reserve("o2"), reservation(true, "o2", 501, 8001)),
			op(0, 5100, 5110, fenced("a", "o1", 500, true), holder412("o2", 501, 8001)),
			op(1, 5200, 5210, fenced("b", "o2", 501, true), entry(201, "b", 7000)),
			op(2, 5300, 5310, inspect, notFound),
			op(0, 5400, 5410, release("o1"), apimodel.Output{Status: 200}),
			op(0, 5500, 5510, reserve("o1"), reservation(true, "o1", 502, 8505)),
			op(0, 5600, 5610, release("o1"), apimodel.Output{Status: 200, Released: true}),
			op(1, 5700, 5710, fenced("c", "o2", 0, false), apimodel.Output{Status: 412, Entry: &apimodel.Entry{URI: "b", Version: 7000}}),
		}, true},
		{"two owners hold a live reservation", []porcupine.Operation{
			op(0, 0, 10, reserve("o1"), reservation(true, "o1", 500, 3005)),
			op(1, 100, 110, reserve("o2"), reservation(true, "o2", 501, 3105)),
		}, false},
		{"a lease granted already expired", []porcupine.Operation{
			op(0, 5000, 5010, reserve("o1"), reservation(true, "o1", 500, 3000)),
		}, false},
		{"a fence that does not grow", []porcupine.Operation{
			op(0, 0, 10, reserve("o1"), reservation(true, "o1", 500, 3005)),
			op(0, 20, 30, release("o1"), apimodel.Output{Status: 200, Released: true}),
			op(1, 40, 50, reserve("o2"), reservation(true, "o2", 500, 3045)),
		}, false},
		{"a fenced put after a takeover", []porcupine.Operation{
			op(0, 0, 10, reserve("o1"), reservation(true, "o1", 500, 3005)),
			op(1, 4000, 4010, reserve("o2"), reservation(true, "o2", 501, 7005)),
			op(0, 4100, 4110, fenced("a", "o1", 500, false), entry(201, "a", 1000)),
		}, false},
		{"released:false for the live holder", []porcupine.Operation{
			op(0, 0, 10, reserve("o1"), reservation(true, "o1", 500, 3005)),
			op(0, 20, 30, release("o1"), apimodel.Output{Status: 200}),
		}, false},
		{"expiry at the edge of a window goes either way", []porcupine.Operation{
			op(0, 0, 10, reserve("o1"), reservation(true, "o1", 500, 3005)),
			op(1, 2990, 3020, reserve("o2"), reservation(false, "o1", 500, 3005)),
			op(2, 2990, 3020, inspect, notFound),
		}, true},
		{"a lost put may have landed", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1000)),
			pending(1, 20, 30, overwrite("b"), 503),
			op(0, 40, 50, get, entry(200, "b", 1001)),
			op(0, 60, 70, overwrite("c"), entry(200, "c", 1002)),
		}, true},
		{"a lost put may not have landed", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1000)),
			pending(1, 20, 30, overwrite("b"), 503),
			op(0, 40, 50, get, entry(200, "a", 1000)),
		}, true},
		{"a lost put lands late, after a read saw the old entry", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1000)),
			pending(1, 20, 30, overwrite("b"), 503),
			op(0, 40, 50, get, entry(200, "a", 1000)),
			op(0, 60, 70, get, entry(200, "b", 1001)),
		}, true},
		{"an acknowledged write that was lost", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1000)),
			pending(1, 20, 30, overwrite("b"), 503),
			op(0, 40, 50, overwrite("c"), entry(200, "c", 1002)),
			op(0, 60, 70, get, notFound),
		}, false},
		{"a lost reserve may have taken the key", []porcupine.Operation{
			pending(0, 0, 10, reserve("o1"), 503),
			op(1, 20, 30, reserve("o2"), apimodel.Output{Status: 200, Reservation: &apimodel.Reservation{Owner: "o1", Fence: 900, ExpiresMs: 3004}}),
			op(0, 40, 50, release("o1"), apimodel.Output{Status: 200, Released: true}),
			op(1, 60, 70, reserve("o2"), reservation(true, "o2", 901, 3065)),
		}, true},
		{"a lost reserve's lease outside its window", []porcupine.Operation{
			pending(0, 0, 10, reserve("o1"), 503),
			op(1, 20, 30, reserve("o2"), apimodel.Output{Status: 200, Reservation: &apimodel.Reservation{Owner: "o1", Fence: 900, ExpiresMs: 9000}}),
		}, false},
		{"a throttled write changed nothing", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1000)),
			op(1, 20, 30, overwrite("b"), apimodel.Output{Status: 429}),
			op(0, 40, 50, get, entry(200, "a", 1000)),
		}, true},
		{"a throttled write took effect", []porcupine.Operation{
			op(0, 0, 10, put("a"), entry(201, "a", 1000)),
			op(1, 20, 30, overwrite("b"), apimodel.Output{Status: 429}),
			op(0, 40, 50, get, entry(200, "b", 1001)),
		}, false},
		{"keys are independent", []porcupine.Operation{
			op(0, 0, 10, apimodel.Input{Op: apimodel.Put, Key: "x", URI: "a"}, entry(201, "a", 1000)),
			op(1, 20, 30, apimodel.Input{Op: apimodel.Put, Key: "y", URI: "b"}, entry(201, "b", 1000)),
			op(1, 40, 50, apimodel.Input{Op: apimodel.Get, Key: "y"}, entry(200, "b", 1000)),
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(apimodel.Model(), tt.history); got != tt.legal {
				t.Errorf("linearizable = %t, want %t", got, tt.legal)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	in := apimodel.Input{Op: apimodel.Put, URI: "s3://b/k/w1-7", Overwrite: true, Owner: "o1", Fence: 9, Release: true, IfMatch: 3}
	got := apimodel.Describe(in, entry(200, "s3://b/k/w1-7", 4))
	if want := "put w1-7 overwrite owner=o1 fence=9 release If-Match=3 → 200 entry w1-7 v4"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s := apimodel.State{HasEntry: true, URI: "s3://b/k/w1-7", VersionFloor: 4, Owner: "o1", FenceFloor: 9, ExpLo: 1, ExpHi: 2}
	if want := "entry w1-7 v≥4; held by o1 fence ≥9 until [1,2]"; s.String() != want {
		t.Errorf("got %q, want %q", s.String(), want)
	}
}
