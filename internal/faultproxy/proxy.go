package faultproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults bounding a Proxy.
const (
	DefaultMaxConns = 512
	DefaultMaxDelay = time.Minute
	// maxResponseBytes bounds a response the proxy buffers.
	maxResponseBytes = 32 << 20
	dialTimeout      = 5 * time.Second
)

// Options bound a Proxy.
type Options struct {
	// MaxFaults bounds the faults injected over the proxy's life; after
	// that, traffic passes through. Zero means no bound.
	MaxFaults int64
	// MaxConns bounds the client connections open at once; the proxy closes
	// any beyond it at once. Zero means DefaultMaxConns.
	MaxConns int
	// MaxDelay caps a Delay fault. Zero means DefaultMaxDelay.
	MaxDelay time.Duration
	// OnForward, when set, is called just before a request is written to
	// the server, and OnServed once the server's whole answer to it has
	// been read, whatever the fault then does with that answer: a request
	// took effect, if at all, before OnServed. A test uses them to bound
	// when a request whose answer was lost can have landed. Both are called
	// from many goroutines and survive SetRules and Heal.
	OnForward func(r Request)
	OnServed  func(r Request, status int)
}

// Stats counts what a proxy did.
type Stats struct {
	// Conns and Requests count accepted connections and requests read.
	Conns, Requests int64
	// Forwarded counts requests the server saw.
	Forwarded int64
	// Injected counts faults by Fault.Label.
	Injected map[string]int64
}

// Total is the number of faults injected.
func (s Stats) Total() int64 {
	var n int64
	for _, v := range s.Injected {
		n += v
	}
	return n
}

// String lists the injected faults, sorted by label.
func (s Stats) String() string {
	labels := make([]string, 0, len(s.Injected))
	for l := range s.Injected {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, fmt.Sprintf("%s=%d", l, s.Injected[l]))
	}
	return fmt.Sprintf("conns=%d requests=%d forwarded=%d faults{%s}", s.Conns, s.Requests, s.Forwarded, strings.Join(parts, " "))
}

// Proxy is a running fault-injecting proxy. Close stops it.
type Proxy struct {
	ln     net.Listener
	target string
	opts   Options
	rules  atomic.Pointer[Rules]

	conns, requests, forwarded, faults atomic.Int64

	mu       sync.Mutex
	open     map[net.Conn]bool // true for client connections
	clients  int
	injected map[string]int64
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// Start listens on a free loopback port and proxies to target, a loopback
// host:port or http:// URL (DynamoDB Local's endpoint). It passes traffic
// through until SetRules says otherwise.
func Start(target string, opts Options) (*Proxy, error) {
	addr, err := loopbackAddr(target)
	if err != nil {
		return nil, err
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{
		ln:       ln,
		target:   addr,
		opts:     opts,
		open:     map[net.Conn]bool{},
		injected: map[string]int64{},
		stop:     make(chan struct{}),
	}
	p.rules.Store(&Rules{})
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// loopbackAddr turns target into host:port and refuses anything that is not
// this machine: the proxy is a test device, never a relay.
func loopbackAddr(target string) (string, error) {
	hostport := target
	if strings.Contains(target, "://") {
		u, err := url.Parse(target)
		if err != nil {
			return "", fmt.Errorf("faultproxy: target %q: %w", target, err)
		}
		if u.Scheme != "http" {
			return "", fmt.Errorf("faultproxy: target %q: only http is proxied", target)
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("faultproxy: target %q is not a loopback address", target)
	}
	return net.JoinHostPort(host, port), nil
}

// URL is the proxy's endpoint, http://127.0.0.1:port.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetRules replaces the rules; requests already being handled keep theirs.
func (p *Proxy) SetRules(r Rules) { p.rules.Store(&r) }

// Heal stops injecting faults: traffic passes through from now on. Requests
// already held stay held until their clients give up.
func (p *Proxy) Heal() { p.SetRules(Rules{}) }

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{Conns: p.conns.Load(), Requests: p.requests.Load(), Forwarded: p.forwarded.Load(), Injected: map[string]int64{}}
	for k, v := range p.injected {
		s.Injected[k] = v
	}
	return s
}

// Close stops accepting, ends every connection and every held or delayed
// request, and waits for the proxy's goroutines to finish.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.stop)
	for c := range p.open {
		_ = c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// track registers a connection so Close can end it; false when the proxy
// is closed or full.
func (p *Proxy) track(c net.Conn, client bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || client && p.clients >= p.opts.MaxConns {
		return false
	}
	p.open[c] = client
	if client {
		p.clients++
	}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	if client, ok := p.open[c]; ok {
		delete(p.open, c)
		if client {
			p.clients--
		}
	}
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		n := p.conns.Add(1) - 1
		if !p.track(c, true) {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			p.serveConn(c, n)
		}()
	}
}

// decide asks rule for a fault and counts it, within MaxFaults.
func (p *Proxy) decide(rule func() Fault) Fault {
	f := rule()
	if f.Kind == None {
		return f
	}
	if limit := p.opts.MaxFaults; limit > 0 && p.faults.Add(1) > limit {
		return Fault{}
	}
	if f.Kind == Delay {
		f.Delay = min(max(f.Delay, 0), p.opts.MaxDelay)
	}
	p.mu.Lock()
	p.injected[f.Label()]++
	p.mu.Unlock()
	return f
}

// conn is one client connection and, once needed, its server connection.
type conn struct {
	p      *Proxy
	client net.Conn
	in     *bufio.Reader
	server net.Conn
	out    *bufio.Reader
}

func (p *Proxy) serveConn(client net.Conn, n int64) {
	rules := p.rules.Load()
	if rules.Conn != nil {
		switch f := p.decide(func() Fault { return rules.Conn(n) }); f.Kind {
		case Reset:
			reset(client)
			return
		case Blackhole:
			hold(client)
			return
		}
	}
	c := &conn{p: p, client: client, in: bufio.NewReader(client)}
	defer func() {
		if c.server != nil {
			p.untrack(c.server)
		}
	}()
	for c.next(n) {
	}
}

// next serves one request; false ends the connection.
func (c *conn) next(n int64) bool {
	p := c.p
	req, err := http.ReadRequest(c.in)
	if err != nil {
		return false
	}
	seq := p.requests.Add(1) - 1
	info := Request{Seq: seq, Conn: n, Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone()}
	f := Fault{}
	if rules := p.rules.Load(); rules.Request != nil {
		f = p.decide(func() Fault { return rules.Request(info) })
	}
	switch f.Kind {
	case Reset:
		reset(c.client)
		return false
	case Blackhole:
		hold(c.client)
		return false
	case Respond:
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return false
		}
		return c.answer(req, f) == nil && !req.Close
	case Delay:
		select {
		case <-time.After(f.Delay):
		case <-p.stop:
			return false
		}
	}
	resp, body, err := c.forward(req, info)
	if err != nil {
		return false
	}
	switch f.Kind {
	case DropResponse:
		return false
	case HangResponse:
		hold(c.client)
		return false
	case RespondAfter:
		return c.answer(req, f) == nil && !req.Close
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.TransferEncoding = nil
	if err := resp.Write(c.client); err != nil {
		return false
	}
	return !req.Close && !resp.Close
}

// forward sends req to the server and reads its whole answer.
func (c *conn) forward(req *http.Request, info Request) (*http.Response, []byte, error) {
	if c.server == nil {
		s, err := net.DialTimeout("tcp", c.p.target, dialTimeout)
		if err != nil {
			return nil, nil, err
		}
		if !c.p.track(s, false) {
			_ = s.Close()
			return nil, nil, errors.New("faultproxy: closed")
		}
		c.server, c.out = s, bufio.NewReader(s)
	}
	if on := c.p.opts.OnForward; on != nil {
		on(info)
	}
	if err := req.Write(c.server); err != nil {
		return nil, nil, err
	}
	c.p.forwarded.Add(1)
	resp, err := http.ReadResponse(c.out, req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if on := c.p.opts.OnServed; on != nil && err == nil {
		on(info, resp.StatusCode)
	}
	return resp, body, err
}

// answer writes f's response in the server's place.
func (c *conn) answer(req *http.Request, f Fault) error {
	h := f.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	resp := &http.Response{
		StatusCode:    f.Status,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(f.Body)),
		ContentLength: int64(len(f.Body)),
		Request:       req,
	}
	return resp.Write(c.client)
}

// reset closes c with a TCP RST instead of a FIN.
func reset(c net.Conn) {
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = c.Close()
}

// hold keeps c open and silent until the client closes it or the proxy
// does (Close ends every tracked connection).
func hold(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
}
