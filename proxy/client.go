package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Client is a lean HTTP/1.1 client for one upstream, the app next door. It
// is an http.RoundTripper that does the request and the response on the
// caller's goroutine: the request line, headers and body go out in one
// write, the response is parsed with http.ReadResponse, and the connection
// returns to a LIFO pool when the body has been read to the end. It does
// the work of http.Transport's two per-connection goroutines and their
// channel handoffs without them, which is most of a proxy's per-request
// cost on loopback (see BenchmarkForwarders). The handler uses a faster
// path on the same pool (exchange), which writes the forwarded request
// straight from the sender's and parses the response head itself.
//
// It sends exactly the headers of the request plus Host and Content-Length;
// requests must have a body of known length. It never follows a proxy from
// the environment and never decompresses.
type Client struct {
	// Dialer opens connections (default: 2 s timeout, 30 s TCP keep-alive).
	Dialer *net.Dialer
	// TLSConfig is used for https upstreams.
	TLSConfig *tls.Config
	// MaxIdleConns bounds the pool (default 512).
	MaxIdleConns int
	// IdleTimeout closes pooled connections unused this long (default 4 s,
	// shorter than Apache's and Node's 5 s keep-alive).
	IdleTimeout time.Duration

	mu    sync.Mutex
	idle  []*clientConn             // most recently used last
	sweep *time.Timer               // closes idle connections past IdleTimeout; nil while none wait
	live  map[*trackedConn]struct{} // every connection open, for Cut
	cut   atomic.Bool

	cutOnce   sync.Once
	cutCtx    context.Context // done once Cut ran: ends the dials in progress
	cutCancel context.CancelFunc
}

// cutContext returns the context Cut cancels.
func (c *Client) cutContext() context.Context {
	c.cutOnce.Do(func() { c.cutCtx, c.cutCancel = context.WithCancel(context.Background()) })
	return c.cutCtx
}

// trackedConn is a TCP connection the Client dialed: it is in live until
// it is closed.
type trackedConn struct {
	*net.TCPConn
	c *Client
}

func (t *trackedConn) Close() error {
	t.c.mu.Lock()
	delete(t.c.live, t)
	t.c.mu.Unlock()
	return t.TCPConn.Close()
}

// Cut makes every exchange in progress fail at once, and every later one
// fail as it begins. The drain's timeout calls it, so that handlers still
// waiting for the app end, and write their audit records, before postern
// exits.
func (c *Client) Cut() {
	c.cut.Store(true) // before the deadlines: see get
	c.cutContext()
	c.cutCancel() // a connection still being dialed is not in live yet
	c.mu.Lock()
	defer c.mu.Unlock()
	for t := range c.live {
		t.SetDeadline(aLongTimeAgo)
	}
}

// aLongTimeAgo is a deadline that has passed: I/O fails at once.
var aLongTimeAgo = time.Unix(1, 0)

// errCut is why an exchange fails after Cut.
var errCut = errors.New("the drain timed out")

var _ http.RoundTripper = (*Client)(nil)

// clientConn is one pooled connection.
type clientConn struct {
	conn     net.Conn
	peek     *peeker
	read     countingReader
	br       *bufio.Reader // from readers while in use; nil while idle
	lastUsed time.Time
	head     respHead // the exchange path's last response head
}

// maxResponseHeaderBytes bounds the app's response headers, 1xx ones
// included, as http.Transport's MaxResponseHeaderBytes does.
const maxResponseHeaderBytes = 64 << 10

// errResponseHeadersTooLarge is returned when the app's response headers
// exceed maxResponseHeaderBytes.
var errResponseHeadersTooLarge = errors.New("app's response headers exceed 64 KiB")

// countingReader counts the bytes read from the connection, so that a
// failure can be told apart from one after the app began to answer. While
// limit is positive, reading past it fails.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.limit > 0 && c.n >= c.limit {
		return 0, errResponseHeadersTooLarge
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ErrNoResponse is returned (wrapped) when a connection failed before any
// byte of a response arrived.
var ErrNoResponse = errors.New("connection failed before any response byte")

// RoundTrip sends req and returns the response; its Body must be read to
// the end or closed. It reports, through an httptrace.ClientTrace in the
// request's context, whether the connection was reused.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, _, err := c.roundTrip(req, false)
	return resp, err
}

// roundTrip is RoundTrip that also says whether the connection was pooled.
// With fresh it always dials: the resend after a pooled connection failed,
// since the others in the pool may have been closed by the app too.
func (c *Client) roundTrip(req *http.Request, fresh bool) (resp *http.Response, reused bool, err error) {
	if req.Body != nil && req.ContentLength < 0 {
		return nil, false, errors.New("proxy client: request body without a Content-Length")
	}
	ctx := req.Context()
	addr := hostPort(req.URL)
	deadline, _ := ctx.Deadline()
	cc, reused, err := c.get(ctx, req.URL.Scheme, addr, fresh, false, time.Now(), deadline)
	if err != nil {
		return nil, false, err
	}
	if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: cc.conn, Reused: reused})
	}
	before := cc.read.n
	bw := getWriter(cc.conn)
	err = writeRequest(bw, req)
	putWriter(bw)
	if err != nil {
		return nil, reused, cc.failed(before, err)
	}
	cc.read.limit = before + maxResponseHeaderBytes
	resp, err = cc.readResponse(req)
	cc.read.limit = 0
	if err != nil {
		return nil, reused, cc.failed(before, err)
	}
	resp.Body = &clientBody{rc: resp.Body, client: c, cc: cc, keep: !resp.Close}
	return resp, reused, nil
}

// get returns a pooled connection, or a new one to addr, with its deadline
// set, for an exchange starting at now. With detach, a dial is bounded by
// deadline alone, not cancelled with ctx (the context is made only then:
// a pooled connection costs no allocation).
func (c *Client) get(ctx context.Context, scheme, addr string, fresh, detach bool, now, deadline time.Time) (cc *clientConn, reused bool, err error) {
	if c.cut.Load() {
		return nil, false, errCut
	}
	defer func() {
		if err == nil && c.cut.Load() { // Cut ran before the deadline was set
			cc.conn.SetDeadline(aLongTimeAgo)
		}
	}()
	if !fresh {
		if cc := c.pooled(now, deadline); cc != nil {
			return cc, true, nil
		}
	}
	if detach {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), deadline)
		defer cancel()
	}
	cc, err = c.dial(ctx, scheme, addr)
	if err == nil {
		cc.conn.SetDeadline(deadline)
		cc.lastUsed = now
	}
	return cc, false, err
}

// pooled returns the most recently used pooled connection that is still
// usable, with its deadline set, or nil, for an exchange starting at now.
//
// A connection's idle time counts from the start of its last exchange, not
// the end: it is retired a little early rather than late, and reading the
// clock once per exchange serves both.
//
// The deadline is set before the quiet check: a pooled connection keeps
// the deadline of its last exchange (clearing it at put would cost a timer
// update per request), and a read on a connection past its deadline fails
// at once, which would count a quiet connection as broken.
func (c *Client) pooled(now, deadline time.Time) *clientConn {
	for {
		c.mu.Lock()
		if len(c.idle) == 0 {
			c.mu.Unlock()
			return nil
		}
		cc := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		c.mu.Unlock()
		// A pooled connection is reused only if it is quiet: bytes waiting
		// on it are an answer nobody asked for (which would otherwise be
		// read as this request's answer), and EOF means the app closed it.
		if now.Sub(cc.lastUsed) < c.idleTimeout() && cc.conn.SetDeadline(deadline) == nil && cc.peek.quiet() {
			cc.br = getReader(&cc.read)
			cc.lastUsed = now
			return cc
		}
		cc.conn.Close()
	}
}

// dial opens a connection to addr.
func (c *Client) dial(ctx context.Context, scheme, addr string) (*clientConn, error) {
	d := c.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.cutContext(), cancel)()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		t := &trackedConn{TCPConn: tc, c: c}
		c.mu.Lock()
		if c.live == nil {
			c.live = make(map[*trackedConn]struct{})
		}
		c.live[t] = struct{}{}
		c.mu.Unlock()
		conn = t
	}
	if scheme == "https" {
		cfg := c.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	cc := &clientConn{conn: conn, peek: newPeeker(conn)}
	cc.read.r = conn
	cc.br = getReader(&cc.read)
	return cc, nil
}

// The read and write buffers are shared by the connections through pools:
// an idle connection holds none, so a pool of many idle connections costs
// little memory, and a request needs a write buffer only while it is
// written.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8<<10) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}
)

func getReader(r io.Reader) *bufio.Reader {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readers.Put(br)
}

func getWriter(w io.Writer) *bufio.Writer {
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w)
	return bw
}

// putWriter drops what bw holds unflushed (the rest of a request whose
// writing failed) and pools it.
func putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	writers.Put(bw)
}

// failed closes cc after an error writing the request or reading the
// response head; one met before any response byte wraps ErrNoResponse, so
// that the request may be sent again on a new connection.
func (cc *clientConn) failed(before int64, err error) error {
	cc.conn.Close()
	if cc.read.n == before {
		return fmt.Errorf("%w: %w", ErrNoResponse, err)
	}
	return err
}

// put returns a connection whose response was read to the end.
func (c *Client) put(cc *clientConn) {
	putReader(cc.br) // empty: the callers check
	cc.br = nil
	c.mu.Lock()
	if len(c.idle) < c.maxIdle() {
		c.idle = append(c.idle, cc)
		if c.sweep == nil {
			c.sweep = time.AfterFunc(c.idleTimeout(), c.sweepIdle)
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	cc.conn.Close()
}

// sweepIdle closes the pooled connections idle past IdleTimeout, so that
// they do not linger (half closed by the app, holding a descriptor) until
// the next request takes them up; it runs again while any are left.
func (c *Client) sweepIdle() {
	timeout := c.idleTimeout()
	now := time.Now()
	var expired []*clientConn
	c.mu.Lock()
	kept := c.idle[:0]
	next := timeout
	for _, cc := range c.idle {
		if age := now.Sub(cc.lastUsed); age >= timeout {
			expired = append(expired, cc)
		} else {
			kept = append(kept, cc)
			next = min(next, timeout-age)
		}
	}
	clear(c.idle[len(kept):])
	c.idle = kept
	if len(c.idle) > 0 {
		c.sweep.Reset(max(next, 10*time.Millisecond))
	} else {
		c.sweep = nil
	}
	c.mu.Unlock()
	for _, cc := range expired {
		cc.conn.Close()
	}
}

// CloseIdleConnections closes the pooled connections.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, cc := range idle {
		cc.conn.Close()
	}
}

func (c *Client) idleTimeout() time.Duration {
	if c.IdleTimeout > 0 {
		return c.IdleTimeout
	}
	return 4 * time.Second
}

func (c *Client) maxIdle() int {
	if c.MaxIdleConns > 0 {
		return c.MaxIdleConns
	}
	return 512
}

// writeRequest writes the request line, Host, the headers, Content-Length
// and the body, and flushes once.
func writeRequest(w *bufio.Writer, req *http.Request) error {
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		for _, v := range vs {
			if !validHeaderValue(v) {
				return fmt.Errorf("invalid value for header %q", k)
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	w.WriteString("Content-Length: ")
	w.Write(strconv.AppendInt(w.AvailableBuffer(), req.ContentLength, 10))
	w.WriteString("\r\n\r\n")
	if req.Body != nil {
		if _, err := io.Copy(w, req.Body); err != nil {
			return err
		}
	}
	return w.Flush()
}

// readResponse reads the final response, skipping 1xx informational ones.
func (cc *clientConn) readResponse(req *http.Request) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(cc.br, req)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("app switched protocols")
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			continue
		}
		return resp, nil
	}
}

// validHeaderValue rejects CR, LF and NUL, which would split the request.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// clientBody returns the connection to the pool once the body is read to
// the end, and closes it if the body is abandoned.
type clientBody struct {
	rc     io.Reader
	client *Client
	cc     *clientConn
	keep   bool
	done   bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *clientBody) Close() error {
	b.finish(false)
	return nil
}

func (b *clientBody) finish(complete bool) {
	if b.done {
		return
	}
	b.done = true
	if complete && b.keep && b.cc.br.Buffered() == 0 {
		b.client.put(b.cc)
		return
	}
	b.cc.conn.Close()
}
