package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/postern-dev/postern/proxy/signature"
)

// verifiedHeaders are set on every forwarded request, replacing any the
// sender sent: the signature headers as received, and the Postern-* ones.
type verifiedHeaders struct {
	names                               [3]string // id, timestamp, signature
	id, timestamp, signature, eventType string
}

// get returns the value of the verified header name.
func (v *verifiedHeaders) get(name string) (string, bool) {
	switch name {
	case "Postern-Verified":
		return "true", true
	case "Postern-Event-Type":
		return v.eventType, true
	case "Postern-Message-Id", v.names[0]:
		return v.id, true
	case v.names[1]:
		return v.timestamp, true
	case v.names[2]:
		return v.signature, true
	}
	return "", false
}

// outbound is one request to the app, written straight from the sender's
// request with the rules applied line by line: the same path and query,
// the original headers minus hop-by-hop ones (and those Connection names,
// except Content-Type), Postern-*, underscore and signature headers, then
// X-Forwarded-*, the verified headers, and what the propagator injected.
type outbound struct {
	f        *forwarder
	in       *http.Request
	body     []byte
	verified verifiedHeaders
	tracing  bool
	extra    *carrier // headers the propagator set; nil without tracing

	ip        string // the sender's address for X-Forwarded-For
	hasIP     bool
	keepTrace bool      // the sender's traceparent and tracestate pass
	named     [8]string // names the sender's Connection header lists
	nNamed    int
	manyNamed bool // more than len(named): read Connection again
}

// prepare reads what the rules need from the sender's request.
func (o *outbound) prepare() {
	if ip, _, err := net.SplitHostPort(o.in.RemoteAddr); err == nil {
		o.ip, o.hasIP = ip, true
	}
	for _, c := range o.in.Header["Connection"] {
		for more := true; more && !o.manyNamed; {
			var name string
			name, c, more = strings.Cut(c, ",")
			if o.nNamed == len(o.named) {
				o.manyNamed = true
				break
			}
			o.named[o.nNamed] = strings.TrimSpace(name)
			o.nNamed++
		}
	}
	// With tracing on, the forward span's context replaces the sender's;
	// off, a well-formed single traceparent passes through, and a repeated
	// one (which W3C trace context makes invalid) is dropped.
	o.keepTrace = !o.tracing && len(o.in.Header["Traceparent"]) == 1 && !o.isNamed("Traceparent")
}

// isNamed reports whether the sender's Connection header lists k.
func (o *outbound) isNamed(k string) bool {
	if k == "Content-Type" { // the app needs it
		return false
	}
	if !o.manyNamed {
		for _, name := range o.named[:o.nNamed] {
			if canonicalEquals(name, k) {
				return true
			}
		}
		return false
	}
	for _, c := range o.in.Header["Connection"] {
		for name := range strings.SplitSeq(c, ",") {
			if canonicalEquals(strings.TrimSpace(name), k) {
				return true
			}
		}
	}
	return false
}

// dropped reports whether the sender's header k stays behind.
func (o *outbound) dropped(k string) bool {
	// Underscore names: some servers read svix_id as svix-id.
	if strings.IndexByte(k, '_') >= 0 || hasPrefixFold(k, "Postern-") {
		return true
	}
	if isHopHeader(k) {
		return true
	}
	switch k {
	case "Expect", // the body is already here
		"Content-Length", // set from the body
		"X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	case "X-Forwarded-For":
		if o.hasIP {
			return true
		}
	case "Traceparent", "Tracestate":
		if !o.keepTrace {
			return true
		}
	}
	// The signature headers go on only as the verified set: a stray
	// svix-id beside a verified webhook-* set (or the reverse) would reach
	// the app unverified, where it may serve as the idempotency key.
	for _, name := range signature.HeaderNames {
		if k == name {
			return true
		}
	}
	if _, ok := o.verified.get(k); ok || o.extra.has(k) {
		return true
	}
	return o.isNamed(k)
}

// priorForwardedFor is the sender's X-Forwarded-For, to which its address is
// appended; none when the sender's Connection header names it, which makes
// it hop-by-hop (RFC 9110, 7.6.1), as httputil.ReverseProxy has it.
func (o *outbound) priorForwardedFor() []string {
	if o.isNamed("X-Forwarded-For") {
		return nil
	}
	return o.in.Header["X-Forwarded-For"]
}

// forwardedProto is X-Forwarded-Proto.
func (o *outbound) forwardedProto() string {
	if o.in.TLS != nil {
		return "https"
	}
	return "http"
}

// write writes the request line, Host, the headers, Content-Length and
// the body, and flushes once.
func (o *outbound) write(w *bufio.Writer) error {
	f := o.f
	f.prepare()
	w.WriteString("POST ")
	f.writeTarget(w, o.in.URL)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	host := f.host(o.in)
	if host == "" {
		host = f.target.Host
	}
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vs := range o.in.Header {
		if o.dropped(k) {
			continue
		}
		for _, v := range vs {
			if err := writeField(w, k, v); err != nil {
				return err
			}
		}
	}
	if o.hasIP && !o.extra.has("X-Forwarded-For") {
		w.WriteString("X-Forwarded-For: ")
		for _, prior := range o.priorForwardedFor() {
			if !validHeaderValue(prior) {
				return errInvalidValue("X-Forwarded-For")
			}
			w.WriteString(prior)
			w.WriteString(", ")
		}
		if err := writeValue(w, "X-Forwarded-For", o.ip); err != nil {
			return err
		}
	}
	for _, k := range [...]string{"X-Forwarded-Host", "X-Forwarded-Proto", o.verified.names[0], o.verified.names[1],
		o.verified.names[2], "Postern-Verified", "Postern-Event-Type", "Postern-Message-Id"} {
		if v, ok := o.fixed(k); ok && !o.extra.has(k) {
			if err := writeField(w, k, v); err != nil {
				return err
			}
		}
	}
	if o.extra != nil {
		for _, h := range o.extra.fields {
			if err := writeField(w, h.name, h.value); err != nil {
				return err
			}
		}
	}
	w.WriteString("Content-Length: ")
	w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(o.body)), 10))
	w.WriteString("\r\n\r\n")
	w.Write(o.body)
	return w.Flush()
}

// fixed returns the value postern sets for k, if it sets one, other than
// X-Forwarded-For.
func (o *outbound) fixed(k string) (string, bool) {
	switch k {
	case "X-Forwarded-Host":
		return o.in.Host, true
	case "X-Forwarded-Proto":
		return o.forwardedProto(), true
	}
	return o.verified.get(k)
}

func writeField(w *bufio.Writer, k, v string) error {
	w.WriteString(k)
	w.WriteString(": ")
	return writeValue(w, k, v)
}

func writeValue(w *bufio.Writer, k, v string) error {
	if !validHeaderValue(v) {
		return errInvalidValue(k)
	}
	w.WriteString(v)
	w.WriteString("\r\n")
	return nil
}

func errInvalidValue(k string) error { return fmt.Errorf("invalid value for header %q", k) }

// text is a header name or value, as a string or as bytes.
type text interface{ ~string | ~[]byte }

// canonicalEquals reports whether http.CanonicalHeaderKey(t) == k, without
// allocating: a name with a byte that is not a token byte is left as it is.
func canonicalEquals[T text](t T, k string) bool {
	if len(t) != len(k) {
		return false
	}
	for i := 0; i < len(t); i++ {
		if !isTokenByte(t[i]) {
			return string(t) == k
		}
	}
	upper := true
	for i := 0; i < len(t); i++ {
		c := t[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != k[i] {
			return false
		}
		upper = c == '-'
	}
	return true
}

// equalFoldASCII reports whether t equals s, ignoring ASCII case.
func equalFoldASCII[T text](t T, s string) bool {
	if len(t) != len(s) {
		return false
	}
	for i := 0; i < len(t); i++ {
		a, b := t[i], s[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// isTokenByte reports whether c may appear in a header name (RFC 9110
// section 5.6.2).
func isTokenByte(c byte) bool {
	return c < 0x80 && tokenBytes[c]
}

var tokenBytes = func() (t [0x80]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
