package h1_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postern-dev/postern/proxy/h1"
)

// ioTimeout bounds every client read and write: a test that waits this long
// has already failed.
const ioTimeout = 5 * time.Second

type testServer struct {
	srv      *h1.Server
	addr     string
	serveErr chan error // what Serve returned
	ln       *trackingListener
}

// trackingListener tells when the server closes each connection it
// accepted, by client address.
type trackingListener struct {
	net.Listener
	closed   sync.Map    // client address -> chan struct{}, closed when the server closes the conn
	accepted chan string // client addresses as connections are accepted (dropped when full)
}

func (l *trackingListener) closedChan(addr string) chan struct{} {
	ch, _ := l.closed.LoadOrStore(addr, make(chan struct{}))
	return ch.(chan struct{})
}

func (l *trackingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.accepted <- nc.RemoteAddr().String():
	default:
	}
	return &trackedConn{Conn: nc, closed: l.closedChan(nc.RemoteAddr().String())}, nil
}

type trackedConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

func (c *trackedConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// startServer serves h on 127.0.0.1:0; configure, if not nil, adjusts the
// Server before Serve. The server is closed when the test ends.
func startServer(t *testing.T, h http.Handler, configure func(*h1.Server)) *testServer {
	t.Helper()
	srv := &h1.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	if configure != nil {
		configure(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &trackingListener{Listener: ln, accepted: make(chan string, 64)}
	ts := &testServer{srv: srv, addr: ln.Addr().String(), serveErr: make(chan error, 1), ln: tl}
	go func() { ts.serveErr <- srv.Serve(tl) }()
	t.Cleanup(func() { srv.Close() })
	return ts
}

// client is one raw TCP connection to the server.
type client struct {
	t    *testing.T
	conn *net.TCPConn
	br   *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(ioTimeout))
	return &client{t: t, conn: nc.(*net.TCPConn), br: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("writing the request: %v", err)
	}
}

// read reads one response to a request with the given method, and its body.
func (c *client) read(method string) (*http.Response, string, error) {
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// mustRead reads one complete response.
func (c *client) mustRead(method string) (*http.Response, string) {
	c.t.Helper()
	resp, body, err := c.read(method)
	if err != nil {
		c.t.Fatalf("reading the response: %v", err)
	}
	return resp, body
}

// expectClosed checks that the server closes the connection (EOF or reset)
// without sending anything more, within ioTimeout.
func (c *client) expectClosed() {
	c.t.Helper()
	c.expectClosedWithin(ioTimeout)
}

func (c *client) expectClosedWithin(d time.Duration) {
	c.t.Helper()
	c.expectEnd(d, true)
}

// expectEOF is expectClosed without accepting a reset: the server ended the
// connection gracefully.
func (c *client) expectEOF() {
	c.t.Helper()
	c.expectEnd(ioTimeout, false)
}

func (c *client) expectEnd(d time.Duration, resetOK bool) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	rest, err := io.ReadAll(c.br)
	if len(rest) > 0 {
		c.t.Errorf("the server sent %q after the last expected response", rest)
	}
	switch {
	case err == nil, resetOK && errors.Is(err, syscall.ECONNRESET):
	case isTimeout(err):
		c.t.Errorf("the connection is still open after %v", d)
	default:
		c.t.Errorf("reading until the connection closes: %v", err)
	}
}

// serverDone closes the client's side and waits until the server has
// closed the connection: every handler call on it has then returned.
func (ts *testServer) serverDone(c *client) {
	c.t.Helper()
	c.conn.CloseWrite()
	select {
	case <-ts.ln.closedChan(c.conn.LocalAddr().String()):
	case <-time.After(ioTimeout):
		c.t.Fatal("the server did not close the connection")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// seenReq is what a handler saw of a request.
type seenReq struct {
	Method, RequestURI, Path, RawQuery, Host, Proto, RemoteAddr string
	ProtoMinor                                                  int
	Header                                                      http.Header
	ContentLength                                               int64
	TransferEncoding                                            []string
	Body                                                        string
	BodyErr                                                     string // "" when the body was read to EOF
}

// record reads the whole body and copies what the handler saw (the
// Request's header map is not the handler's to keep).
func record(r *http.Request) seenReq {
	body, err := io.ReadAll(r.Body)
	s := seenReq{
		Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Host: r.Host, Proto: r.Proto, RemoteAddr: r.RemoteAddr, ProtoMinor: r.ProtoMinor,
		Header: r.Header.Clone(), ContentLength: r.ContentLength,
		TransferEncoding: append([]string(nil), r.TransferEncoding...),
		Body:             string(body),
	}
	if err != nil {
		s.BodyErr = err.Error()
	}
	return s
}

// recorder is a handler that reads every body, sends what it saw on seen,
// and answers 200 with "ok <path>".
type recorder struct{ seen chan seenReq }

func newRecorder() *recorder { return &recorder{seen: make(chan seenReq, 64)} }

func (h *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := record(r)
	h.seen <- s
	io.WriteString(w, "ok "+r.URL.Path)
}

// next returns the next request the handler saw (it has always been seen
// by the time its response is read).
func (h *recorder) next(t *testing.T) seenReq {
	t.Helper()
	select {
	case s := <-h.seen:
		return s
	default:
		t.Fatal("the handler was not called")
		return seenReq{}
	}
}

// none checks that the handler saw no (further) request.
func (h *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-h.seen:
		t.Errorf("the handler was called for %s %s (body %q)", s.Method, s.RequestURI, s.Body)
	default:
	}
}

// lockedBuffer is a log destination safe to write from server goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// problem is the ErrorBody used to check that the server's own answers
// come from it.
const problemType = "application/problem+json"

func problemBody(status int, detail string) []byte {
	return fmt.Appendf(nil, `{"status":%d,"detail":%q}`, status, detail)
}
