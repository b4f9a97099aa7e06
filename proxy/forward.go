package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxResponseBytes is how much of the app's response body postern holds
// before answering, so that a response the app cuts off midway can still be
// turned into a 502 instead of reaching the sender as a 2xx.
const maxResponseBytes = 1 << 20

// Retry-After values, in seconds.
const (
	retryAfterUnavailable = 5
	retryAfterInFlight    = 10
	retryAfterDraining    = 5
)

// hopHeaders are removed from every forwarded request and response (RFC 9110
// section 7.6.1), together with any header the Connection header names.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// isHopHeader reports whether the canonical name k is one of hopHeaders.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// forwarder sends verified requests to the app.
type forwarder struct {
	target  *url.URL
	client  *Client
	timeout time.Duration
	resends prometheus.Counter // counts the second sends (nil: none)

	// What depends only on the target, worked out on first use.
	once     sync.Once
	loopback bool   // the target is on loopback
	plain    bool   // the target has no path, query or opaque part
	scheme   string // of the target
	addr     string // host:port to dial
}

// prepare works out what depends only on the target.
func (f *forwarder) prepare() {
	f.once.Do(func() {
		t := f.target
		ip := net.ParseIP(t.Hostname())
		f.loopback = (ip != nil && ip.IsLoopback()) || strings.EqualFold(t.Hostname(), "localhost")
		f.plain = t.Opaque == "" && (t.Path == "" || t.Path == "/") && t.RawQuery == "" && !t.ForceQuery
		f.scheme, f.addr = t.Scheme, hostPort(t)
	})
}

// host is the Host header for the app: the sender's for an app on loopback
// (the sidecar case, as oauth2-proxy's --pass-host-header), so that the app
// builds the URLs it always did; the upstream's own for a remote upstream,
// whose virtual hosting and TLS name expect it. X-Forwarded-Host carries the
// sender's in both cases.
func (f *forwarder) host(in *http.Request) string {
	f.prepare()
	if f.loopback {
		return in.Host
	}
	return f.target.Host
}

// targetURL is the app's URL for in: the same path (after the target's)
// and query.
func (f *forwarder) targetURL(in *url.URL) *url.URL {
	u := *f.target
	u.Path, u.RawPath = joinPath(f.target, in)
	u.RawQuery = in.RawQuery
	if f.target.RawQuery != "" && in.RawQuery != "" {
		u.RawQuery = f.target.RawQuery + "&" + in.RawQuery
	} else if f.target.RawQuery != "" {
		u.RawQuery = f.target.RawQuery
	}
	return &u
}

// writeTarget writes the request target for in: its path as received,
// after the target's path, and the two queries.
func (f *forwarder) writeTarget(w *bufio.Writer, in *url.URL) {
	p, query := receivedPath(in), in.RawQuery
	if !f.plain {
		u := f.targetURL(in)
		p, query = u.RawPath, u.RawQuery
		if p == "" {
			p = u.EscapedPath()
		}
	}
	if p == "" {
		p = "/"
	}
	w.WriteString(p)
	if query != "" {
		w.WriteByte('?')
		w.WriteString(query)
	}
}

// receivedPath is in's path as the request line spelled it. EscapedPath
// gives that only when it is a valid encoding: for a path with a
// character such as '|' it escapes the decoded path, and "%2F" in it
// becomes '/' (another path at the app). A raw path that could break the
// request line (a space or a control character, which the request line's
// parser already refuses) is escaped instead.
func receivedPath(in *url.URL) string {
	if in.RawPath != "" && !strings.ContainsFunc(in.RawPath, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return in.RawPath
	}
	return in.EscapedPath()
}

// spanRequest is the outbound request as the forward span describes it.
func (f *forwarder) spanRequest(in *http.Request) *http.Request {
	return &http.Request{Method: http.MethodPost, URL: f.targetURL(in.URL)}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// joinPath appends the request's path to the target's path.
func joinPath(target, in *url.URL) (path, rawPath string) {
	if target.Path == "" || target.Path == "/" {
		return in.Path, receivedPath(in)
	}
	tp := strings.TrimSuffix(target.EscapedPath(), "/")
	ip := receivedPath(in)
	if !strings.HasPrefix(ip, "/") {
		ip = "/" + ip
	}
	joined := tp + ip
	p, err := url.PathUnescape(joined)
	if err != nil {
		return strings.TrimSuffix(target.Path, "/") + in.Path, ""
	}
	return p, joined // as received, which may differ from p's default escaping
}

// send delivers o and reads the app's response, within the upstream
// timeout from start. A request that failed on a reused keep-alive connection before
// any response arrived is sent once more on a new connection: the app
// closed an idle connection just as postern picked it, and never saw the
// request complete.
func (f *forwarder) send(ctx context.Context, o *outbound, start time.Time) (*upstreamResponse, *Error) {
	f.prepare()
	deadline := start.Add(f.timeout)
	ur, reused, err := f.client.exchange(ctx, o, start, deadline, false)
	if err != nil && reused && !f.client.cut.Load() && time.Now().Before(deadline) && errors.Is(err, ErrNoResponse) {
		if f.resends != nil {
			f.resends.Inc()
		}
		ur, _, err = f.client.exchange(ctx, o, start, deadline, true)
	}
	if err != nil {
		if f.client.cut.Load() {
			if !errors.Is(err, errCut) {
				err = fmt.Errorf("%w: %w", errCut, err)
			}
			// Not a timeout of the app's, whatever the error says: the
			// same reason in the span, the metric and the audit record.
			return nil, &Error{Status: http.StatusBadGateway, Reason: ReasonUpstreamError,
				Detail: "postern stopped before the application answered", Err: err}
		}
		return nil, upstreamError(deadline, err)
	}
	return ur, nil
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// upstreamError maps a transport failure to the status contract.
func upstreamError(deadline time.Time, err error) *Error {
	var ne net.Error
	switch {
	case isRefused(err):
		return &Error{Status: http.StatusServiceUnavailable, Reason: ReasonUpstreamUnavailable,
			Detail: "the application is not accepting connections", RetryAfter: retryAfterUnavailable, Err: err}
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		// postern's own limit, not the app's fault.
		return &Error{Status: http.StatusServiceUnavailable, Reason: ReasonOverloaded,
			Detail: "postern is out of file descriptors; retry shortly", RetryAfter: retryAfterUnavailable, Err: err}
	case !time.Now().Before(deadline), errors.As(err, &ne) && ne.Timeout():
		return &Error{Status: http.StatusGatewayTimeout, Reason: ReasonUpstreamTimeout,
			Detail: "the application did not answer in time", Err: err}
	}
	return &Error{Status: http.StatusBadGateway, Reason: ReasonUpstreamError,
		Detail: "the application's response was broken or cut off", Err: err}
}

// writeResponse sends the app's answer back to the sender, minus hop-by-hop
// headers, with an explicit Content-Length when the whole body is held. It
// returns appErr when the app's answer broke midway, and senderErr when
// the sender could not take all of it (it hung up): the rest of the app's
// answer is then still read, so that an answer the app completed counts as
// taken, as it does when the body is held.
func writeResponse(w http.ResponseWriter, ur *upstreamResponse) (appErr, senderErr error) {
	h := w.Header()
	ah := &ur.header
	// The app's headers replace any set before. Usually none were: then
	// there is nothing to replace, and the hop-by-hop headers, which could
	// only come from the app, are left out as they are copied rather than
	// deleted after (a map deletion each).
	fresh := len(h) == 0
	if !fresh {
		for _, k := range ah.keys {
			delete(h, k)
		}
	}
	for i, k := range ah.keys {
		if fresh && isHopHeader(k) {
			continue
		}
		if vv, ok := h[k]; ok {
			h[k] = append(vv, ah.vals[i])
		} else {
			h[k] = ah.vals[i : i+1 : i+1]
		}
	}
	for i, k := range ah.keys {
		if k == "Connection" {
			deleteNamed(h, ah.vals[i])
		}
	}
	if !fresh {
		for _, k := range hopHeaders {
			delete(h, k)
		}
	}
	if ur.rest == nil {
		h["Content-Length"] = ah.length
		w.WriteHeader(ur.status)
		w.Write(ur.body) // a sender that hung up after the app answered retries; dedupe answers it
		return nil, nil
	}
	defer ur.rest.Close()
	w.WriteHeader(ur.status)
	sw := &senderWriter{w: w}
	sw.Write(ur.body)
	// The status is already sent; on error the caller aborts the connection
	// so the sender sees a broken response rather than a complete one.
	_, appErr = io.Copy(sw, ur.rest)
	return appErr, sw.err
}

// senderWriter writes to the sender until a write fails, and then takes
// the rest without writing it.
type senderWriter struct {
	w   io.Writer
	err error
}

func (s *senderWriter) Write(p []byte) (int, error) {
	if s.err == nil {
		_, s.err = s.w.Write(p)
	}
	return len(p), nil
}

// deleteNamed removes from h the headers a Connection value names, as
// h.Del(strings.TrimSpace(name)) for each, without allocating.
func deleteNamed(h http.Header, connection string) {
	for name := range strings.SplitSeq(connection, ",") {
		name = strings.TrimSpace(name)
		if canonicalEquals(name, name) { // already canonical
			delete(h, name)
			continue
		}
		for k := range h {
			if canonicalEquals(name, k) {
				delete(h, k)
			}
		}
	}
}
