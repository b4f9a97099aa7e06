package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/propagation"

	"github.com/postern-dev/postern/proxy/signature"
)

// referenceHead is the request head and body as postern wrote them before
// outbound existed: a copy of the header map cleaned of hop-by-hop,
// Connection-named, Postern-*, underscore and signature headers, then
// X-Forwarded-*, the verified set and the propagator's headers, written by
// Client.writeRequest. FuzzOutboundHead holds outbound to it.
func referenceHead(f *forwarder, in *http.Request, body []byte, v verifiedHeaders, tracing bool, prop propagation.TextMapPropagator) ([]byte, error) {
	h := make(http.Header)
	for k, vs := range in.Header {
		if !strings.ContainsRune(k, '_') && !hasPrefixFold(k, "Postern-") {
			h[k] = vs
		}
	}
	for _, c := range in.Header["Connection"] {
		for name := range strings.SplitSeq(c, ",") {
			if name = http.CanonicalHeaderKey(strings.TrimSpace(name)); name != "Content-Type" {
				delete(h, name)
			}
		}
	}
	for _, k := range append(hopHeaders, "Expect", "Content-Length") {
		delete(h, k)
	}
	if tracing || len(h["Traceparent"]) != 1 {
		delete(h, "Traceparent")
		delete(h, "Tracestate")
	}
	for _, k := range signature.HeaderNames {
		delete(h, k)
	}
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 { // unless Connection named it
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h.Set("X-Forwarded-For", ip)
	}
	h.Set("X-Forwarded-Host", in.Host)
	h.Set("X-Forwarded-Proto", map[bool]string{false: "http", true: "https"}[in.TLS != nil])
	for k, val := range map[string]string{v.names[0]: v.id, v.names[1]: v.timestamp, v.names[2]: v.signature,
		"Postern-Verified": "true", "Postern-Event-Type": v.eventType, "Postern-Message-Id": v.id} {
		h[k] = []string{val}
	}
	if tracing {
		prop.Inject(context.Background(), propagation.HeaderCarrier(h))
	}
	out := &http.Request{Method: http.MethodPost, URL: f.targetURL(in.URL), Host: f.host(in), Header: h,
		ContentLength: int64(len(body)), Body: io.NopCloser(bytes.NewReader(body))}
	var buf bytes.Buffer
	err := writeRequest(bufio.NewWriter(&buf), out)
	breaksLine := func(r rune) bool { return r <= ' ' || r == 0x7f }
	if p, _, _ := strings.Cut(in.RequestURI, "?"); strings.HasPrefix(p, "/") && !strings.ContainsFunc(p, breaksLine) {
		// An origin-form path goes out as received, after the target's
		// path; url.URL's RequestURI re-escapes some from their decoded
		// form. (One with a space or a control character, which no
		// request line carries, is escaped.)
		if base := strings.TrimSuffix(f.target.EscapedPath(), "/"); base != "" {
			p = base + p
		}
		if q := out.URL.RawQuery; q != "" {
			p += "?" + q
		}
		line, rest, _ := bytes.Cut(buf.Bytes(), []byte(" HTTP/1.1\r\n"))
		if method, _, ok := bytes.Cut(line, []byte(" ")); ok {
			return slices.Concat(method, []byte(" "+p+" HTTP/1.1\r\n"), rest), err
		}
	}
	return buf.Bytes(), err
}

// head is a written request head taken apart: the request line, the Host
// line, each other field's values in order, and the body.
type head struct {
	Line, Host string
	Fields     map[string][]string
	Body       string
}

func parseHead(t *testing.T, raw []byte) head {
	t.Helper()
	text, body, ok := strings.Cut(string(raw), "\r\n\r\n")
	if !ok {
		t.Fatalf("no end of head in %q", raw)
	}
	lines := strings.Split(text, "\r\n")
	h := head{Line: lines[0], Fields: map[string][]string{}, Body: body}
	for i, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			t.Fatalf("malformed line %q in %q", l, raw)
		}
		if i == 0 && k == "Host" {
			h.Host = v
			continue
		}
		h.Fields[k] = append(h.Fields[k], v)
	}
	return h
}

// injector is a propagator that uses the whole carrier: it reads every key
// and sets traceparent, tracestate and a header that sums up what it read.
type injector struct{}

func (injector) Inject(_ context.Context, c propagation.TextMapCarrier) {
	keys := c.Keys()
	slices.Sort(keys)
	var seen []string
	for _, k := range keys {
		seen = append(seen, k+"="+c.Get(k))
	}
	c.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01")
	c.Set("tracestate", "postern=1")
	c.Set("X-Seen", strings.Join(seen, ";")+"|"+c.Get("x-forwarded-for")+"|"+c.Get("traceparent"))
}

func (injector) Extract(ctx context.Context, _ propagation.TextMapCarrier) context.Context {
	return ctx
}
func (injector) Fields() []string { return nil }

// FuzzOutboundHead holds the request head outbound writes to the one
// postern wrote before (referenceHead), for two arbitrary headers, a
// Connection header, the sender's address, TLS, tracing, the signature
// family, the path and query, and a target with or without a base path.
func FuzzOutboundHead(f *testing.F) {
	type seed struct {
		name1, value1, name2, value2, connection, remote string
		tls, tracing, webhook                            bool
		target                                           string
	}
	for _, s := range []seed{
		{"Postern-Verified", "false", "Svix_Id", "msg_evil", "Svix-Signature, Postern-Message-Id", "10.0.0.1:1234", false, false, false, "/hook"},
		{"Webhook-Id", "msg_evil", "X-Custom", "1", "X-Custom", "10.0.0.1:1234", false, false, false, "/hook?x=1"},
		{"Svix-Id", "msg_evil", "Upgrade", "websocket", "Upgrade, Content-Length", "[::1]:80", true, false, true, "/a%2Fb?y=2&z"},
		{"X-Forwarded-For", "6.6.6.6", "Te", "trailers", "close, X-Forwarded-For, Host", "10.0.0.1:1234", false, false, false, "//double"},
		{"Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "Tracestate", "a=b", "", "10.0.0.1:1234", false, false, false, "/"},
		{"Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "Tracestate", "a=b", "traceparent", "10.0.0.1:1234", false, false, false, "/"},
		{"traceparent", "lower-case key", "Tracestate", "a=b", "", "10.0.0.1:1234", false, true, false, "/"},
		{"Content-Type", "text/plain", "Postern-Event-Type", "X", "Content-Type, content-type, Postern-Event-Type", "no-port", false, false, false, "/hook"},
		{"X-Forwarded-For", "6.6.6.6", "Keep-Alive", "timeout=5", "keep-alive", "no-port", false, true, false, "/hook"},
		{"x-lower", "v", "X-Many", "v", "a,b,c,d,e,f,g,h,i,j,X-Many", "10.0.0.1:1234", false, false, false, "/hook"},
		{"X-Bad", "a\r\nInjected: 1", "X-Other", "1", "", "10.0.0.1:1234", false, false, false, "/hook"},
		{"Expect", "100-continue", "Host", "evil.example", ",", "10.0.0.1:1234", false, false, false, "base:/sub/path?q=1"},
		{"X-Forwarded-Host", "evil", "X-Forwarded-Proto", "https", "", "10.0.0.1:1234", true, true, true, "base:/"},
		{"X-A", "1", "X-B", "2", "", "10.0.0.1:1234", false, false, false, "/hooks/tenant%2Fa|b?x=%2F"},
		{"X-A", "1", "X-B", "2", "", "10.0.0.1:1234", false, false, false, "base:/x/%2e%2e/admin<"},
	} {
		f.Add(s.name1, s.value1, s.name2, s.value2, s.connection, s.remote, s.tls, s.tracing, s.webhook, s.target)
	}
	plain, _ := url.Parse("http://127.0.0.1:8080")
	based, _ := url.Parse("https://app.internal:8443/base/?k=v")
	sig := signed(testKey, "msg_fuzz", testNow, validBody)
	f.Fuzz(func(t *testing.T, name1, value1, name2, value2, connection, remote string, isTLS, tracing, webhook bool, target string) {
		for _, name := range []string{name1, name2} {
			if name == "" || strings.ContainsAny(name, ":\r\n") || strings.Contains(name, ": ") {
				return // parseHead could not take the head apart
			}
		}
		fw := &forwarder{target: plain}
		if rest, ok := strings.CutPrefix(target, "base:"); ok {
			fw, target = &forwarder{target: based}, rest
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		if !strings.HasPrefix(target, "/") && u.RawPath != "" && u.RawPath != u.EscapedPath() {
			return // absolute form with a path url.URL re-escapes: the reference cannot spell it
		}
		in := &http.Request{Method: http.MethodPost, URL: u, RequestURI: target, Host: "hooks.example", RemoteAddr: remote, Header: http.Header{}}
		for k, vs := range sig {
			in.Header[k] = vs
		}
		v := verifiedHeaders{names: [3]string{"Svix-Id", "Svix-Timestamp", "Svix-Signature"}, id: sig.Get("Svix-Id"),
			timestamp: sig.Get("Svix-Timestamp"), signature: sig.Get("Svix-Signature"), eventType: "REFERRAL_CREATED"}
		if webhook {
			v.names = [3]string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}
		}
		in.Header[name1] = append(in.Header[name1], value1)
		in.Header[name2] = append(in.Header[name2], value2)
		if connection != "" {
			in.Header["Connection"] = append(in.Header["Connection"], connection)
		}
		if isTLS {
			in.TLS = &tls.ConnectionState{}
		}
		body := []byte(validBody)

		want, wantErr := referenceHead(fw, in, body, v, tracing, injector{})
		o := outbound{f: fw, in: in, body: body, verified: v, tracing: tracing}
		o.prepare()
		if tracing {
			o.extra = &carrier{o: o}
			injector{}.Inject(context.Background(), o.extra)
		}
		var buf bytes.Buffer
		gotErr := o.write(bufio.NewWriter(&buf))
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("write error %v, want %v", gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		if diff := cmp.Diff(parseHead(t, want), parseHead(t, buf.Bytes())); diff != "" {
			t.Errorf("request head (-reference +outbound):\n%s", diff)
		}
	})
}

// TestDroppedHopHeaders: outbound's list of hop-by-hop names is hopHeaders.
func TestDroppedHopHeaders(t *testing.T) {
	o := outbound{in: &http.Request{Header: http.Header{}}}
	o.prepare()
	for _, k := range hopHeaders {
		if !o.dropped(k) {
			t.Errorf("%s is passed to the app", k)
		}
	}
}
