package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// respHead is one response head from the app, read as net/http's
// ReadResponse reads it (the same heads accepted and refused, the same
// framing), into buffers that belong to the connection. The one difference:
// a status below 100, which ReadResponse takes and a handler cannot send
// on, is refused.
type respHead struct {
	status       int
	major, minor int
	raw          []byte      // field names (canonical) and values
	fields       []fieldSpan // into raw
	line         []byte      // a line longer than the read buffer

	// Framing, as net/http's readTransfer decides it.
	length    int64 // body bytes; -1 for chunked or up to EOF
	chunked   bool  // the body is chunked
	teChunked bool  // Transfer-Encoding: chunked was sent (with or without a body)
	close     bool  // the connection ends after this response
	dropConn  bool  // Connection: close on HTTP/1.1, removed from the header
	nCL       int   // Content-Length fields (identical when several)
}

type fieldSpan struct{ k0, k1, v0, v1 int }

var (
	errMalformedStatus = errors.New("malformed status line from the app")
	errMalformedHeader = errors.New("malformed header line from the app")
	errTrailerEOF      = errors.New("unexpected EOF reading the app's trailer")
)

func (hd *respHead) name(i int) []byte  { return hd.raw[hd.fields[i].k0:hd.fields[i].k1] }
func (hd *respHead) value(i int) []byte { return hd.raw[hd.fields[i].v0:hd.fields[i].v1] }

// read reads one response head from br.
func (hd *respHead) read(br *bufio.Reader) error {
	if cap(hd.line) > 16<<10 {
		hd.line = nil
	}
	hd.raw, hd.fields = hd.raw[:0], hd.fields[:0]
	line, err := hd.readLine(br)
	if err != nil {
		return err
	}
	if err := hd.parseStatusLine(line); err != nil {
		return err
	}
	if err := hd.readFields(br); err != nil {
		return err
	}
	return hd.frame()
}

// readLine returns the next line without its "\n" or "\r\n"; it is valid
// until the next read from br.
func (hd *respHead) readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		hd.line = append(hd.line[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = br.ReadSlice('\n')
			hd.line = append(hd.line, line...)
		}
		line = hd.line
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine reads the version and the status code; the reason
// phrase is not used.
func (hd *respHead) parseStatusLine(line []byte) error {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return errMalformedStatus
	}
	proto, rest := line[:sp], bytes.TrimLeft(line[sp+1:], " ")
	if sp := bytes.IndexByte(rest, ' '); sp >= 0 {
		rest = rest[:sp]
	}
	if len(rest) != 3 {
		return errMalformedStatus
	}
	hd.status = 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			return errMalformedStatus
		}
		hd.status = hd.status*10 + int(c-'0')
	}
	if hd.status < 100 {
		return errMalformedStatus
	}
	switch {
	case string(proto) == "HTTP/1.1":
		hd.major, hd.minor = 1, 1
	case string(proto) == "HTTP/1.0":
		hd.major, hd.minor = 1, 0
	default:
		if len(proto) != len("HTTP/X.Y") || string(proto[:5]) != "HTTP/" || proto[6] != '.' ||
			!isDigit(proto[5]) || !isDigit(proto[7]) {
			return errMalformedStatus
		}
		hd.major, hd.minor = int(proto[5]-'0'), int(proto[7]-'0')
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// readFields reads header (or trailer) fields up to the empty line, as
// net/textproto's ReadMIMEHeader does: names are tokens (a name with a
// space is kept as it is), values hold no control bytes but tab, and a
// line starting with a space or tab continues the previous one.
func (hd *respHead) readFields(br *bufio.Reader) error {
	if b, err := br.Peek(1); err == nil && (b[0] == ' ' || b[0] == '\t') {
		return errMalformedHeader // nothing to continue
	}
	for {
		line, err := hd.readLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return errMalformedHeader
		}
		k0 := len(hd.raw)
		hd.raw = append(hd.raw, line[:colon]...)
		k1 := len(hd.raw)
		if !canonicalName(hd.raw[k0:k1]) {
			return errMalformedHeader
		}
		hd.raw = append(hd.raw, trimOWS(line[colon+1:])...)
		// Continuation lines (obs-fold) are joined with one space.
		for {
			b, err := br.Peek(1)
			if err != nil || (b[0] != ' ' && b[0] != '\t') {
				break
			}
			for err == nil && (b[0] == ' ' || b[0] == '\t') {
				br.Discard(1)
				b, err = br.Peek(1)
			}
			hd.raw = append(hd.raw, ' ')
			cont, err := hd.readLine(br)
			if err != nil {
				return err
			}
			hd.raw = append(hd.raw, trimOWS(cont)...)
		}
		v0 := k1
		for _, c := range hd.raw[v0:] {
			if c != '\t' && (c < ' ' || c == 0x7f) {
				return errMalformedHeader
			}
		}
		for v0 < len(hd.raw) && (hd.raw[v0] == ' ' || hd.raw[v0] == '\t') {
			v0++
		}
		hd.fields = append(hd.fields, fieldSpan{k0, k1, v0, len(hd.raw)})
	}
}

// canonicalName puts a field name in canonical form in place
// (content-type: Content-Type). It is false for an empty name or one with
// a byte that is neither a token byte nor a space; a name with a space is
// left as it is.
func canonicalName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	space := false
	for _, c := range b {
		if !isTokenByte(c) {
			if c != ' ' {
				return false
			}
			space = true
		}
	}
	if space {
		return true
	}
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	return true
}

// trimOWS trims spaces and tabs from both ends.
func trimOWS[T text](b T) T {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// frame decides the body's framing and the connection's fate, with
// net/http's checks: one Transfer-Encoding, chunked, on HTTP/1.1 (ignored
// on HTTP/1.0); Content-Lengths all equal and numeric; no framing field in
// Trailer. Transfer-Encoding wins over Content-Length.
func (hd *respHead) frame() error {
	major, minor := hd.major, hd.minor
	hasClose := hd.hasToken("Connection", "close")
	hd.dropConn = false
	switch {
	case major < 1:
		hd.close = true
	case major == 1 && minor == 0:
		hd.close = hasClose || !hd.hasToken("Connection", "keep-alive")
	default:
		hd.close, hd.dropConn = hasClose, hasClose
	}
	if major == 0 && minor == 0 {
		major, minor = 1, 1
	}

	hd.teChunked = false
	nTE, te := 0, -1
	hd.nCL = 0
	cl := -1
	for i := range hd.fields {
		switch name := hd.name(i); {
		case string(name) == "Transfer-Encoding":
			nTE, te = nTE+1, i
		case string(name) == "Content-Length":
			if cl < 0 {
				cl = i
			} else if !bytes.Equal(trimOWS(hd.value(i)), trimOWS(hd.value(cl))) {
				return errors.New("the app sent different Content-Lengths")
			}
			hd.nCL++
		}
	}
	if nTE > 0 && (major > 1 || major == 1 && minor >= 1) {
		if nTE != 1 || !equalFoldASCII(hd.value(te), "chunked") {
			return errors.New("unsupported Transfer-Encoding from the app")
		}
		hd.teChunked = true
	}
	n := int64(-1)
	if cl >= 0 {
		var ok bool
		if n, ok = parseLength(trimOWS(hd.value(cl))); !ok {
			return errors.New("bad Content-Length from the app")
		}
	}
	if hd.teChunked {
		for i := range hd.fields {
			if string(hd.name(i)) == "Trailer" && !validTrailer(hd.value(i)) {
				return errors.New("bad Trailer from the app")
			}
		}
	}

	bodyAllowed := !(hd.status >= 100 && hd.status < 200 || hd.status == 204 || hd.status == 304)
	switch {
	case !bodyAllowed:
		hd.length = 0
	case hd.teChunked:
		hd.length = -1
	case cl >= 0:
		hd.length = n
	default:
		hd.length = -1
		hd.close = true // the body ends with the connection
	}
	hd.chunked = hd.teChunked && bodyAllowed
	return nil
}

// hasToken reports whether a field called name lists token, as
// httpguts.HeaderValuesContainsToken does.
func (hd *respHead) hasToken(name, token string) bool {
	for i := range hd.fields {
		if string(hd.name(i)) != name {
			continue
		}
		for v := hd.value(i); ; {
			elem := v
			comma := bytes.IndexByte(v, ',')
			if comma >= 0 {
				elem, v = v[:comma], v[comma+1:]
			}
			if equalFoldASCII(trimOWS(elem), token) {
				return true
			}
			if comma < 0 {
				break
			}
		}
	}
	return false
}

// parseLength parses a Content-Length as strconv.ParseUint(s, 10, 63).
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) || n > (1<<63-1-int64(c-'0'))/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validTrailer reports whether a Trailer value names no framing field.
func validTrailer(v []byte) bool {
	for len(v) > 0 {
		elem := v
		if comma := bytes.IndexByte(v, ','); comma >= 0 {
			elem, v = v[:comma], v[comma+1:]
		} else {
			v = nil
		}
		for _, bad := range [...]string{"Transfer-Encoding", "Trailer", "Content-Length"} {
			if canonicalEquals(trimOWS(elem), bad) {
				return false
			}
		}
	}
	return true
}
