package proxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern-dev/postern/proxy/schema"
	"github.com/postern-dev/postern/proxy/signature"
)

// testNow is the pinned clock of every handler test.
var testNow = time.Unix(1764410400, 0)

var (
	testKey   = mustKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	otherKey  = mustKey("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
	validBody = `{"eventType":"REFERRAL_CREATED","eventId":"evt_1","createdAt":"2026-11-26T10:00:00Z","data":{"referralId":"ref_123","customer_type":"INDIVIDUAL","status":"CREATED"}}`
)

func mustKey(secret string) []byte {
	keys, err := signature.ParseSecrets([]string{secret})
	if err != nil {
		panic(err)
	}
	return keys[0]
}

// received is one request as the app saw it.
type received struct {
	Method, Path, Query, Host string
	Target                    string // the request line's target, as received
	Header                    http.Header
	Body                      string
	ContentLength             int64
}

// app is a test application behind postern: it records what it receives
// and answers with handle (default 204).
type app struct {
	mu     sync.Mutex
	got    []received
	handle http.HandlerFunc
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.got = append(a.got, received{
		Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Host: r.Host, Target: r.RequestURI,
		Header: r.Header.Clone(), Body: string(body), ContentLength: r.ContentLength,
	})
	a.mu.Unlock()
	if a.handle != nil {
		a.handle(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) requests() []received {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]received(nil), a.got...)
}

// newHandler builds postern for upstream with the test key, dedupe on and
// the real clock; mutate adjusts the options.
func newHandler(t testing.TB, upstream string, mutate func(*Options)) *Handler {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	set, err := schema.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Upstream:        u,
		UpstreamTimeout: 2 * time.Second,
		Verifier:        signature.NewVerifier([][]byte{testKey}),
		Schemas:         set,
		Dedupe:          true,
	}
	if mutate != nil {
		mutate(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Its pooled connections end with the test, not when their idle
	// timeout sweeps them away during a later test (which frees
	// descriptors that TestLoopAcceptOutOfDescriptors counts on).
	t.Cleanup(h.opts.Client.CloseIdleConnections)
	return h
}

// rig is postern between a client and an app, both real listeners.
type rig struct {
	app     *app
	appSrv  *httptest.Server
	handler *Handler
	proxy   *frontend
}

// newRig starts an app and postern in front of it; mutate adjusts the options.
func newRig(t testing.TB, handle http.HandlerFunc, mutate func(*Options)) *rig {
	t.Helper()
	a := &app{handle: handle}
	appSrv := httptest.NewServer(a)
	t.Cleanup(appSrv.Close)
	h := newHandler(t, appSrv.URL, func(o *Options) {
		o.Now = func() time.Time { return testNow }
		if mutate != nil {
			mutate(o)
		}
	})
	px := newFrontend(t, h)
	t.Cleanup(px.Close)
	return &rig{app: a, appSrv: appSrv, handler: h, proxy: px}
}

// signed returns the svix headers for body signed with key at ts.
func signed(key []byte, id string, ts time.Time, body string) http.Header {
	return http.Header{
		"Svix-Id":        {id},
		"Svix-Timestamp": {strconv.FormatInt(ts.Unix(), 10)},
		"Svix-Signature": {signature.Sign(key, id, ts, []byte(body))},
		"Content-Type":   {"application/json"},
	}
}

// answer is what postern told the client.
type answer struct {
	Status     int
	Reason     string
	Detail     string
	Header     http.Header
	Body       string
	RetryAfter string
}

func (rg *rig) post(t testing.TB, path string, h http.Header, body string) answer {
	t.Helper()
	return rg.do(t, http.MethodPost, path, h, body)
}

func (rg *rig) do(t testing.TB, method, path string, h http.Header, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, rg.proxy.URL+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := rg.proxy.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return toAnswer(resp, data)
}

func toAnswer(resp *http.Response, data []byte) answer {
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: string(data), RetryAfter: resp.Header.Get("Retry-After")}
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		var p problem
		json.Unmarshal(data, &p)
		a.Reason, a.Detail = p.Reason, p.Detail
	}
	return a
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// frontend serves a handler on a loopback port through the webhook
// listener's HTTP server (NewListener), as httptest.Server does with
// net/http's.
type frontend struct {
	URL    string
	srv    listener
	done   chan struct{}
	client *http.Client
}

func newFrontend(t testing.TB, h *Handler) *frontend {
	t.Helper()
	srv := NewListener(h, h.opts.UpstreamTimeout, log.New(tWriter{t}, "", 0))
	if testEngine() == EngineLoop && LoopSupported(h) {
		return startFrontend(t, &Loop{Handler: h, Fallback: srv})
	}
	return startFrontend(t, srv)
}

// startFrontend serves srv on a loopback port.
func startFrontend(t testing.TB, srv listener) *frontend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveFrontend(t, srv, ln)
}

// serveFrontend is startFrontend on a listener of the caller's.
func serveFrontend(t testing.TB, srv listener, ln net.Listener) *frontend {
	t.Helper()
	f := &frontend{
		URL:    "http://" + ln.Addr().String(),
		srv:    srv,
		done:   make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{}},
	}
	// Started now, as Server.Run does: the loops' goroutines are running
	// before a test counts goroutines.
	serve, err := startServing(srv, ln)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(f.done)
		serve()
	}()
	return f
}

// sendRaw writes raw to the frontend at url on one connection, closes its
// sending side, and returns every answer read until the connection ends.
func sendRaw(t testing.TB, url, raw string) []answer {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, raw)
	conn.(*net.TCPConn).CloseWrite()
	br := bufio.NewReader(conn)
	var answers []answer
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return answers
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers = append(answers, toAnswer(resp, data))
	}
}

// Client returns a client for the frontend, as httptest.Server's does.
func (f *frontend) Client() *http.Client { return f.client }

// Close closes the listener and every connection, and waits for Serve.
func (f *frontend) Close() {
	f.srv.Close()
	<-f.done
	f.client.CloseIdleConnections()
}

// tWriter sends a logger's lines to the test log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
