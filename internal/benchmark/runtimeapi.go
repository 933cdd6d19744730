package benchmark

import (
	"context"
	"net"
	"net/http"
	"time"
)

// nextPath is the Lambda Runtime API request a runtime sends once its
// initialisation is over: its arrival marks the end of init.
const nextPath = "/2018-06-01/runtime/invocation/next"

// runtimeAPI is the least of the Lambda Runtime API a start-up measurement
// needs: it notes when each /next request arrives and holds it open (no
// invocation is ever given) until the process goes away.
type runtimeAPI struct {
	// Addr is host:port, the value of AWS_LAMBDA_RUNTIME_API.
	Addr string

	arrivals chan time.Time
	srv      *http.Server
}

func startRuntimeAPI() (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &runtimeAPI{Addr: ln.Addr().String(), arrivals: make(chan time.Time, 1)}
	r.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path != nextPath {
				http.NotFound(w, req)
				return
			}
			select {
			case r.arrivals <- time.Now():
			default:
			}
			<-req.Context().Done()
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// reset forgets an arrival left from an earlier process.
func (r *runtimeAPI) reset() {
	select {
	case <-r.arrivals:
	default:
	}
}

func (r *runtimeAPI) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		_ = r.srv.Close()
	}
}
