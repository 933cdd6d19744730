package lambdaharness

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// invocation is one event waiting to be handed over, and where its answer
// goes.
type invocation struct {
	event []byte
	reply chan Reply
}

// runtimeAPI serves the Lambda Runtime API (2018-06-01) for one process:
// GET invocation/next hands over the next event, POST
// invocation/<id>/response or /error takes the answer, POST init/error
// records a failed init.
type runtimeAPI struct {
	opts  Options
	queue chan invocation

	firstNext   chan struct{} // closed at the first GET next: init is over
	firstNextAt time.Time
	initFailed  chan struct{}
	initError   string

	mu      sync.Mutex
	seq     int
	pending map[string]pendingInvocation
	once    sync.Once
	failed  sync.Once
}

type pendingInvocation struct {
	invocation
	handedOver time.Time
}

func newRuntimeAPI(opts Options) *runtimeAPI {
	return &runtimeAPI{
		opts:       opts,
		queue:      make(chan invocation),
		firstNext:  make(chan struct{}),
		initFailed: make(chan struct{}),
		pending:    map[string]pendingInvocation{},
	}
}

const apiPrefix = "/2018-06-01/runtime/"

func (a *runtimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
	switch {
	case !ok:
		http.NotFound(w, r)
	case r.Method == http.MethodGet && path == "invocation/next":
		a.next(w, r)
	case r.Method == http.MethodPost && path == "init/error":
		body, _ := io.ReadAll(r.Body)
		a.failed.Do(func() {
			a.initError = string(body)
			close(a.initFailed)
		})
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		a.answer(w, r, strings.TrimPrefix(path, "invocation/"))
	default:
		http.NotFound(w, r)
	}
}

// next holds the poll until an event is queued, then hands it over.
func (a *runtimeAPI) next(w http.ResponseWriter, r *http.Request) {
	a.once.Do(func() {
		a.firstNextAt = time.Now()
		close(a.firstNext)
	})
	var inv invocation
	select {
	case inv = <-a.queue:
	case <-r.Context().Done(): // the process went away
		return
	}
	a.mu.Lock()
	a.seq++
	id := "req-" + strconv.Itoa(a.seq)
	now := time.Now()
	a.pending[id] = pendingInvocation{invocation: inv, handedOver: now}
	a.mu.Unlock()
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(now.Add(a.opts.Deadline).UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:"+a.opts.Name)
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
	h.Set("Content-Type", "application/json")
	_, _ = w.Write(inv.event)
}

// answer takes "<id>/response" or "<id>/error".
func (a *runtimeAPI) answer(w http.ResponseWriter, r *http.Request, rest string) {
	id, kind, _ := strings.Cut(rest, "/")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	p, ok := a.pending[id]
	delete(a.pending, id)
	a.mu.Unlock()
	if !ok || (kind != "response" && kind != "error") {
		http.NotFound(w, r)
		return
	}
	p.reply <- Reply{Error: kind == "error", Body: body, Latency: time.Since(p.handedOver)}
	w.WriteHeader(http.StatusAccepted)
}
