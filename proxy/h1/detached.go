package h1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"time"
)

// Detached serves the requests of one connection that Serve does not own:
// another engine (postern's event loop) reads and writes the socket, and
// Detached parses each request head with Serve's rules and renders the
// handler's response with Serve's framing, into memory. A request that is
// not the simple case (see Parse) is left to Serve, with Adopt.
type Detached struct {
	c   conn
	src bytes.Reader
	out bytes.Buffer
}

// Detach returns a Detached for a connection from remote, served with s's
// settings (header limit, error log, Date header, closing state).
func (s *Server) Detach(remote string) *Detached {
	d := &Detached{}
	c := &d.c
	c.srv, c.remote = s, remote
	c.header = make(http.Header, 16)
	c.resp.header = make(http.Header, 8)
	c.body.c = c
	c.resp.c = c
	c.br = bufio.NewReaderSize(&d.src, 4<<10)
	c.bw = bufio.NewWriterSize(&d.out, 4<<10)
	return d
}

// Reset readies d for a connection from remote.
func (d *Detached) Reset(remote string) { d.c.remote = remote }

// Parse parses head, a request line and header block ending with the
// empty line. It returns false when the request is anything but the simple
// case this engine serves: a well-formed HTTP/1.1 or HTTP/1.0 request with
// a Content-Length (or no body), no Transfer-Encoding and no Expect. The
// caller then hands the connection, with everything read so far, to
// Adopt, which answers exactly as Serve would, refusals of malformed
// requests included. Otherwise the caller passes the body, all
// req.ContentLength bytes of it, to SetBody before the handler runs.
func (d *Detached) Parse(head string) (*http.Request, bool) {
	c := &d.c
	if len(head) > c.srv.maxHeaderBytes() {
		return nil, false
	}
	req, err := c.parseRequest(head)
	if err != nil || req.TransferEncoding != nil || c.body.expect {
		return nil, false
	}
	if _, ok := req.Header["Expect"]; ok {
		return nil, false
	}
	return req, true
}

// SetBody makes body the body of the request Parse returned.
func (d *Detached) SetBody(body []byte) {
	d.src.Reset(body)
	d.c.br.Reset(&d.src)
}

// Writer returns the response writer for req, the request Parse just
// returned, which started at start.
func (d *Detached) Writer(req *http.Request, start time.Time) http.ResponseWriter {
	// The last answer's bytes are dropped here, not in Finish: what the
	// handler writes past bw's 4 KiB is flushed into out as it goes.
	d.out.Reset()
	w := &d.c.resp
	w.reset(req, start)
	w.closeAfter = req.Close
	d.c.broken = false
	d.c.referMin, d.c.tail = 0, nil
	return w
}

// Refer makes a write of a body of at least min bytes framed by its
// Content-Length be kept by reference rather than copied: Finish returns
// it as tail, to be sent after out. The caller then leaves the bytes it
// wrote unchanged until they are sent. It lasts until the next Writer.
func (d *Detached) Refer(min int) { d.c.referMin = min }

// RetainedOut is the capacity of the largest output buffer a Detached
// keeps for its next response.
const RetainedOut = 64 << 10

// Finish completes the response and returns its bytes, out then tail (a
// body kept by reference, see Refer), and whether the connection can
// carry another request. out stays valid until the next Writer; when
// cap(out) > RetainedOut, d lets go of it and it is the caller's to keep.
func (d *Detached) Finish() (out, tail []byte, keep bool) {
	c := &d.c
	ok := c.resp.finish()
	tail, c.tail = c.tail, nil
	// What the handler left of the body is dropped with it: the body is
	// all in memory (SetBody), so it ends, unlike serveOne's, without
	// being read.
	keep = ok && !c.broken && !c.resp.closeAfter
	out = d.out.Bytes()
	if cap(out) > RetainedOut {
		d.out = bytes.Buffer{}
	}
	return out, tail, keep
}

// Stream makes the response being written go to w as it is written,
// rather than into memory: for an answer too large to hold. The caller
// then closes the connection after it, and the response says so
// (Connection: close), so that the sender sends nothing more on it.
func (d *Detached) Stream(w io.Writer) {
	if d.c.tail != nil { // (none today: Stream comes before the body)
		d.c.bw.Write(d.c.tail)
		d.c.tail = nil
	}
	d.c.bw.Flush()
	d.c.bw.Reset(w)
	d.c.resp.closeAfter = true
	d.c.referMin = 0
}

// Adopt serves nc, a connection from remote, from now on as if Serve had
// accepted it, with buffered (what was read from it and not answered) read
// first. It returns false, and closes nc, once Close was called; after
// Shutdown began it serves the request begun on nc, then closes it.
// remote is the peer's address as the caller recorded it at accept: a
// connection the peer has reset since has none to ask for.
//
// began is when the request on nc began to arrive (zero: unknown): the
// handler reads it with Arrived, so that the request's duration counts
// from there, not from the hand-over.
func (s *Server) Adopt(nc net.Conn, remote string, buffered []byte, began time.Time) bool {
	if len(buffered) > 0 {
		nc = &prefixConn{Conn: nc, prefix: buffered}
	}
	s.mu.Lock()
	if s.conns == nil {
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
	}
	s.mu.Unlock()
	// As if accepted: a request has begun on it, and is answered even if
	// Shutdown began meanwhile (Shutdown, called again, waits for it).
	c := s.newConn(nc, true)
	if c == nil {
		nc.Close()
		return false
	}
	if remote != "" {
		c.remote = remote
	}
	c.began = began
	go c.serve()
	return true
}

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// CloseWrite lets writeError half-close an adopted TCP connection too.
func (p *prefixConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes <= 0 {
		return http.DefaultMaxHeaderBytes
	}
	return s.MaxHeaderBytes
}

// arrivedKey is the context key of an adopted request's arrival time.
type arrivedKey struct{}

// Arrived returns when r began to arrive, if it was read in part by
// another server before Adopt handed its connection over.
func Arrived(r *http.Request) (time.Time, bool) {
	t, ok := r.Context().Value(arrivedKey{}).(time.Time)
	return t, ok
}
