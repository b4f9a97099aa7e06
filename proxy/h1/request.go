package h1

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// requestError is a request the server answers itself and then closes the
// connection on. A zero status means there is nobody to answer (the
// connection closed or timed out).
type requestError struct {
	status int
	detail string
}

func badRequest(detail string) *requestError {
	return &requestError{status: http.StatusBadRequest, detail: detail}
}

var (
	errGone           = &requestError{}
	errHeaderTooLarge = &requestError{status: http.StatusRequestHeaderFieldsTooLarge, detail: "the request line and headers exceed the limit"}
)

// chunkedCoding is the TransferEncoding of a chunked request.
var chunkedCoding = []string{"chunked"}

// readRequest reads the request line and headers into a Request whose
// header strings all share one allocation.
func (c *conn) readRequest() (*http.Request, *requestError) {
	limit := c.srv.MaxHeaderBytes
	if limit <= 0 {
		limit = http.DefaultMaxHeaderBytes
	}
	raw := c.scratch[:0]
	lineStart := 0
	for {
		line, err := c.br.ReadSlice('\n')
		if len(raw)+len(line) > limit {
			return nil, errHeaderTooLarge
		}
		raw = append(raw, line...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a line longer than the buffer: keep reading it
		}
		if err != nil {
			if len(raw) > 0 && !errors.Is(err, io.EOF) && !isTimeout(err) {
				return nil, badRequest("the request could not be read")
			}
			return nil, errGone
		}
		l := raw[lineStart:]
		if len(l) <= 2 && (string(l) == "\r\n" || string(l) == "\n") {
			if lineStart == 0 {
				// An empty line before the request line (RFC 9112
				// section 2.2): ignored.
				raw = raw[:0]
				continue
			}
			break
		}
		lineStart = len(raw)
	}
	if cap(raw) <= 8<<10 {
		c.scratch = raw[:0] // keep a grown buffer, but not a huge one
	}
	return c.parseRequest(string(raw))
}

// parseRequest parses a request line and header block, CRLF or LF
// terminated, ending with the empty line.
func (c *conn) parseRequest(block string) (*http.Request, *requestError) {
	line, rest, _ := strings.Cut(block, "\n")
	line, ok := trimCR(line)
	if !ok {
		return nil, badRequest("a bare CR in the request line")
	}
	method, rest1, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest1, " ")
	if !ok1 || !ok2 || !isToken(method) || target == "" || strings.ContainsAny(target, " \t") {
		return nil, badRequest("malformed request line")
	}
	var minor int
	switch proto {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
		minor = 0
	default:
		if strings.HasPrefix(proto, "HTTP/") && len(proto) == 8 && proto[6] == '.' {
			return nil, &requestError{status: http.StatusHTTPVersionNotSupported, detail: "only HTTP/1.1 and HTTP/1.0 are served"}
		}
		return nil, badRequest("malformed request line")
	}
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= ' ' || b == 0x7f {
			return nil, badRequest("a control character in the request target")
		}
	}
	u, err := parseTarget(target, &c.url)
	if err != nil {
		return nil, badRequest("malformed request target")
	}

	h := c.header
	clear(h)
	// One slab for all values, as net/textproto does, reused as the
	// header map is.
	vals := c.vals[:0]
	if n := strings.Count(rest, "\n"); n <= cap(vals) {
		vals = vals[:n]
		clear(vals)
	} else {
		vals = make([]string, n)
		if n <= 64 {
			c.vals = vals
		}
	}
	var (
		host, contentLength, te string
		nHost, nCL, nTE         int
		closeConn               bool
		expectContinue          bool
		expectOther             bool
	)
	for {
		var l string
		l, rest, _ = strings.Cut(rest, "\n")
		l, ok = trimCR(l)
		if !ok {
			return nil, badRequest("a bare CR in a header")
		}
		if l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			return nil, badRequest("obsolete line folding in a header")
		}
		name, value, found := strings.Cut(l, ":")
		if !found || !isToken(name) {
			return nil, badRequest("malformed header name (no colon, or whitespace before it)")
		}
		value = trimOWS(value)
		if !validValue(value) {
			return nil, badRequest("a control character in header " + quoteName(name))
		}
		key := canonicalKey(name)
		switch key {
		// As net/http: the Host header becomes Request.Host, and the
		// transfer coding Request.TransferEncoding; neither stays in the
		// header map.
		case "Host":
			host, nHost = value, nHost+1
			continue
		case "Transfer-Encoding":
			te, nTE = value, nTE+1
			continue
		case "Content-Length":
			contentLength, nCL = value, nCL+1
		case "Connection":
			for tok := range strings.SplitSeq(value, ",") {
				tok = trimOWS(tok)
				closeConn = closeConn || strings.EqualFold(tok, "close")
			}
		case "Expect":
			if strings.EqualFold(value, "100-continue") {
				expectContinue = true
			} else {
				expectOther = true
			}
		}
		if vv, ok := h[key]; ok {
			h[key] = append(vv, value)
		} else {
			vals[0] = value
			h[key] = vals[:1:1]
			vals = vals[1:]
		}
	}

	// The Request and its URL are the connection's, reused: the handler
	// is done with them when ServeHTTP returns, as with net/http.
	req := &c.req
	*req = http.Request{
		Method:     method,
		URL:        u,
		Proto:      proto,
		ProtoMajor: 1,
		ProtoMinor: minor,
		Header:     h,
		RemoteAddr: c.remote,
		RequestURI: target,
	}
	switch {
	case u.Host != "":
		req.Host = u.Host // absolute form: the target's authority wins
	case nHost == 1:
		req.Host = host
	}
	if nHost > 1 {
		return nil, badRequest("more than one Host header")
	}
	if nHost == 0 && minor == 1 {
		return nil, badRequest("missing Host header")
	}
	if !validHost(req.Host) {
		return nil, badRequest("malformed Host header")
	}
	if expectOther {
		return nil, &requestError{status: http.StatusExpectationFailed, detail: "only Expect: 100-continue is supported"}
	}

	// Framing (RFC 9112 section 6). Anything that two parsers could read
	// differently is refused rather than interpreted.
	b := &c.body
	b.reset()
	switch {
	case nTE > 0 && nCL > 0:
		return nil, badRequest("both Transfer-Encoding and Content-Length")
	case nTE > 0:
		if minor == 0 {
			return nil, badRequest("Transfer-Encoding in an HTTP/1.0 request")
		}
		if nTE > 1 || !strings.EqualFold(te, "chunked") {
			return nil, &requestError{status: http.StatusNotImplemented, detail: "the only transfer coding served is a single chunked"}
		}
		b.chunked = true
		req.ContentLength = -1
		req.TransferEncoding = chunkedCoding
		req.Body = b
	case nCL > 1:
		return nil, badRequest("more than one Content-Length header")
	case nCL == 1:
		n, ok := parseContentLength(contentLength)
		if !ok {
			return nil, badRequest("malformed Content-Length")
		}
		req.ContentLength = n
		if n == 0 {
			req.Body = http.NoBody
			b.eof = true
		} else {
			b.remaining = n
			req.Body = b
		}
	default:
		req.Body = http.NoBody
		b.eof = true
	}
	b.expect = expectContinue && !b.eof && minor == 1
	req.Close = closeConn || minor == 0 // HTTP/1.0: one request per connection
	return req, nil
}

// parseTarget parses a request target as url.ParseRequestURI does. An
// origin-form path of only unreserved characters and slashes (the usual
// webhook path) has nothing to unescape, so it is filled into u, which the
// caller reuses, without ParseRequestURI's allocation.
func parseTarget(target string, u *url.URL) (*url.URL, error) {
	if len(target) > 0 && target[0] == '/' && (len(target) == 1 || target[1] != '/') && plainPath(target) {
		*u = url.URL{Path: target}
		return u, nil
	}
	return url.ParseRequestURI(target)
}

// plainPath reports whether s holds only unreserved characters (RFC 3986
// section 2.3) and slashes.
func plainPath(s string) bool {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9',
			b == '/', b == '-', b == '.', b == '_', b == '~':
		default:
			return false
		}
	}
	return true
}

// trimCR strips the line's CR, and reports false for a CR elsewhere.
func trimCR(l string) (string, bool) {
	l = strings.TrimSuffix(l, "\r")
	return l, strings.IndexByte(l, '\r') < 0
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// parseContentLength parses an all-digit length. Leading zeros are allowed,
// as in net/http; more than 18 digits after them is refused (400) rather
// than risk an overflow: no body postern takes is that long.
func parseContentLength(s string) (int64, bool) {
	if t := strings.TrimLeft(s, "0"); t != s {
		s = cmp.Or(t, "0")
	}
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// tchar of RFC 9110 section 5.6.2.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// validValue reports whether s holds only field-vchar, SP and HTAB (RFC
// 9110 section 5.5): no CR, LF, NUL or other control character.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// validHost allows the characters of a URI authority (RFC 3986).
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if tchar[b] && b != '`' && b != '^' && b != '|' && b != '#' {
			continue
		}
		switch b {
		case ':', '[', ']', '(', ')', ',', ';', '=', '@':
			continue
		}
		return false
	}
	return true
}

func quoteName(name string) string {
	if len(name) > 64 {
		name = name[:64]
	}
	return "\"" + name + "\""
}

// commonKeys maps lower-case spellings of frequent headers to their
// canonical form, so that canonicalizing them allocates nothing (a name
// already canonical is used as it is).
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Authorization", "Connection", "Content-Length",
		"Content-Type", "Expect", "Host", "Traceparent", "Tracestate", "Transfer-Encoding",
		"User-Agent", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id",
		"Svix-Id", "Svix-Timestamp", "Svix-Signature", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature",
	} {
		m[strings.ToLower(k)] = k
	}
	return m
}()

func canonicalKey(name string) string {
	upper := true
	for i := 0; i < len(name); i++ {
		b := name[i]
		if upper && 'a' <= b && b <= 'z' || !upper && 'A' <= b && b <= 'Z' {
			if k, ok := commonKeys[name]; ok {
				return k
			}
			return http.CanonicalHeaderKey(name)
		}
		upper = b == '-'
	}
	return name
}

// trimOWS strips optional whitespace (spaces and tabs) from both ends of
// s, as strings.Trim(s, " \t") does without building a set of the two.
func trimOWS(s string) string {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}

// body reads a request body framed by Content-Length or chunked coding.
type body struct {
	c         *conn
	remaining int64 // bytes left in the body, or in the current chunk
	chunked   bool
	eof       bool
	err       error
	expect    bool // 100-continue not yet sent
}

func (b *body) reset() {
	*b = body{c: b.c}
}

// errChunked is the body error of malformed chunked framing.
var errChunked = errors.New("h1: malformed chunked encoding")

func (b *body) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.expect {
		b.expect = false
		if !b.c.resp.headerSent {
			b.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := b.c.bw.Flush(); err != nil {
				return 0, b.fail(err)
			}
		}
	}
	if b.chunked && b.remaining == 0 {
		if err := b.nextChunk(); err != nil {
			return 0, b.fail(err)
		}
		if b.eof {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.c.br.Read(p)
	b.remaining -= int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return n, b.fail(err)
	}
	if b.remaining == 0 {
		if !b.chunked {
			b.eof = true
			return n, io.EOF
		}
		if err := b.crlf(); err != nil {
			return n, b.fail(err)
		}
	}
	return n, nil
}

func (b *body) fail(err error) error {
	b.err = err
	b.c.broken = true
	return err
}

// nextChunk reads a chunk-size line (and, after the last chunk, the
// trailer section, which is read and dropped).
func (b *body) nextChunk() error {
	line, err := b.c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return errChunked
		}
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return errChunked // bare LF
	}
	line = line[:len(line)-2]
	size, ext, _ := bytes.Cut(line, []byte(";"))
	size = bytes.TrimRight(size, " \t")
	if len(size) == 0 || len(size) > 15 {
		return errChunked
	}
	var n int64
	for _, c := range size {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return errChunked
		}
		n = n<<4 | int64(d)
	}
	// Chunk extensions are allowed as tokens only: no quoted strings, in
	// which a CR or LF could hide.
	for _, c := range ext {
		if !tchar[c] && c != '=' && c != ';' && c != ' ' && c != '\t' {
			return errChunked
		}
	}
	if n > 0 {
		b.remaining = n
		return nil
	}
	// Last chunk: the trailer section, up to an empty line.
	total := 0
	for {
		line, err := b.c.br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return errChunked
		}
		total += len(line)
		if !bytes.HasSuffix(line, []byte("\r\n")) || bytes.IndexByte(line[:len(line)-2], '\r') >= 0 || total > 16<<10 {
			return errChunked
		}
		if len(line) == 2 {
			b.eof = true
			return nil
		}
	}
}

// crlf reads the CRLF that ends a chunk's data.
func (b *body) crlf() error {
	cr, err := b.c.br.ReadByte()
	if err == nil && cr != '\r' {
		return errChunked
	}
	var lf byte
	if err == nil {
		lf, err = b.c.br.ReadByte()
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if lf != '\n' {
		return errChunked
	}
	return nil
}

// discard reads and drops what the handler left of the body, up to
// maxDiscardBytes, and reports whether the body then ended.
func (b *body) discard() bool {
	if b.expect {
		return false // the client waits for 100 Continue and sends nothing
	}
	io.CopyN(io.Discard, b, maxDiscardBytes+1)
	return b.eof
}

// Close does nothing: what the handler leaves of the body is dropped (or
// the connection closed) after the response.
func (b *body) Close() error { return nil }
