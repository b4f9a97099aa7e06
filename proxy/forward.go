package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/postern-dev/postern/proxy/signature"
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

// forwarder sends verified requests to the app.
type forwarder struct {
	target  *url.URL
	client  *Client
	timeout time.Duration
}

// host is the Host header for the app: the sender's for an app on loopback
// (the sidecar case, as oauth2-proxy's --pass-host-header), so that the app
// builds the URLs it always did; the upstream's own for a remote upstream,
// whose virtual hosting and TLS name expect it. X-Forwarded-Host carries the
// sender's in both cases.
func (f *forwarder) host(in *http.Request) string {
	if ip := net.ParseIP(f.target.Hostname()); (ip != nil && ip.IsLoopback()) || strings.EqualFold(f.target.Hostname(), "localhost") {
		return in.Host
	}
	return f.target.Host
}

// upstreamResponse is the app's answer, with its body held in full (or, past
// maxResponseBytes, the head of it and the rest still to stream).
type upstreamResponse struct {
	status int
	header http.Header
	body   []byte
	rest   io.ReadCloser // non-nil when the body exceeded maxResponseBytes
}

// outbound builds the request to the app: the same path and query, the
// original headers minus hop-by-hop, spoofable and underscore headers, then
// X-Forwarded-*, and the verified headers set last.
func (f *forwarder) outbound(ctx context.Context, in *http.Request, body []byte, verified http.Header, tracing bool) *http.Request {
	u := *f.target
	u.Path, u.RawPath = joinPath(f.target, in.URL)
	u.RawQuery = in.URL.RawQuery
	if f.target.RawQuery != "" && in.URL.RawQuery != "" {
		u.RawQuery = f.target.RawQuery + "&" + in.URL.RawQuery
	} else if f.target.RawQuery != "" {
		u.RawQuery = f.target.RawQuery
	}
	out := &http.Request{
		Method:        http.MethodPost,
		URL:           &u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        cleanRequestHeader(in.Header, tracing),
		Host:          f.host(in),
		ContentLength: int64(len(body)),
		Body:          io.NopCloser(bytes.NewReader(body)),
		GetBody: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		},
	}
	out = out.WithContext(ctx)
	setForwarded(out.Header, in)
	for k, v := range verified {
		out.Header[k] = v
	}
	return out
}

// cleanRequestHeader copies h without hop-by-hop headers (and those named
// in Connection, except the ones postern sets again or the app needs),
// without any Postern-* header and without header names holding an
// underscore (which some servers read as a dash: svix_id as svix-id).
func cleanRequestHeader(h http.Header, tracing bool) http.Header {
	out := make(http.Header, len(h)+6)
	for k, v := range h {
		if strings.ContainsRune(k, '_') || hasPrefixFold(k, "Postern-") {
			continue
		}
		out[k] = v
	}
	for _, c := range h["Connection"] {
		for name := range strings.SplitSeq(c, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			if name != "Content-Type" {
				delete(out, name)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(out, k)
	}
	delete(out, "Expect")         // the body is already here
	delete(out, "Content-Length") // set from the body
	// With tracing on, the forward span's context replaces the sender's; off,
	// a well-formed single traceparent passes through, and a repeated one
	// (which W3C trace context makes invalid) is dropped.
	if tracing || len(out["Traceparent"]) != 1 {
		delete(out, "Traceparent")
		delete(out, "Tracestate")
	}
	// The signature headers go on only as the verified set, which the caller
	// sets again: a stray svix-id beside a verified webhook-* set (or the
	// reverse) would reach the app unverified, where it may serve as the
	// idempotency key.
	for _, k := range signature.HeaderNames {
		delete(out, k)
	}
	return out
}

func setForwarded(h http.Header, in *http.Request) {
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h.Set("X-Forwarded-For", ip)
	}
	h.Set("X-Forwarded-Host", in.Host)
	if in.TLS != nil {
		h.Set("X-Forwarded-Proto", "https")
	} else {
		h.Set("X-Forwarded-Proto", "http")
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// joinPath appends the request's path to the target's path.
func joinPath(target, in *url.URL) (path, rawPath string) {
	if target.Path == "" || target.Path == "/" {
		return in.Path, in.RawPath
	}
	tp := strings.TrimSuffix(target.EscapedPath(), "/")
	ip := in.EscapedPath()
	if !strings.HasPrefix(ip, "/") {
		ip = "/" + ip
	}
	joined := tp + ip
	p, err := url.PathUnescape(joined)
	if err != nil {
		return strings.TrimSuffix(target.Path, "/") + in.Path, ""
	}
	if p == joined {
		return p, ""
	}
	return p, joined
}

// send delivers out and reads the app's response. A request that failed on
// a reused keep-alive connection before any response arrived is sent once
// more on a new connection: the app closed an idle connection just as
// postern picked it, and never saw the request complete. Only a *Client
// reports such failures (ErrNoResponse); with another transport there is
// no resend.
func (f *forwarder) send(out *http.Request) (*upstreamResponse, *Error) {
	ctx, cancel := context.WithTimeout(out.Context(), f.timeout)
	defer cancel()
	req := out.WithContext(ctx)
	resp, reused, err := f.client.roundTrip(req, false)
	if err != nil && reused && ctx.Err() == nil && errors.Is(err, ErrNoResponse) {
		req.Body, _ = out.GetBody()
		resp, _, err = f.client.roundTrip(req, true)
	}
	if err != nil {
		return nil, upstreamError(ctx, err)
	}
	ur := &upstreamResponse{status: resp.StatusCode, header: resp.Header}
	ur.body, err = readUpTo(resp.Body, resp.ContentLength, maxResponseBytes)
	if err != nil {
		resp.Body.Close()
		return nil, upstreamError(ctx, err)
	}
	if len(ur.body) > maxResponseBytes {
		ur.rest = resp.Body // the caller streams the rest and closes it
		return ur, nil
	}
	resp.Body.Close()
	return ur, nil
}

// readUpTo reads r to the end, or up to limit+1 bytes.
func readUpTo(r io.Reader, contentLength int64, limit int) ([]byte, error) {
	size := 512
	if contentLength >= 0 && contentLength <= int64(limit) {
		size = int(contentLength) + 1 // +1 to see EOF without growing
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
	return buf.Bytes(), err
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// upstreamError maps a transport failure to the status contract.
func upstreamError(ctx context.Context, err error) *Error {
	var ne net.Error
	switch {
	case isRefused(err):
		return &Error{Status: http.StatusServiceUnavailable, Reason: ReasonUpstreamUnavailable,
			Detail: "the application is not accepting connections", RetryAfter: retryAfterUnavailable, Err: err}
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &Error{Status: http.StatusGatewayTimeout, Reason: ReasonUpstreamTimeout,
			Detail: "the application did not answer in time", Err: err}
	}
	return &Error{Status: http.StatusBadGateway, Reason: ReasonUpstreamError,
		Detail: "the application's response was broken or cut off", Err: err}
}

// writeResponse sends the app's answer back to the sender, minus hop-by-hop
// headers, with an explicit Content-Length when the whole body is held.
func writeResponse(w http.ResponseWriter, ur *upstreamResponse) error {
	h := w.Header()
	for k, v := range ur.header {
		h[k] = v
	}
	for _, c := range ur.header["Connection"] {
		for name := range strings.SplitSeq(c, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if ur.rest == nil {
		h["Content-Length"] = []string{strconv.Itoa(len(ur.body))}
		w.WriteHeader(ur.status)
		w.Write(ur.body) // a sender that hung up after the app answered retries; dedupe answers it
		return nil
	}
	defer ur.rest.Close()
	w.WriteHeader(ur.status)
	w.Write(ur.body)
	// The status is already sent; on error the caller aborts the connection
	// so the sender sees a broken response rather than a complete one.
	_, err := io.Copy(w, ur.rest)
	return err
}
