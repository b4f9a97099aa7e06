package proxy

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func clientPost(t *testing.T, c *Client, url string, h http.Header) (*http.Response, string, bool) {
	t.Helper()
	body := []byte("hello")
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	if h != nil {
		req.Header = h
	}
	req, reused := traceReuse(req)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(data), *reused
}

// traceReuse returns req with a trace that sets *reused to whether the
// client reused a pooled connection for it.
func traceReuse(req *http.Request) (*http.Request, *bool) {
	reused := new(bool)
	return req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { *reused = i.Reused }})), reused
}

func TestClient(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("part1,"))
			w.(http.Flusher).Flush()
			w.Write(body)
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
			w.Write(body)
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write(body)
		default:
			w.Write([]byte(r.Header.Get("X-Echo") + ":" + string(body) + ":" + r.Host))
		}
	}))
	defer app.Close()
	c := &Client{}
	defer c.CloseIdleConnections()

	resp, got, reused := clientPost(t, c, app.URL+"/", http.Header{"X-Echo": {"e"}})
	if resp.StatusCode != 200 || got != "e:hello:"+strings.TrimPrefix(app.URL, "http://") || reused {
		t.Errorf("first: got %d %q reused=%v", resp.StatusCode, got, reused)
	}
	if _, _, reused := clientPost(t, c, app.URL+"/", nil); !reused {
		t.Error("second request did not reuse the connection")
	}
	if resp, got, _ := clientPost(t, c, app.URL+"/chunked", nil); resp.StatusCode != 200 || got != "part1,hello" {
		t.Errorf("chunked: got %d %q", resp.StatusCode, got)
	}
	if resp, got, _ := clientPost(t, c, app.URL+"/hints", nil); resp.StatusCode != 201 || got != "hello" {
		t.Errorf("after 103: got %d %q, want 201 hello", resp.StatusCode, got)
	}
	clientPost(t, c, app.URL+"/close", nil)
	if _, _, reused := clientPost(t, c, app.URL+"/", nil); reused {
		t.Error("reused a connection the app closed with Connection: close")
	}

	req, _ := http.NewRequest(http.MethodPost, app.URL, strings.NewReader("x"))
	req.ContentLength = 1
	req.Header.Set("X-Evil", "a\r\nInjected: 1")
	if _, err := c.RoundTrip(req); err == nil {
		t.Error("a header value with CRLF was sent")
	}
}

func TestClientTLS(t *testing.T) {
	app := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("secure"))
	}))
	defer app.Close()
	pool := x509.NewCertPool()
	pool.AddCert(app.Certificate())
	c := &Client{TLSConfig: app.Client().Transport.(*http.Transport).TLSClientConfig.Clone()}
	c.TLSConfig.RootCAs = pool
	if resp, got, _ := clientPost(t, c, app.URL, nil); resp.StatusCode != 200 || got != "secure" {
		t.Errorf("https: got %d %q", resp.StatusCode, got)
	}
}

// TestClientReusesPastDeadline: a pooled connection keeps its last
// exchange's deadline while idle; once that has passed, the connection is
// still quiet and is reused, not counted broken and redialed.
func TestClientReusesPastDeadline(t *testing.T) {
	app := noContentApp(t).String()
	c := &Client{}
	defer c.CloseIdleConnections()
	postReused(t, c, app)
	time.Sleep(150 * time.Millisecond) // past the first exchange's deadline
	if !postReused(t, c, app) {
		t.Error("a quiet pooled connection past its last deadline was not reused")
	}
}

// TestClientIdleTimeout: a pooled connection is reused within IdleTimeout
// of its last exchange, and not after.
func TestClientIdleTimeout(t *testing.T) {
	app := noContentApp(t).String()
	c := &Client{IdleTimeout: 300 * time.Millisecond}
	defer c.CloseIdleConnections()
	postReused(t, c, app)
	if !postReused(t, c, app) {
		t.Error("a connection pooled just now was not reused")
	}
	time.Sleep(400 * time.Millisecond)
	if postReused(t, c, app) {
		t.Error("a connection idle past IdleTimeout was reused")
	}
}

// TestClientClosesIdle: a pooled connection idle past IdleTimeout is
// closed then, with no request to take it up (it lingered, half closed
// by the app, until the next request).
func TestClientClosesIdle(t *testing.T) {
	closed := make(chan struct{}, 1)
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	app.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	app.Start()
	defer app.Close()
	c := &Client{IdleTimeout: 200 * time.Millisecond}
	defer c.CloseIdleConnections()
	postReused(t, c, app.URL)
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("the idle connection was still open 2 s after its 200 ms idle timeout")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle) != 0 {
		t.Errorf("%d connections left in the pool, want 0", len(c.idle))
	}
}

// postReused posts one byte to app with c, within 50 ms, checks the 204,
// and reports whether the connection was a pooled one.
func postReused(t *testing.T, c *Client, app string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, app, strings.NewReader("x"))
	req.ContentLength = 1
	req, reused := traceReuse(req)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return *reused
}

// TestClientCut: Cut makes an exchange waiting for the app fail at once,
// on a pooled connection as on a new one, and the next fail before it
// begins, with errCut; and a connection the client closed leaves the set
// Cut reaches.
func TestClientCut(t *testing.T) {
	arrived, release := make(chan struct{}, 2), make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			arrived <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer app.Close()
	defer close(release)
	c := &Client{}
	defer c.CloseIdleConnections()
	postReused(t, c, app.URL) // a pooled connection for the first of the two below

	post := func(path string) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, app.URL+path, strings.NewReader("hello"))
		start := time.Now()
		resp, err := c.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return time.Since(start), err
	}
	type result struct {
		took time.Duration
		err  error
	}
	done := make(chan result, 2)
	for range 2 {
		go func() {
			took, err := post("/hang")
			done <- result{took, err}
		}()
	}
	<-arrived
	<-arrived
	c.Cut()
	for range 2 {
		var ne net.Error
		if r := <-done; !errors.As(r.err, &ne) || !ne.Timeout() || r.took > 5*time.Second {
			t.Errorf("an exchange waiting for the app when Cut ran: %v after %v, want its deadline passed at once", r.err, r.took)
		}
	}
	if _, err := post("/"); !errors.Is(err, errCut) {
		t.Errorf("an exchange after Cut: %v, want %v", err, errCut)
	}
	c.CloseIdleConnections()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.live) != 0 {
		t.Errorf("%d connections left in the set Cut reaches after every one closed", len(c.live))
	}
}

// TestCutSendsNothingAgain: a delivery on a pooled connection, waiting for
// the app when Cut runs, fails as one that got no answer would; it is not
// sent again, nor counted as sent again (send counted a resend that get
// then refused), and a delivery after the cut is closed unanswered, never
// answered 200 with the empty response the handler leaves.
func TestCutSendsNothingAgain(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	var posts atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		if r.Header.Get("Svix-Id") == "msg_hang" {
			arrived <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer app.Close()
	defer close(release)
	h := newHandler(t, app.URL, func(o *Options) { o.UpstreamTimeout, o.Now = 5*time.Second, time.Now })
	// The goroutine engine's exchanges are the Client's; the event loop's
	// own end with its Close.
	f := startFrontend(t, NewListener(h, h.opts.UpstreamTimeout, nil))
	t.Cleanup(f.Close)
	client := newClient(5 * time.Second)
	post := func(id string) int {
		status, _, _ := send(client, f.URL+"/", signed(testKey, id, time.Now(), validBody), validBody)
		return status
	}
	if got := post("msg_first"); got != http.StatusNoContent {
		t.Fatalf("first delivery: %d, want 204", got)
	}
	done := make(chan int, 1)
	go func() { done <- post("msg_hang") }()
	<-arrived
	h.fwd.client.Cut()
	if got := <-done; got/100 == 2 {
		t.Errorf("the delivery cut off: %d, want no 2xx", got)
	}
	if got := post("msg_after"); got/100 == 2 {
		t.Errorf("a delivery after the cut: %d, want no 2xx", got)
	}
	var m dto.Metric
	h.metrics.resends.Write(&m)
	if n, resends := posts.Load(), m.GetCounter().GetValue(); n != 2 || resends != 0 {
		t.Errorf("the app got %d deliveries and %v were counted as sent again, want 2 and 0", n, resends)
	}
}
