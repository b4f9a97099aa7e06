// Package h1 is the HTTP/1.1 server of postern's webhook listener.
//
// It serves an http.Handler like net/http's Server does, over plain TCP,
// for one kind of traffic: small POST requests on kept-alive connections.
// It does less per request than net/http (no background read goroutine,
// no per-request context, headers parsed from one string, connection
// buffers reused), and it is stricter about framing, because every byte it
// accepts is then verified and forwarded as one request:
//
//   - Content-Length and Transfer-Encoding together, two Content-Length
//     headers, a Content-Length that is not all digits, and any
//     Transfer-Encoding other than a single "chunked" are refused, and the
//     connection is closed;
//   - chunked framing must use CRLF everywhere; a bare LF or CR, an
//     oversized or malformed chunk size, and missing chunk terminators are
//     errors, not guesses;
//   - obsolete line folding, whitespace before a header's colon, control
//     characters in a header and a missing or repeated Host are refused.
//
// Malformed requests get 400, 431, 501 or 505 with the body ErrorBody
// returns, and the connection is closed. It has no TLS, HTTP/2, Upgrade,
// Hijack or trailers: the admin listener keeps net/http.
package h1

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// maxDiscardBytes is how much of a body the handler left unread is read
// and dropped to keep the connection; a larger rest closes it.
const maxDiscardBytes = 256 << 10

// Server serves HTTP/1.1 on the listeners given to Serve.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request's line and headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included, from its
	// first byte.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing the response, from the request's first byte.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers together.
	MaxHeaderBytes int
	// ErrorLog receives handler panics and accept errors (default: log's
	// standard logger).
	ErrorLog *log.Logger
	// ErrorBody returns the body of an answer to a malformed request
	// (default: the status text as text/plain).
	ErrorBody func(status int, detail string) (contentType string, body []byte)

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	closed    atomic.Bool    // Close: connections are closed, not drained
	serving   sync.WaitGroup // Serve calls still running
	done      chan struct{}  // closed when the last connection ends after closing
	date      atomic.Pointer[dateLine]
}

// Serve accepts connections on ln and serves each in its own goroutine. It
// returns ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
	}
	s.listeners[ln] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// As net/http: back off on EMFILE and the like, keep serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logf("h1: accept error: %v; retrying in %v", err, backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		// A connection accepted before the listener closed is served,
		// even if Shutdown has begun: its request may be on its way, and
		// Shutdown waits for it (its answer says Connection: close).
		c := s.newConn(nc, true)
		if c == nil {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// Shutdown stops accepting, closes idle connections, and waits until every
// request in flight has been answered or ctx ends. Connections close after
// their current response.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	// The accept loops end once their listeners are closed; a connection
	// one of them accepted just before is registered by then.
	served := make(chan struct{})
	go func() {
		s.serving.Wait()
		close(served)
	}()
	select {
	case <-served:
	case <-ctx.Done():
		return ctx.Err()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	s.closed.Store(true)
	s.beginClose()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
	return nil
}

func (s *Server) beginClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
}

// closeIdle closes the idle connections and reports whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.Load() == stateIdle {
			c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

// newConn registers nc. It returns nil after Close, and after Shutdown
// began unless accepted (the connection came from Serve's listener).
func (s *Server) newConn(nc net.Conn, accepted bool) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() || s.closing.Load() && !accepted {
		return nil
	}
	c := &conn{srv: s, nc: nc}
	if a := nc.RemoteAddr(); a != nil { // nil for a socket the peer reset before it was wrapped
		c.remote = a.String()
	}
	c.state.Store(stateNew)
	s.conns[c] = struct{}{}
	return c
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

func (s *Server) errorBody(status int, detail string) (string, []byte) {
	if s.ErrorBody != nil {
		return s.ErrorBody(status, detail)
	}
	return "text/plain; charset=utf-8", []byte(http.StatusText(status) + ": " + detail + "\n")
}

// dateLine is a formatted Date header, remade once a second.
type dateLine struct {
	sec  int64
	line []byte
}

func (s *Server) dateHeader(now time.Time) []byte {
	sec := now.Unix()
	if d := s.date.Load(); d != nil && d.sec == sec {
		return d.line
	}
	d := &dateLine{sec: sec, line: now.UTC().AppendFormat([]byte("Date: "), http.TimeFormat)}
	d.line = append(d.line, "\r\n"...)
	s.date.Store(d)
	return d.line
}

// Connection states, for Shutdown: it closes idle connections at once,
// and waits for new ones (bounded by the header timeout) as for active
// ones, since their first request may be on its way.
const (
	stateNew int32 = iota
	stateIdle
	stateActive
)

// Buffers of a connection, reused across connections.
var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// conn is one client connection.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string
	state  atomic.Int32
	br     *bufio.Reader
	bw     *bufio.Writer
	// Reused per request.
	scratch []byte
	header  http.Header
	vals    []string // the slab of the header's values
	body    body
	resp    response
	broken  bool         // a read or write failed: no more requests
	req     http.Request // the request being served
	url     url.URL      // its URL, when parseTarget fills it
	// The deadlines last set (zero: none), for readBy and writeBy.
	rd, wd time.Time
	began  time.Time // of an adopted connection's first request (see Adopt)
	// A Detached's body write of at least referMin bytes (0: none) is
	// kept as tail, by reference, rather than copied (see Detached.Refer).
	referMin int
	tail     []byte
}

// readBy sets the read deadline to at, or leaves the one already set when
// it falls no more than slack after at. The idle and write deadlines move
// with every request, and an update costs a timer operation and clock
// reads; with slack an eighth of the timeout (see slack), a busy
// connection updates each of them about once per eighth of its timeout,
// and those two timeouts can end up to an eighth longer than configured,
// never shorter. The header and request read timeouts get no slack. A zero
// at clears the deadline.
func (c *conn) readBy(at time.Time, slack time.Duration) {
	moveDeadline(&c.rd, c.nc.SetReadDeadline, at, slack)
}

// writeBy is readBy for the write deadline.
func (c *conn) writeBy(at time.Time, slack time.Duration) {
	moveDeadline(&c.wd, c.nc.SetWriteDeadline, at, slack)
}

// moveDeadline sets the deadline *cur with set, as readBy describes.
func moveDeadline(cur *time.Time, set func(time.Time) error, at time.Time, slack time.Duration) {
	if keep(*cur, at, slack) {
		return
	}
	if !at.IsZero() {
		at = at.Add(slack)
	}
	*cur = at
	set(at)
}

// keep reports whether the deadline set, cur, can stand for at: both
// none, or cur within slack after at.
func keep(cur, at time.Time, slack time.Duration) bool {
	if at.IsZero() || cur.IsZero() {
		return at.IsZero() && cur.IsZero()
	}
	d := cur.Sub(at)
	return d >= 0 && d <= slack
}

// slack is the lateness readBy and writeBy allow for a timeout d.
func slack(d time.Duration) time.Duration { return d / 8 }

func (c *conn) serve() {
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(c.nc)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(c.nc)
	defer func() {
		c.nc.Close()
		c.srv.forget(c)
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
	}()
	c.header = make(http.Header, 16)
	c.resp.header = make(http.Header, 8)
	c.body.c = c
	c.resp.c = c
	s := c.srv
	for first := true; ; first = false {
		// Wait for the next request: the header timeout for the first,
		// the idle timeout between requests.
		wait := s.IdleTimeout
		if first {
			wait = cmp.Or(s.ReadHeaderTimeout, s.ReadTimeout)
		}
		if c.br.Buffered() == 0 {
			if !first {
				// Let the other connections that are ready run first:
				// by the time this one reads again, its client has
				// often sent the next request, and the read that would
				// find nothing (and the park and wake-up after it) is
				// saved (perf stat under the bench's load: about half
				// a read per request less).
				runtime.Gosched()
			}
			if wait > 0 {
				// Only the idle timeout gets slack: the header and
				// request timeouts stay exact.
				sl := slack(wait)
				if first {
					sl = 0
				}
				c.readBy(time.Now().Add(wait), sl)
			}
			if _, err := c.br.Peek(1); err != nil {
				return
			}
		}
		c.state.Store(stateActive)
		if s.closing.Load() && !first {
			// Shutdown began while idle with this request already on
			// its way: answer it, then close.
			c.resp.closeAfter = true
		}
		if !c.serveOne() {
			return
		}
		c.state.Store(stateIdle)
		if s.closing.Load() {
			return
		}
	}
}

// serveOne reads, answers and finishes one request, and reports whether the
// connection can carry another.
func (c *conn) serveOne() (keep bool) {
	s := c.srv
	start := time.Now()
	// A read deadline matters only for reads that reach the network: when
	// the whole head, or then the whole body, is already buffered (the
	// usual webhook, one segment), it is not set, which saves a timer
	// update and two clock reads each time.
	//
	// As net/http: without a header timeout, the read timeout bounds the
	// headers too.
	if t := cmp.Or(s.ReadHeaderTimeout, s.ReadTimeout); t > 0 && !c.headBuffered() {
		c.readBy(start.Add(t), 0)
	}
	req, herr := c.readRequest()
	if herr != nil {
		c.writeError(herr, start)
		return false
	}
	if !c.bodyBuffered() {
		if s.ReadTimeout > 0 {
			c.readBy(start.Add(s.ReadTimeout), 0)
		} else {
			c.readBy(time.Time{}, 0)
		}
	}
	if s.WriteTimeout > 0 {
		c.writeBy(start.Add(s.WriteTimeout), slack(s.WriteTimeout))
	}
	w := &c.resp
	closeAfter := w.closeAfter
	w.reset(req, start)
	w.closeAfter = closeAfter || req.Close
	if !c.callHandler(w, req) {
		return false
	}
	if !w.finish() {
		return false
	}
	if c.broken || w.closeAfter {
		return false
	}
	// What the handler left of the body is read and dropped, so that the
	// next request starts where this one ends.
	if !c.body.eof && !c.body.discard() {
		return false
	}
	return true
}

// headBuffered reports whether the buffer holds a whole request head: it
// starts with the request line (not with the empty lines RFC 9112 lets a
// client send first) and has the empty line that ends the head.
func (c *conn) headBuffered() bool {
	buf, _ := c.br.Peek(c.br.Buffered())
	if len(buf) == 0 || buf[0] == '\r' || buf[0] == '\n' {
		return false
	}
	return bytes.Contains(buf, headEnd) || bytes.Contains(buf, headEndLF)
}

// A line end followed by an empty line, with CRLF or a bare LF.
var (
	headEnd   = []byte("\n\r\n")
	headEndLF = []byte("\n\n")
)

// bodyBuffered reports whether the rest of the request's body is in the
// buffer.
func (c *conn) bodyBuffered() bool {
	b := &c.body
	return b.eof || (!b.chunked && int64(c.br.Buffered()) >= b.remaining)
}

// callHandler runs the handler and reports false when it panicked (the
// connection is then closed without finishing the response, which is how
// the handler aborts one: http.ErrAbortHandler).
func (c *conn) callHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if err := recover(); err != nil {
			ok = false
			if err != http.ErrAbortHandler {
				buf := make([]byte, 16<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logf("h1: panic serving %s: %v\n%s", c.remote, err, buf)
			}
		}
	}()
	if !c.began.IsZero() {
		req = req.WithContext(context.WithValue(req.Context(), arrivedKey{}, c.began))
		c.began = time.Time{}
	}
	c.srv.Handler.ServeHTTP(w, req)
	return true
}

// writeError answers a request that could not be read, and closes.
func (c *conn) writeError(e *requestError, start time.Time) {
	if e.status == 0 {
		return // the connection broke or timed out: nobody to answer
	}
	ctype, body := c.srv.errorBody(e.status, e.detail)
	c.writeBy(start.Add(5*time.Second), 0)
	bw := c.bw
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", e.status, http.StatusText(e.status))
	bw.Write(c.srv.dateHeader(start))
	fmt.Fprintf(bw, "Content-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n", ctype, len(body))
	bw.Write(body)
	bw.Flush()
	// Let the client read the answer before the close resets the
	// connection over the unread rest of its request.
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		c.readBy(time.Now().Add(500*time.Millisecond), 0)
		io.CopyN(io.Discard, c.nc, maxDiscardBytes)
	}
}
