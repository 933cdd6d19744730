// Package faultproxy is a fault-injecting TCP proxy for HTTP/1.1 traffic on
// the loopback interface, made to sit between the DynamoDB SDK and DynamoDB
// Local in tests. For every connection it accepts and every request it reads,
// it asks the test's Rules what to do: pass it through, drop the response,
// delay it, reset the connection, swallow it (blackhole) or answer an HTTP
// error in the server's place.
//
// Faults a real DynamoDB Local cannot produce on demand are exactly these;
// everything else about the traffic is real. Random rules are a pure function
// of a seed and the request's sequence number, so a failing run can be
// replayed; every held connection and every delay ends when the client goes
// away or the proxy is closed.
package faultproxy

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Kind is what the proxy does with one request (or one connection).
type Kind int

// The kinds of fault. The zero Kind passes traffic through untouched.
const (
	// None forwards the request and relays the answer.
	None Kind = iota
	// DropResponse forwards the request, lets the server answer, discards
	// the answer and closes the client's connection: the request took
	// effect, the client cannot know.
	DropResponse
	// HangResponse is DropResponse without the close: the connection stays
	// open and silent until the client gives up.
	HangResponse
	// Delay holds the request for Fault.Delay before forwarding it and
	// relaying the answer (if the client is still there): a request that
	// reaches the server after the client's budget.
	Delay
	// Reset resets the client's connection (TCP RST) without forwarding the
	// request.
	Reset
	// Blackhole reads the request and never forwards or answers it; the
	// connection stays open until the client gives up. As a connection
	// fault, the proxy accepts the connection and never reads from it.
	Blackhole
	// Respond answers Fault.Status, Fault.Header and Fault.Body in the
	// server's place without forwarding the request.
	Respond
	// RespondAfter forwards the request, discards the server's answer and
	// answers Fault.Status instead: the request took effect, the client is
	// told it failed.
	RespondAfter

	numKinds
)

// Kinds lists every fault kind, None excluded.
func Kinds() []Kind {
	out := make([]Kind, 0, numKinds-1)
	for k := None + 1; k < numKinds; k++ {
		out = append(out, k)
	}
	return out
}

func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case DropResponse:
		return "drop-response"
	case HangResponse:
		return "hang-response"
	case Delay:
		return "delay"
	case Reset:
		return "reset"
	case Blackhole:
		return "blackhole"
	case Respond:
		return "respond"
	case RespondAfter:
		return "respond-after"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Fault is what to do with one request or connection.
type Fault struct {
	Kind Kind
	// Delay is how long a Delay fault holds the request.
	Delay time.Duration
	// Status, Header and Body are the answer of Respond and RespondAfter.
	Status int
	Header http.Header
	Body   []byte
}

// String names the fault, with its status or delay, for logs and counts.
func (f Fault) String() string {
	switch f.Kind {
	case Respond, RespondAfter:
		return fmt.Sprintf("%s-%d", f.Kind, f.Status)
	case Delay:
		return fmt.Sprintf("%s-%s", f.Kind, f.Delay)
	}
	return f.Kind.String()
}

// Label names the fault for counting: the kind, with the status of an
// answer (respond-502) but without a delay's length.
func (f Fault) Label() string {
	switch f.Kind {
	case Respond, RespondAfter:
		return fmt.Sprintf("%s-%d", f.Kind, f.Status)
	}
	return f.Kind.String()
}

// HTTPError answers status in the server's place with an empty JSON body,
// as a load balancer in front of the server would.
func HTTPError(status int) Fault {
	return Fault{Kind: Respond, Status: status, Body: []byte("{}"),
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}}}
}

// DynamoDBError answers a DynamoDB error in DynamoDB's wire format: status,
// the exception's type (e.g. "ProvisionedThroughputExceededException") and a
// message. after makes it a RespondAfter: the request takes effect first.
func DynamoDBError(status int, exception, message string, after bool) Fault {
	f := Fault{
		Kind:   Respond,
		Status: status,
		Header: http.Header{
			"Content-Type":     {"application/x-amz-json-1.0"},
			"X-Amzn-Errortype": {exception},
		},
		Body: []byte(fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, exception, message)),
	}
	if after {
		f.Kind = RespondAfter
	}
	return f
}

// Throttle answers DynamoDB's throttling error without forwarding.
func Throttle() Fault {
	return DynamoDBError(http.StatusBadRequest, "ProvisionedThroughputExceededException",
		"The level of configured provisioned throughput for the table was exceeded.", false)
}

// Request describes one request the proxy has read, for Rules to decide on.
type Request struct {
	// Seq numbers requests in the order the proxy read them, from 0.
	Seq int64
	// Conn numbers connections in the order the proxy accepted them, from 0.
	Conn int64
	// Method and Path are the request line's.
	Method string
	Path   string
	// Header is a copy of the request's headers (X-Amz-Target names a
	// DynamoDB operation).
	Header http.Header
}

// Rules decide the fate of connections and requests. Either may be nil,
// meaning no faults of that kind. They are called from many goroutines.
type Rules struct {
	// Conn is asked once per accepted connection, with its number; only
	// None, Reset and Blackhole apply to a connection.
	Conn func(conn int64) Fault
	// Request is asked once per request read.
	Request func(r Request) Fault
}
