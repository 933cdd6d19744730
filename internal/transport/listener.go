package transport

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/stampede-cache/stampede/internal/manager"
)

// Go's HTTP server answers a request it cannot parse (a request target with
// bad percent-encoding, a malformed header, headers too large) itself, in
// plain text, before any handler runs. The local server's clients must get
// the JSON error shape for every 4xx, so JSONErrors wraps the listener and
// rewrites those answers on the way out. They are recognisable: the server
// writes them straight to the connection, in one write, with exactly these
// headers, and closes it; the handler's own answers are always JSON.
const plainErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// JSONErrors returns l with the HTTP server's own plain-text error answers
// rewritten as Stampede's JSON errors.
func JSONErrors(l net.Listener) net.Listener { return jsonErrorListener{l} }

type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c}, nil
}

type jsonErrorConn struct {
	net.Conn
	mu sync.Mutex
}

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	if rewritten, ok := rewritePlainError(p); ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, err := c.Conn.Write(rewritten); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// rewritePlainError turns the server's "HTTP/1.1 400 Bad Request…" into
// the same status with a JSON error body.
func rewritePlainError(p []byte) ([]byte, bool) {
	const proto = "HTTP/1.1 "
	if !bytes.HasPrefix(p, []byte(proto+"4")) || !bytes.Contains(p, []byte(plainErrorHeaders)) {
		return nil, false
	}
	status, err := strconv.Atoi(string(p[len(proto) : len(proto)+3]))
	if err != nil || len(p) < len(proto)+3 {
		return nil, false
	}
	detail := string(bytes.TrimSpace(p[bytes.Index(p, []byte(plainErrorHeaders))+len(plainErrorHeaders):]))
	var e error
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		e = manager.Errorf(manager.CodePayloadTooLarge, "header: the request's headers are too large")
	default:
		e = manager.Errorf(manager.CodeInvalidArgument, "request: %s (a malformed request line, path encoding or header)", detail)
	}
	status, body := responseBody(failure(e))
	var b bytes.Buffer
	b.WriteString(proto + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	b.WriteString("Content-Type: application/json\r\n" + RequestIDHeader + ": " + newRequestID() + "\r\n")
	b.WriteString("Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	b.Write(body)
	return b.Bytes(), true
}
