package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"runtime"
	"strconv"
	"time"
)

// upstreamResponse is the app's answer, with its body held in full (or, past
// maxResponseBytes, the head of it and the rest still to stream).
type upstreamResponse struct {
	status int
	header appHeader
	body   []byte
	rest   io.ReadCloser // non-nil when the body exceeded maxResponseBytes
}

// exchange is the handler's round trip, starting at now: it writes o on a
// pooled (quiet) or new connection, bounded by deadline, reads the final
// response head, and holds the body up to maxResponseBytes. With fresh it
// always dials. Errors before any response byte wrap ErrNoResponse, as
// RoundTrip's do.
func (c *Client) exchange(ctx context.Context, o *outbound, now, deadline time.Time, fresh bool) (ur *upstreamResponse, reused bool, err error) {
	// The dial is not cancelled when the sender hangs up either.
	cc, reused, err := c.get(ctx, o.f.scheme, o.f.addr, fresh, true, now, deadline)
	if err != nil {
		return nil, false, err
	}
	before := cc.read.n
	bw := getWriter(cc.conn)
	err = o.write(bw)
	putWriter(bw)
	if err != nil {
		return nil, reused, cc.failed(before, err)
	}
	// Let the other ready requests run before reading: the app has often
	// answered by then, which saves the read that would find nothing and
	// the park and wake-up after it (perf stat under the bench's load:
	// about 0.7 reads per request less). Alone, this returns at once.
	runtime.Gosched()
	cc.read.limit = before + maxResponseHeaderBytes
	err = cc.readFinalHead()
	cc.read.limit = 0
	if err != nil {
		return nil, reused, cc.failed(before, err)
	}
	ur, err = c.readBody(cc)
	return ur, reused, err
}

// readFinalHead reads response heads until the final one, skipping 1xx
// informational ones.
func (cc *clientConn) readFinalHead() error { return cc.head.readFinal(cc.br) }

// readFinal reads response heads from br until the final one, skipping 1xx
// informational ones.
func (hd *respHead) readFinal(br *bufio.Reader) error {
	for {
		if err := hd.read(br); err != nil {
			return err
		}
		switch s := hd.status; {
		case s == http.StatusSwitchingProtocols:
			return errors.New("app switched protocols")
		case s >= 100 && s < 200:
			continue
		}
		return nil
	}
}

// readBody holds the body of the head just read, up to maxResponseBytes,
// and returns the connection to the pool when the body ended cleanly. A
// larger body is left to stream from ur.rest, which owns the connection.
func (c *Client) readBody(cc *clientConn) (*upstreamResponse, error) {
	hd := &cc.head
	ur := &upstreamResponse{status: hd.status}
	b, body, complete, err := holdBody(cc.br, hd)
	ur.body = body
	if err != nil {
		cc.conn.Close()
		return nil, err
	}
	if len(ur.body) > maxResponseBytes {
		hd.header(&ur.header, -1)
		if complete {
			ur.rest = http.NoBody
		} else {
			rest := &restBody{src: b}
			rest.clientBody = clientBody{rc: &rest.src, client: c, cc: cc, keep: !hd.close}
			ur.rest = rest
			return ur, nil
		}
	} else {
		hd.header(&ur.header, len(ur.body))
	}
	if !hd.close && cc.br.Buffered() == 0 {
		c.put(cc)
	} else {
		cc.conn.Close()
	}
	return ur, nil
}

// holdBody holds the body of hd, the head just read from br, up to
// maxResponseBytes; complete is false when there is more, which b reads.
func holdBody(br *bufio.Reader, hd *respHead) (b appBody, body []byte, complete bool, err error) {
	b = appBody{br: br, hd: hd, left: hd.length}
	if hd.length == 0 {
		return b, nil, true, nil
	}
	size := 512
	if hd.length > 0 {
		size = int(min(hd.length, maxResponseBytes+1))
	}
	if hd.chunked {
		b.chunked = httputil.NewChunkedReader(br)
	}
	body, complete, err = hold(&b, size)
	return b, body, complete, err
}

// hold reads b to its end or to maxResponseBytes+1 bytes, starting with
// a buffer of size bytes.
func hold(b *appBody, size int) (body []byte, complete bool, err error) {
	buf := make([]byte, 0, size)
	for len(buf) <= maxResponseBytes {
		if len(buf) == cap(buf) {
			next := make([]byte, len(buf), min(2*cap(buf), maxResponseBytes+1))
			copy(next, buf)
			buf = next
		}
		n, err := b.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, true, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
	return buf, false, nil
}

// appBody reads a response body as its head frames it: Content-Length,
// chunked (then the trailer), or up to EOF.
type appBody struct {
	br      *bufio.Reader
	hd      *respHead
	chunked io.Reader // the chunked decoder, when chunked
	left    int64     // bytes left of a Content-Length body, or -1
	done    bool
}

func (b *appBody) Read(p []byte) (int, error) {
	switch {
	case b.done:
		return 0, io.EOF
	case b.chunked != nil:
		n, err := b.chunked.Read(p)
		if err == io.EOF {
			b.done = true
			if terr := b.hd.readTrailer(b.br); terr != nil {
				err = terr
			}
		}
		return n, err
	case b.left >= 0:
		if b.left == 0 {
			b.done = true
			return 0, io.EOF
		}
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
		n, err := b.br.Read(p)
		b.left -= int64(n)
		switch {
		case err == io.EOF:
			err = io.ErrUnexpectedEOF // b.left > 0
		case err == nil && b.left == 0:
			b.done, err = true, io.EOF
		}
		return n, err
	}
	return b.br.Read(p)
}

// restBody is the rest of a body past maxResponseBytes; it returns the
// connection to the pool at a clean end, and closes it otherwise.
type restBody struct {
	clientBody
	src appBody
}

// readTrailer reads what follows the last chunk, as net/http's body does:
// an empty line, or trailer fields (checked, then dropped) that end within
// the read buffer.
func (hd *respHead) readTrailer(br *bufio.Reader) error {
	buf, err := br.Peek(2)
	if len(buf) == 2 && buf[0] == '\r' && buf[1] == '\n' {
		br.Discard(2)
		return nil
	}
	if errors.Is(err, errNeedMore) { // the loop's reader: the rest has not arrived
		return err
	}
	if len(buf) < 2 {
		return errTrailerEOF
	}
	if err != nil {
		return err
	}
	if found, err := upcomingDoubleCRLF(br); errors.Is(err, errNeedMore) {
		return err
	} else if !found {
		return errors.New("the app's trailer is too long")
	}
	raw, fields := len(hd.raw), len(hd.fields)
	err = hd.readFields(br)
	hd.raw, hd.fields = hd.raw[:raw], hd.fields[:fields]
	if err == io.ErrUnexpectedEOF {
		err = errTrailerEOF
	}
	return err
}

// upcomingDoubleCRLF reports whether "\r\n\r\n" is within the read
// buffer, and the error that ended the search when it is not.
func upcomingDoubleCRLF(br *bufio.Reader) (bool, error) {
	for n := 4; ; n++ {
		buf, err := br.Peek(n)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// errNeedMore is what the event loop's parse of an answer meets when the
// rest has not arrived yet (its reader returns it where a socket's would
// block).
var errNeedMore = errors.New("more bytes needed")

// inlineFields is how many header fields an upstreamResponse holds
// without another allocation.
const inlineFields = 15

// appHeader is the app's header as writeResponse passes it on: every
// name and value is a substring of one string.
type appHeader struct {
	keys, vals []string
	length     []string // Content-Length of a held body
	kv         [2*inlineFields + 1]string
}

// header fills h from the head as net/http's ReadResponse leaves it
// (Transfer-Encoding removed; Connection removed when it says close on
// HTTP/1.1; Trailer removed when chunked; several equal Content-Lengths
// made one; Cache-Control: no-cache added for Pragma: no-cache). held is
// the size of a body held in full, or -1 when the body is streamed, which
// keeps the app's Content-Length.
func (hd *respHead) header(h *appHeader, held int) {
	keep := func(i int) bool {
		switch name := hd.name(i); {
		case string(name) == "Transfer-Encoding", string(name) == "Content-Length":
			return false
		case string(name) == "Connection":
			return !hd.dropConn
		case string(name) == "Trailer":
			return !hd.teChunked
		}
		return true
	}
	n := 0
	pragma, cacheControl := -1, false
	for i := range hd.fields {
		if keep(i) {
			n++
		}
		switch name := hd.name(i); {
		case string(name) == "Pragma":
			if pragma < 0 {
				pragma = i
			}
		case string(name) == "Cache-Control":
			cacheControl = true
		}
	}
	addCache := pragma >= 0 && string(hd.value(pragma)) == "no-cache" && !cacheControl
	if addCache {
		n++
	}
	streamCL := held < 0 && hd.nCL > 0 && !hd.chunked
	if streamCL {
		n++
	}
	kv := h.kv[:]
	if 2*n+1 > len(kv) {
		kv = make([]string, 2*n+1)
	}
	h.keys, h.vals = kv[:0:n], kv[n:n:2*n]
	end := len(hd.raw)
	if held >= 0 {
		hd.raw = strconv.AppendInt(hd.raw, int64(held), 10)
	}
	s := string(hd.raw)
	hd.raw = hd.raw[:end]
	for i, f := range hd.fields {
		if keep(i) {
			h.keys = append(h.keys, s[f.k0:f.k1])
			h.vals = append(h.vals, s[f.v0:f.v1])
		}
	}
	if addCache {
		h.keys = append(h.keys, "Cache-Control")
		h.vals = append(h.vals, "no-cache")
	}
	if streamCL {
		for i, f := range hd.fields {
			if string(hd.name(i)) == "Content-Length" {
				v := s[f.v0:f.v1]
				if hd.nCL > 1 {
					v = trimOWS(v)
				}
				h.keys = append(h.keys, "Content-Length")
				h.vals = append(h.vals, v)
				break
			}
		}
	}
	if held >= 0 {
		kv[2*n] = s[end:]
		h.length = kv[2*n : 2*n+1 : 2*n+1]
	}
}
