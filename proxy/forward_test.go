package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestForwardedRequest checks what the app sees: the body byte-identical
// with an explicit length, path and query as received, verified headers set
// after hop-by-hop removal, spoofed and underscore headers gone.
func TestForwardedRequest(t *testing.T) {
	rg := newRig(t, nil, nil)
	h := signed(testKey, "msg_fwd", testNow, validBody)
	h.Set("Postern-Verified", "spoofed")
	h.Set("Postern-Event-Type", "SPOOFED")
	h["Svix_id"] = []string{"msg_spoof"}
	h.Set("X_forwarded_for", "6.6.6.6")
	h.Set("Connection", "Svix-Signature, Postern-Verified, X-Custom-Hop")
	h.Set("X-Custom-Hop", "hop")
	h.Set("X-Request-Id", "keep-me")
	h.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	got := rg.post(t, "/webhooks/a%2Fb?x=1&y=2", h, validBody)
	if got.Status != 204 {
		t.Fatalf("status %d %s, want 204", got.Status, got.Reason)
	}
	reqs := rg.app.requests()
	if len(reqs) != 1 {
		t.Fatalf("app received %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Body != validBody || r.ContentLength != int64(len(validBody)) {
		t.Errorf("app got body %q (length %d), want %q (length %d)", r.Body, r.ContentLength, validBody, len(validBody))
	}
	if r.Path != "/webhooks/a%2Fb" || r.Query != "x=1&y=2" {
		t.Errorf("app got path %q query %q, want /webhooks/a%%2Fb and x=1&y=2", r.Path, r.Query)
	}
	want := map[string]string{
		"Svix-Id":            "msg_fwd",
		"Svix-Timestamp":     h.Get("Svix-Timestamp"),
		"Svix-Signature":     h.Get("Svix-Signature"),
		"Postern-Verified":   "true",
		"Postern-Event-Type": "REFERRAL_CREATED",
		"Postern-Message-Id": "msg_fwd",
		"X-Request-Id":       "keep-me",
		"X-Forwarded-For":    "127.0.0.1",
		"X-Forwarded-Proto":  "http",
		"X-Custom-Hop":       "",
		"Connection":         "",
		"Svix_id":            "",
		"X_forwarded_for":    "",
		"Content-Type":       "application/json",
	}
	gotHeaders := map[string]string{}
	for k := range want {
		gotHeaders[k] = strings.Join(r.Header[k], ",")
	}
	if diff := cmp.Diff(want, gotHeaders); diff != "" {
		t.Errorf("app headers (-want +got):\n%s", diff)
	}
	if r.Header.Get("X-Forwarded-Host") != r.Host {
		t.Errorf("X-Forwarded-Host %q, want the original Host %q", r.Header.Get("X-Forwarded-Host"), r.Host)
	}
	if tp := r.Header.Get("Traceparent"); !strings.Contains(tp, "0af7651916cd43dd8448eb211c80319c") {
		t.Errorf("traceparent %q does not continue the sender's trace", tp)
	}
}

// TestResponsePassedBack checks that the app's status, headers and body
// reach the sender unchanged, hop-by-hop headers aside.
func TestResponsePassedBack(t *testing.T) {
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "yes")
		w.Header().Set("Webhook-Delivery", "disable") // the app's own choice, passed on
		w.Header().Set("Keep-Alive", "timeout=5")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"queued":true}`)
	}, nil)
	got := rg.post(t, "/", signed(testKey, "msg_1", testNow, validBody), validBody)
	if got.Status != 202 || got.Body != `{"queued":true}` || got.Header.Get("X-App") != "yes" || got.Header.Get("Webhook-Delivery") != "disable" {
		t.Errorf("got %d %q X-App=%q Webhook-Delivery=%q, want 202 {\"queued\":true} yes disable",
			got.Status, got.Body, got.Header.Get("X-App"), got.Header.Get("Webhook-Delivery"))
	}
	if got.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop Keep-Alive passed back: %q", got.Header.Get("Keep-Alive"))
	}
}

// TestLargeResponsePassedBack: answers larger than the engines' 4 KiB
// write buffers, in their body or their headers, reach the sender whole,
// and so does the next answer on the same connection; and so do answers
// over the 1 MiB the loop holds, which it streams (from 2 bytes over: the
// loop once waited for 64 KiB more before it streamed, and answered 504
// at the timeout in between).
func TestLargeResponsePassedBack(t *testing.T) {
	for _, size := range []int{3 << 10, 5 << 10, 100 << 10, 900 << 10, 1<<20 + 1, 1<<20 + 2, 1<<20 + 30<<10, 2 << 20} {
		for _, inHeader := range []bool{false, true} {
			if inHeader && size > 8<<10 {
				continue // past the sender's header limit
			}
			t.Run(fmt.Sprintf("%d header=%v", size, inHeader), func(t *testing.T) {
				big := strings.Repeat("b", size)
				rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
					if inHeader {
						w.Header().Set("X-Big", big)
						io.WriteString(w, "ok")
						return
					}
					io.WriteString(w, big)
				}, func(o *Options) { o.Now = nil }) // the real clock: an answer over 1 MiB is streamed with real deadlines
				for i := range 2 {
					id := fmt.Sprintf("msg_big%d", i)
					got := rg.post(t, "/", signed(testKey, id, time.Now(), validBody), validBody)
					wantBody, wantHeader := big, ""
					if inHeader {
						wantBody, wantHeader = "ok", big
					}
					if got.Status != 200 || got.Body != wantBody || got.Header.Get("X-Big") != wantHeader {
						t.Errorf("answer %d: got %d, %d body bytes, %d header bytes; want 200, %d, %d",
							i, got.Status, len(got.Body), len(got.Header.Get("X-Big")), len(wantBody), len(wantHeader))
					}
				}
			})
		}
	}
}

// TestUpstreamPath joins a base path in the upstream URL with the request path.
func TestUpstreamPath(t *testing.T) {
	rg := newRig(t, nil, func(o *Options) { o.Upstream.Path = "/base/"; o.Upstream.RawQuery = "k=v" })
	rg.post(t, "/hook?x=1", signed(testKey, "msg_1", testNow, validBody), validBody)
	reqs := rg.app.requests()
	if len(reqs) != 1 || reqs[0].Path != "/base/hook" || reqs[0].Query != "k=v&x=1" {
		t.Fatalf("app got %+v, want path /base/hook query k=v&x=1", reqs)
	}
}

// TestPathAsReceived: the request's path and query reach the app spelled as
// the sender spelled them, escapes included, also where Go's URL type
// would re-escape the path from its decoded form (a '|' beside "%2F").
func TestPathAsReceived(t *testing.T) {
	tests := []struct{ base, target, want string }{
		{"", "/hooks/tenant%2Fa|b", "/hooks/tenant%2Fa|b"},
		{"", "/x/%2e%2e/admin<", "/x/%2e%2e/admin<"},
		{"", "/a%2Fb?q=%2F|", "/a%2Fb?q=%2F|"},
		{"", "/caf\xc3\xa9/%7B%7d", "/caf\xc3\xa9/%7B%7d"},
		{"", "http://sender.example/p%2Fq|r?x=1", "/p%2Fq|r?x=1"},
		{"/base/", "/hooks/tenant%2Fa|b?x=1", "/base/hooks/tenant%2Fa|b?x=1"},
		{"/base", "/a%2Fb", "/base/a%2Fb"},
	}
	for _, tt := range tests {
		t.Run(tt.base+tt.target, func(t *testing.T) {
			rg := newRig(t, nil, func(o *Options) { o.Upstream.Path = tt.base })
			h := signed(testKey, "msg_path", testNow, validBody)
			raw := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nSvix-Id: msg_path\r\nSvix-Timestamp: %s\r\nSvix-Signature: %s\r\nContent-Length: %d\r\n\r\n%s",
				tt.target, h.Get("Svix-Timestamp"), h.Get("Svix-Signature"), len(validBody), validBody)
			answers := sendRaw(t, rg.proxy.URL, raw)
			if len(answers) != 1 || answers[0].Status != 204 {
				t.Fatalf("answers %+v, want one 204", answers)
			}
			reqs := rg.app.requests()
			if len(reqs) != 1 || reqs[0].Target != tt.want {
				t.Fatalf("app got %+v, want target %q", reqs, tt.want)
			}
		})
	}
}

// TestBodyReadFailed sends a body shorter than its Content-Length and hangs up.
func TestBodyReadFailed(t *testing.T) {
	rg := newRig(t, nil, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(rg.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := signed(testKey, "msg_1", testNow, validBody)
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nSvix-Id: %s\r\nSvix-Timestamp: %s\r\nSvix-Signature: %s\r\n\r\n%s",
		len(validBody)+10, h.Get("Svix-Id"), h.Get("Svix-Timestamp"), h.Get("Svix-Signature"), validBody)
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	got := toAnswer(resp, data)
	if got.Status != 400 || got.Reason != ReasonBodyReadFailed {
		t.Errorf("got %d %q, want 400 %s", got.Status, got.Reason, ReasonBodyReadFailed)
	}
	if n := len(rg.app.requests()); n != 0 {
		t.Errorf("app received %d requests, want 0", n)
	}
}

// TestChunkedBodyOverCap streams a body without Content-Length past the cap.
func TestChunkedBodyOverCap(t *testing.T) {
	rg := newRig(t, nil, func(o *Options) { o.MaxBodyBytes = 64 })
	body := strings.Repeat("x", 1000)
	req, _ := http.NewRequest(http.MethodPost, rg.proxy.URL, io.MultiReader(strings.NewReader(body)))
	req.ContentLength = -1 // chunked
	for k, v := range signed(testKey, "msg_1", testNow, body) {
		req.Header[k] = v
	}
	resp, err := rg.proxy.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := toAnswer(resp, data)
	if got.Status != 413 || got.Reason != ReasonBodyTooLarge {
		t.Errorf("got %d %q, want 413 %s", got.Status, got.Reason, ReasonBodyTooLarge)
	}
	if n := len(rg.app.requests()); n != 0 {
		t.Errorf("app received %d requests, want 0", n)
	}
}

// TestBodyBudget: when the bodies in flight would exceed the shared memory
// budget, the request is refused with 503 overloaded and Retry-After, and
// the budget is returned once requests finish.
func TestBodyBudget(t *testing.T) {
	rg := newRig(t, nil, nil)
	rg.handler.budget.max = 20 << 10
	big := validBody + strings.Repeat(" ", 30<<10) // JSON allows trailing whitespace
	got := rg.post(t, "/", signed(testKey, "msg_big", testNow, big), big)
	if got.Status != 503 || got.Reason != ReasonOverloaded || got.RetryAfter == "" {
		t.Errorf("got %d %q Retry-After %q, want 503 %s with Retry-After", got.Status, got.Reason, got.RetryAfter, ReasonOverloaded)
	}
	if n := len(rg.app.requests()); n != 0 {
		t.Errorf("app received %d requests, want 0", n)
	}
	if got := rg.post(t, "/", signed(testKey, "msg_small", testNow, validBody), validBody); got.Status != 204 {
		t.Errorf("small body after the refusal: got %d %q, want 204", got.Status, got.Reason)
	}
	if used := rg.handler.budget.used.Load(); used != 0 {
		t.Errorf("budget in use after all requests: %d, want 0", used)
	}
}

// TestHostHeader: an app on loopback gets the sender's Host; a remote one
// gets its own, and X-Forwarded-Host the sender's.
func TestHostHeader(t *testing.T) {
	in := &http.Request{Host: "hooks.example.com"}
	for _, tt := range []struct{ target, want string }{
		{"http://127.0.0.1:8080", "hooks.example.com"},
		{"http://localhost:8080", "hooks.example.com"},
		{"http://[::1]:8080", "hooks.example.com"},
		{"https://app.internal:8443", "app.internal:8443"},
	} {
		u, _ := url.Parse(tt.target)
		if got := (&forwarder{target: u}).host(in); got != tt.want {
			t.Errorf("%s: Host %q, want %q", tt.target, got, tt.want)
		}
	}
}

// TestForwardTLS forwards to an https app, which gets its own Host (it is
// not on loopback by name) and the sender's in X-Forwarded-Host; the
// connection is reused for the next delivery.
func TestForwardTLS(t *testing.T) {
	a := &app{handle: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "tls")
		w.WriteHeader(http.StatusAccepted)
	}}
	var conns atomic.Int64
	appSrv := httptest.NewUnstartedServer(a)
	appSrv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	appSrv.StartTLS()
	defer appSrv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(appSrv.Certificate())
	client := &Client{TLSConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"}}
	defer client.CloseIdleConnections()
	target := strings.Replace(appSrv.URL, "127.0.0.1", "app.test", 1) // a remote name
	h := newHandler(t, target, func(o *Options) { o.Client = client; o.Now = func() time.Time { return testNow } })
	h.fwd.prepare()
	h.fwd.addr = strings.TrimPrefix(appSrv.URL, "https://") // app.test resolves nowhere
	px := newFrontend(t, h)
	defer px.Close()
	rg := &rig{app: a, handler: h, proxy: px}
	for i := range 2 {
		got := rg.post(t, "/hook", signed(testKey, fmt.Sprintf("msg_tls_%d", i), testNow, validBody), validBody)
		if got.Status != http.StatusAccepted || got.Header.Get("X-App") != "tls" {
			t.Fatalf("delivery %d: got %d %q X-App=%q, want 202 from the app", i, got.Status, got.Reason, got.Header.Get("X-App"))
		}
	}
	reqs := a.requests()
	if len(reqs) != 2 || reqs[0].Host != strings.TrimPrefix(target, "https://") {
		t.Fatalf("app got %d requests, Host %q, want 2 with Host %q", len(reqs), reqs[0].Host, strings.TrimPrefix(target, "https://"))
	}
	if got := reqs[0].Header.Get("X-Forwarded-Host"); got != strings.TrimPrefix(px.URL, "http://") {
		t.Errorf("X-Forwarded-Host %q, want the sender's Host %q", got, strings.TrimPrefix(px.URL, "http://"))
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("app saw %d connections, want 1 (the second delivery reuses it)", n)
	}
}

// TestSenderGoneDoesNotCancelDelivery: a request whose context is already
// cancelled (the sender hung up) is still delivered, on a new connection
// and on a pooled one, with tracing off and on; the app's answer is
// recorded, so the sender's retry is answered as a duplicate.
func TestSenderGoneDoesNotCancelDelivery(t *testing.T) {
	for _, tracing := range []bool{false, true} {
		t.Run(fmt.Sprintf("tracing=%v", tracing), func(t *testing.T) {
			rg := newRig(t, nil, func(o *Options) {
				if tracing {
					o.Tracer = sdktrace.NewTracerProvider().Tracer("test")
				}
			})
			for i := range 2 { // a new connection, then the pooled one
				id := fmt.Sprintf("msg_gone_%d", i)
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/hook", strings.NewReader(validBody))
				for k, v := range signed(testKey, id, testNow, validBody) {
					req.Header[k] = v
				}
				rr := httptest.NewRecorder()
				rg.handler.ServeHTTP(rr, req)
				if rr.Code != http.StatusNoContent {
					t.Fatalf("%s: got %d %s, want the app's 204", id, rr.Code, rr.Body)
				}
				if retry := rg.post(t, "/hook", signed(testKey, id, testNow, validBody), validBody); retry.Status != http.StatusOK || retry.Body != `{"duplicate":true}` {
					t.Errorf("%s: retry got %d %q, want 200 duplicate", id, retry.Status, retry.Body)
				}
			}
			if n := len(rg.app.requests()); n != 2 {
				t.Errorf("app received %d requests, want 2", n)
			}
		})
	}
}

// TestSenderGoneDuringLargeAnswer: a sender that hangs up before the app
// answers with a body too large to hold (streamed) does not make the app's
// complete answer a failure: the webhook counts as taken, and the
// sender's retry is answered as a duplicate, not delivered again.
func TestSenderGoneDuringLargeAnswer(t *testing.T) {
	big := strings.Repeat("b", 2<<20)
	done := make(chan struct{}, 1)
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // the sender is gone by now
		io.WriteString(w, big)
		select {
		case done <- struct{}{}:
		default: // delivered again: the test fails on the app's count
		}
	}, nil)
	h := signed(testKey, "msg_gone_big", testNow, validBody)
	conn, err := net.Dial("tcp", strings.TrimPrefix(rg.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nSvix-Id: msg_gone_big\r\nSvix-Timestamp: %s\r\nSvix-Signature: %s\r\n\r\n%s",
		len(validBody), h.Get("Svix-Timestamp"), h.Get("Svix-Signature"), validBody)
	time.Sleep(100 * time.Millisecond)
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the app never answered")
	}
	var retry answer
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// 409 while postern still reads the rest of the app's answer
		retry = rg.post(t, "/hook", signed(testKey, "msg_gone_big", testNow, validBody), validBody)
		if retry.Status != http.StatusConflict || time.Now().After(deadline) {
			break
		}
	}
	if retry.Status != http.StatusOK || retry.Body != `{"duplicate":true}` {
		t.Errorf("retry got %d %q, want 200 duplicate", retry.Status, retry.Body)
	}
	if n := len(rg.app.requests()); n != 1 {
		t.Errorf("app received %d requests, want 1", n)
	}
}

// TestIsHopHeader keeps isHopHeader's switch and the hopHeaders list the
// same set.
func TestIsHopHeader(t *testing.T) {
	for _, k := range hopHeaders {
		if !isHopHeader(k) {
			t.Errorf("isHopHeader(%q) = false, want true (it is in hopHeaders)", k)
		}
	}
	for _, k := range []string{"Content-Type", "Date", "Set-Cookie", "Content-Length", "X-Connection"} {
		if isHopHeader(k) {
			t.Errorf("isHopHeader(%q) = true, want false", k)
		}
	}
}

// TestUpstreamErrorOutOfDescriptors: a dial that fails because postern
// has no file descriptor left is postern's overload (503 with
// Retry-After), not a broken answer from the app (502).
func TestUpstreamErrorOutOfDescriptors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE} {
		err := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", errno)}
		e := upstreamError(time.Now().Add(time.Second), err)
		if e.Status != http.StatusServiceUnavailable || e.Reason != ReasonOverloaded || e.RetryAfter == 0 {
			t.Errorf("%v: got %d %s Retry-After %v, want 503 %s with Retry-After", errno, e.Status, e.Reason, e.RetryAfter, ReasonOverloaded)
		}
	}
}
