package h1

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// bufferedBody is how much body a response without Content-Length holds
// before it switches to chunked coding; a response that ends within it is
// sent with a Content-Length.
const bufferedBody = 4 << 10

// response is the http.ResponseWriter of one request. It is reused for
// every request of its connection.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header
	start  time.Time

	status      int
	wroteHeader bool  // the handler chose the status
	headerSent  bool  // the status line is in the write buffer
	declared    int64 // the handler's Content-Length, or -1
	written     int64 // body bytes accepted
	chunked     bool
	noBody      bool
	closeAfter  bool
	pending     []byte // body held until the framing is known
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
)

func (w *response) reset(req *http.Request, start time.Time) {
	clear(w.header)
	*w = response{c: w.c, req: req, header: w.header, start: start, declared: -1, pending: w.pending[:0]}
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		return // informational answers are not passed on
	}
	w.wroteHeader = true
	w.status = code
	w.noBody = code == http.StatusNoContent || code == http.StatusNotModified || w.req.Method == http.MethodHead
	if cl := w.header["Content-Length"]; len(cl) == 1 {
		if n, ok := parseContentLength(cl[0]); ok {
			w.declared = n
		}
	}
	if w.declared < 0 {
		delete(w.header, "Content-Length")
	}
	if code == http.StatusNoContent {
		delete(w.header, "Content-Length") // RFC 9110 section 8.6
		w.declared = -1
	}
	delete(w.header, "Transfer-Encoding") // the framing is the server's
	if strings.EqualFold(w.header.Get("Connection"), "close") {
		w.closeAfter = true
	}
	delete(w.header, "Connection")
	// A body the handler left unread that cannot be dropped cheaply (too
	// large, or the client still waits for 100 Continue) ends the
	// connection: say so in this response.
	if b := &w.c.body; !b.eof && (b.expect || b.chunked || b.remaining > maxDiscardBytes || b.err != nil) {
		w.closeAfter = true
	}
	if w.req.Close || w.c.srv.closing.Load() {
		w.closeAfter = true
	}
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.declared < 0 && !w.headerSent {
		if len(w.pending)+len(p) <= bufferedBody {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.chunked = w.req.ProtoMinor == 1
		if !w.chunked {
			w.closeAfter = true // HTTP/1.0: the body ends with the connection
		}
		w.sendHeader(-1)
		w.writeBody(w.pending)
		w.pending = w.pending[:0]
	} else if !w.headerSent {
		w.sendHeader(-1)
	}
	return w.writeBody(p)
}

func (w *response) writeBody(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c := w.c
	bw := c.bw
	if c.tail != nil {
		// Bytes after a body kept by reference: it goes into the
		// buffer first, to keep the order.
		bw.Write(c.tail)
		c.tail = nil
	}
	if c.referMin > 0 && len(p) >= c.referMin && w.declared >= 0 && !w.chunked {
		// (The handler's own bytes, framed by its Content-Length; never
		// w.pending, which is reused.)
		if err := bw.Flush(); err != nil {
			c.broken = true
			return 0, err
		}
		c.tail = p
		return len(p), nil
	}
	if w.chunked {
		var size [16]byte
		bw.Write(strconv.AppendInt(size[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.c.broken = true
	}
	return n, err
}

// Flush sends what is buffered; a response without Content-Length becomes
// chunked.
func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		if w.declared < 0 && !w.noBody {
			w.chunked = w.req.ProtoMinor == 1
			w.closeAfter = w.closeAfter || !w.chunked
		}
		w.sendHeader(-1)
		w.writeBody(w.pending)
		w.pending = w.pending[:0]
	}
	if err := w.c.bw.Flush(); err != nil {
		w.c.broken = true
	}
}

// finish completes the response after the handler returns, and reports
// whether it was complete (a response shorter than its Content-Length, or
// one that could not be written, ends the connection).
func (w *response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		length := int64(-1)
		if w.declared < 0 && !w.noBody {
			length = int64(len(w.pending))
		}
		w.sendHeader(length)
		w.writeBody(w.pending)
	}
	if w.chunked {
		w.c.bw.WriteString("0\r\n\r\n")
	}
	if len(w.pending) > bufferedBody {
		w.pending = nil
	}
	if err := w.c.bw.Flush(); err != nil {
		w.c.broken = true
		return false
	}
	if w.declared >= 0 && !w.noBody && w.written < w.declared {
		return false
	}
	return true
}

// sendHeader writes the status line and headers; length, when not
// negative, is the Content-Length the server sets.
func (w *response) sendHeader(length int64) {
	w.headerSent = true
	bw := w.c.bw
	bw.WriteString(statusLine(w.status))
	for k, vv := range w.header {
		if !isToken(k) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	if _, ok := w.header["Date"]; !ok {
		bw.Write(w.c.srv.dateHeader(w.start))
	}
	if length >= 0 {
		var num [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], length, 10))
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

// writeValue writes a header value with any CR, LF or NUL replaced by a
// space, so that no value can end its header early.
func writeValue(bw interface {
	WriteString(string) (int, error)
	WriteByte(byte) error
}, v string) {
	if strings.IndexByte(v, '\r') < 0 && strings.IndexByte(v, '\n') < 0 && strings.IndexByte(v, 0) < 0 {
		bw.WriteString(v) // the usual value, checked without building a set of the three
		return
	}
	for {
		i := strings.IndexAny(v, "\r\n\x00")
		if i < 0 {
			bw.WriteString(v)
			return
		}
		bw.WriteString(v[:i])
		bw.WriteByte(' ')
		v = v[i+1:]
	}
}

var statusLines = func() map[int]string {
	m := map[int]string{}
	for code := 200; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			m[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
	return m
}()

func statusLine(code int) string {
	if l, ok := statusLines[code]; ok {
		return l
	}
	return "HTTP/1.1 " + strconv.Itoa(code) + " status code " + strconv.Itoa(code) + "\r\n"
}
