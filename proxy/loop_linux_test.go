//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/postern-dev/postern/proxy/jsonlog"
)

// loopRig is a rig whose frontend is the event loop whatever the test
// engine, with the loop at hand for its counters.
func loopRig(t *testing.T, handle http.HandlerFunc) (*rig, *Loop) {
	t.Helper()
	rg := newRig(t, handle, nil)
	l, ok := rg.proxy.srv.(*Loop)
	if !ok {
		// The goroutine-engine pass of the package's tests: start a
		// loop in front of the same handler.
		rg.proxy = newLoopFrontend(t, rg.handler)
		l = rg.proxy.srv.(*Loop)
	}
	return rg, l
}

// rawWebhook is validBody POSTed to /hook as id, signed with key, as it
// goes on the wire.
func rawWebhook(key []byte, id string) string { return rawWebhookBody(key, id, validBody) }

// rawWebhookBody is body POSTed to /hook as id, signed with key.
func rawWebhookBody(key []byte, id, body string) string {
	return rawWebhookSigned(signed(key, id, testNow, body), id, body)
}

// rawWebhookSigned is body POSTed to /hook as id with the signature
// headers h, as it goes on the wire.
func rawWebhookSigned(h http.Header, id, body string) string {
	return fmt.Sprintf("POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nSvix-Id: %s\r\nSvix-Timestamp: %s\r\nSvix-Signature: %s\r\n\r\n%s",
		len(body), id, h.Get("Svix-Timestamp"), h.Get("Svix-Signature"), body)
}

// handedOff is what the loop in front of h handed to the goroutine
// engine: postern_loop_handoffs_total, all kinds.
func handedOff(h *Handler) float64 {
	m := h.metrics
	return count(m.handoffRequest) + count(m.handoffSlow) + count(m.handoffAnswer)
}

// count is a counter's value.
func count(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

// newLoopFrontend serves h with the event loop whatever the test engine,
// and newGoroutineFrontend with the goroutine engine.
func newLoopFrontend(t *testing.T, h *Handler) *frontend {
	f := startFrontend(t, &Loop{Handler: h, Fallback: NewListener(h, h.opts.UpstreamTimeout, nil)})
	t.Cleanup(f.Close)
	return f
}

func newGoroutineFrontend(t *testing.T, h *Handler) *frontend {
	f := startFrontend(t, NewListener(h, h.opts.UpstreamTimeout, nil))
	t.Cleanup(f.Close)
	return f
}

// TestLoopServesTheCommonCase: a plain signed webhook, and what the checks
// refuse, are answered by the loop itself; a chunked one, and a request
// with Expect, are handed to the goroutine engine, which answers them as
// always. The app receives exactly the verified ones.
func TestLoopServesTheCommonCase(t *testing.T) {
	rg, l := loopRig(t, nil)
	if got := rg.post(t, "/hook", signed(testKey, "msg_l1", testNow, validBody), validBody); got.Status != 204 {
		t.Fatalf("signed webhook: got %d %q, want 204", got.Status, got.Reason)
	}
	if got := rg.post(t, "/hook", signed(otherKey, "msg_l2", testNow, validBody), validBody); got.Status != 401 || got.Reason != ReasonSignatureMismatch {
		t.Fatalf("forged webhook: got %d %q, want 401 %s", got.Status, got.Reason, ReasonSignatureMismatch)
	}
	if n, h := l.served.Load(), handedOff(rg.handler); n != 2 || h != 0 {
		t.Fatalf("after two plain requests: loop answered %d and handed over %v, want 2 and 0", n, h)
	}

	req, _ := http.NewRequest(http.MethodPost, rg.proxy.URL+"/hook", io.MultiReader(strings.NewReader(validBody)))
	req.ContentLength = -1 // chunked
	for k, v := range signed(testKey, "msg_l3", testNow, validBody) {
		req.Header[k] = v
	}
	resp, err := rg.proxy.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("chunked webhook: got %d, want 204", resp.StatusCode)
	}
	if h := handedOff(rg.handler); h != 1 {
		t.Fatalf("chunked webhook: %v connections handed over, want 1", h)
	}
	got := rg.app.requests()
	if len(got) != 2 || got[0].Header.Get("Svix-Id") != "msg_l1" || got[1].Header.Get("Svix-Id") != "msg_l3" {
		t.Fatalf("app received %d requests (%v), want msg_l1 and msg_l3", len(got), got)
	}
}

// TestLoopPipelined: requests sent back to back on one connection before
// any answer are answered in order, each after its own exchange.
func TestLoopPipelined(t *testing.T) {
	rg, _ := loopRig(t, nil)
	checkPipelined(t, rg, "msg_p")
	if h := handedOff(rg.handler); h != 0 {
		t.Errorf("%v connections handed over, want 0", h)
	}
}

// checkPipelined sends three webhooks back to back on one connection, the
// second forged, and requires 204, 401 and 204 in order, and the first and
// third (ids prefix1 and prefix3) at the app.
func checkPipelined(t *testing.T, rg *rig, prefix string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(rg.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var all strings.Builder
	keys := [][]byte{testKey, otherKey, testKey}
	for i, key := range keys {
		all.WriteString(rawWebhook(key, fmt.Sprint(prefix, i+1)))
	}
	if _, err := io.WriteString(conn, all.String()); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	for i, want := range []int{204, 401, 204} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != want {
			t.Errorf("answer %d: got %d, want %d", i, resp.StatusCode, want)
		}
	}
	got := rg.app.requests()
	if len(got) != 2 || got[0].Header.Get("Svix-Id") != prefix+"1" || got[1].Header.Get("Svix-Id") != prefix+"3" {
		t.Errorf("app received %d requests (%v), want %s1 and %s3", len(got), got, prefix, prefix)
	}
}

// sendInTwo sends msg to url on a new connection in two parts, all but
// its last 10 bytes, then between, then the rest, and returns the answer's
// status.
func sendInTwo(t *testing.T, url, msg string, between func()) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	half := len(msg) - 10
	io.WriteString(conn, msg[:half])
	between()
	io.WriteString(conn, msg[half:])
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLoopSlowSender: a request whose rest arrives later than the loop's
// patience is handed over with what was read, and answered whole.
func TestLoopSlowSender(t *testing.T) {
	rg, _ := loopRig(t, nil)
	if status := sendInTwo(t, rg.proxy.URL, rawWebhook(testKey, "msg_s1"), func() { time.Sleep(3 * loopPatience) }); status != 204 {
		t.Errorf("got %d, want 204", status)
	}
	if got := rg.app.requests(); len(got) != 1 || got[0].Header.Get("Svix-Id") != "msg_s1" {
		t.Errorf("app received %v, want msg_s1 once", got)
	}
	if n := count(rg.handler.metrics.handoffSlow); n != 1 || handedOff(rg.handler) != 1 {
		t.Errorf("%v connections handed over as slow (%v in all), want 1", n, handedOff(rg.handler))
	}
}

// TestLoopSlowSenderDuration: a request the loop hands over as slow counts
// its duration from when it began to arrive, not from the hand-over (the
// audit record and the duration histogram were short by the loop's
// patience).
func TestLoopSlowSenderDuration(t *testing.T) {
	var buf lockedBuffer
	rg := newRig(t, nil, func(o *Options) { o.Now = nil; o.Audit = slog.New(jsonlog.New(&buf, nil)) })
	if _, ok := rg.proxy.srv.(*Loop); !ok {
		rg.proxy = newLoopFrontend(t, rg.handler)
	}
	msg := rawWebhookSigned(signed(testKey, "msg_sl", time.Now(), validBody), "msg_sl", validBody)
	const wait = 3 * loopPatience
	if status := sendInTwo(t, rg.proxy.URL, msg, func() { time.Sleep(wait) }); status != 204 {
		t.Fatalf("got %d, want 204", status)
	}
	var rec struct {
		MsgID      string  `json:"msg_id"`
		DurationMS float64 `json:"duration_ms"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &rec); err != nil || rec.MsgID != "msg_sl" {
		t.Fatalf("audit record %q: %v", buf.String(), err)
	}
	// From the loop's first read of it, a few ms after the write under
	// load; from the hand-over it was loopPatience less.
	if least := wait - loopPatience/2; rec.DurationMS < float64(least/time.Millisecond) {
		t.Errorf("duration_ms %v, want at least %v of the %v the request took to arrive", rec.DurationMS, least, wait)
	}
}

// TestLoopSlowSenderDuringShutdown: a request still arriving when the drain
// begins, and handed over as slow after that, is answered, and Shutdown
// waits for it (the goroutine engine refused it as closing, and the sender
// got its connection closed without an answer).
func TestLoopSlowSenderDuringShutdown(t *testing.T) {
	rg, l := loopRig(t, nil)
	shut := make(chan error, 1)
	status := sendInTwo(t, rg.proxy.URL, rawWebhook(testKey, "msg_sd"), func() {
		time.Sleep(loopPatience / 4) // read by the loop, not yet handed over
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			shut <- l.Shutdown(ctx)
		}()
		time.Sleep(3 * loopPatience) // handed over after Shutdown began
	})
	if status != 204 {
		t.Errorf("got %d, want 204", status)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := count(rg.handler.metrics.handoffSlow); n != 1 {
		t.Errorf("%v connections handed over as slow, want 1", n)
	}
}

// TestLoopHandOffAfterReset: a sender that resets its connection midway
// through a body is handed to the goroutine engine (which answers an
// incomplete request) although the socket has no peer address left to ask
// for; postern keeps serving, and the partial request reaches nobody.
func TestLoopHandOffAfterReset(t *testing.T) {
	rg, _ := loopRig(t, nil)
	for range 3 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(rg.proxy.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
		time.Sleep(20 * time.Millisecond) // read by the loop before the reset
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for count(rg.handler.metrics.handoffRequest) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := count(rg.handler.metrics.handoffRequest); n != 3 {
		t.Fatalf("%v reset connections handed over, want 3", n)
	}
	time.Sleep(50 * time.Millisecond) // the goroutine engine takes them up
	got := rg.post(t, "/hook", signed(testKey, "msg_after_reset", testNow, validBody), validBody)
	if got.Status != 204 {
		t.Errorf("after the resets: got %d %s, want 204", got.Status, got.Reason)
	}
	if reqs := rg.app.requests(); len(reqs) != 1 || reqs[0].Header.Get("Svix-Id") != "msg_after_reset" {
		t.Errorf("app received %v, want msg_after_reset alone", reqs)
	}
}

// TestLoopFramesAsGoroutineEngine sends the same byte streams to the event
// loop and to the goroutine engine, each in front of its own app, and
// requires the same answers and the same requests at the app: the loop
// frames every request (where its head ends, how long its body is) exactly
// as the engine it hands the unusual ones to.
func TestLoopFramesAsGoroutineEngine(t *testing.T) {
	h := signed(testKey, "msg_f1", testNow, validBody)
	sig := fmt.Sprintf("Svix-Id: msg_f1\r\nSvix-Timestamp: %s\r\nSvix-Signature: %s\r\n", h.Get("Svix-Timestamp"), h.Get("Svix-Signature"))
	sigLF := strings.ReplaceAll(sig, "\r\n", "\n")
	hidden := "POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
	cl := fmt.Sprintf("Content-Length: %d", len(validBody))
	streams := map[string]string{
		"plain":                "POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + cl + "\r\n\r\n" + validBody,
		"LF line ends":         "POST /hook HTTP/1.1\nHost: x\n" + sigLF + cl + "\n\n" + validBody,
		"LF lines, CRLF end":   "POST /hook HTTP/1.1\nHost: x\n" + sigLF + cl + "\n\r\n" + validBody,
		"empty line in body":   "POST /hook HTTP/1.1\nHost: x\n" + sigLF + fmt.Sprintf("Content-Length: %d", len(validBody)+4) + "\n\r\n" + validBody + "\r\n\r\n",
		"smuggled after end":   "POST /hook HTTP/1.1\nHost: x\n" + sigLF + cl + "\n\r\nX: 1\r\n\r\n" + validBody + hidden,
		"pipelined":            "POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + cl + "\r\n\r\n" + validBody + hidden,
		"leading empty line":   "\r\nPOST /hook HTTP/1.1\r\nHost: x\r\n" + sig + cl + "\r\n\r\n" + validBody,
		"HTTP/1.0":             "POST /hook HTTP/1.0\r\nHost: x\r\n" + sig + cl + "\r\n\r\n" + validBody + hidden,
		"Connection: close":    "POST /hook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + sig + cl + "\r\n\r\n" + validBody + hidden,
		"absolute form":        "POST http://app.example/hook?x=1 HTTP/1.1\r\nHost: y\r\n" + sig + cl + "\r\n\r\n" + validBody,
		"no Host":              "POST /hook HTTP/1.1\r\n" + sig + cl + "\r\n\r\n" + validBody,
		"body shorter than CL": "POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("Content-Length: %d", len(validBody)+10) + "\r\n\r\n" + validBody,
		"GET":                  "GET /hook HTTP/1.1\r\nHost: x\r\n\r\n" + hidden,
		"Expect":               "POST /hook HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n" + sig + cl + "\r\n\r\n" + validBody,
		"bare CR":              "POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + "X-A: 1\r" + cl + "\r\n\r\n" + validBody + hidden,
		"folded header":        "POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + cl + "\r\n X-B: 2\r\n\r\n" + validBody + hidden,
	}
	type outcome struct {
		Answers  []string // status and reason
		Received []string // path, message id and body
	}
	run := func(t *testing.T, raw string, loop bool) outcome {
		rg := newRig(t, nil, nil)
		if loop {
			rg.proxy = newLoopFrontend(t, rg.handler)
		} else {
			rg.proxy = newGoroutineFrontend(t, rg.handler)
		}
		var o outcome
		for _, a := range sendRaw(t, rg.proxy.URL, raw) {
			o.Answers = append(o.Answers, fmt.Sprintf("%d %s", a.Status, a.Reason))
		}
		for _, r := range rg.app.requests() {
			o.Received = append(o.Received, fmt.Sprintf("%s %s %q", r.Path, r.Header.Get("Postern-Message-Id"), r.Body))
		}
		return o
	}
	for name, raw := range streams {
		t.Run(name, func(t *testing.T) {
			want := run(t, raw, false)
			got := run(t, raw, true)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the loop differs from the goroutine engine (-goroutine +loop):\n%s", diff)
			}
			for _, r := range got.Received {
				if strings.HasPrefix(r, "/smuggled") {
					t.Errorf("app received %s", r)
				}
			}
		})
	}
}

// BenchmarkLoop is the whole request path through the event loop: signed
// 1 KiB webhooks with distinct ids from parallel senders, verified,
// deduplicated, validated and forwarded to an app on loopback.
func BenchmarkLoop(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer upstream.Close()
	h := newHandler(b, upstream.URL, func(o *Options) { o.Now = time.Now })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	l := &Loop{Handler: h, Fallback: NewListener(h, h.opts.UpstreamTimeout, nil)}
	go l.Serve(ln)
	defer l.Close()
	target := "http://" + ln.Addr().String() + "/hook"
	client := &Client{}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	now := time.Now()
	b.SetBytes(int64(len(benchBody)))
	postInParallel(b, client, target, []byte(benchBody), func() http.Header {
		return signed(testKey, "msg_"+strconv.FormatInt(next.Add(1), 10), now, benchBody)
	})
	if handedOff(h) != 0 {
		b.Fatalf("%v connections handed over", handedOff(h))
	}
}

// TestLoopBounds: a request larger than the loop's buffer is handed over
// and delivered whole; requests pipelined past the buffer's bound are read
// in turns as the buffer empties, and all answered by the loop.
func TestLoopBounds(t *testing.T) {
	rg, _ := loopRig(t, nil)
	big := strings.Replace(validBody, `"status":"CREATED"}`, `"status":"CREATED","note":"`+strings.Repeat("x", 100<<10)+`"}`, 1)
	if got := rg.post(t, "/hook", signed(testKey, "msg_big", testNow, big), big); got.Status != 204 {
		t.Fatalf("100 KiB webhook: got %d %q, want 204", got.Status, got.Reason)
	}
	if n := handedOff(rg.handler); n != 1 {
		t.Fatalf("100 KiB webhook: %v connections handed over, want 1", n)
	}
	if got := rg.app.requests(); len(got) != 1 || got[0].Body != big {
		t.Fatalf("app received %d requests, want the 100 KiB one whole", len(got))
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(rg.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 3 * loopMaxRequest / 1024 // well past the buffer, 1 KiB or so each
	var all strings.Builder
	for i := range n {
		all.WriteString(rawWebhook(testKey, fmt.Sprintf("msg_pipe_%03d", i)))
	}
	go io.WriteString(conn, all.String())
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d of %d: %v", i, n, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 204 {
			t.Fatalf("answer %d: got %d, want 204", i, resp.StatusCode)
		}
	}
	if got := rg.app.requests(); len(got) != 1+n {
		t.Errorf("app received %d requests, want %d", len(got), 1+n)
	}
	if h := handedOff(rg.handler); h != 1 {
		t.Errorf("%v connections handed over, want only the 100 KiB one's", h)
	}
}

// TestLoopSupported: the loop serves a plain-HTTP app on loopback only; a
// TLS or remote app is left to the goroutine engine.
func TestLoopSupported(t *testing.T) {
	for upstream, want := range map[string]bool{
		"http://127.0.0.1:8080":   true,
		"http://[::1]:8080":       true,
		"http://localhost:8080":   true,
		"https://127.0.0.1:8443":  false,
		"http://app.example:8080": false,
		"http://10.0.0.7:8080":    false,
	} {
		if got := LoopSupported(newHandler(t, upstream, nil)); got != want {
			t.Errorf("LoopSupported(%s) = %v, want %v", upstream, got, want)
		}
	}
}

// TestLoopWorkersShareConnections: with several loops, connections are
// spread over them as they are accepted, each loop serves its own, and
// every request reaches the app once and is answered.
func TestLoopWorkersShareConnections(t *testing.T) {
	const workers, perWorker = 3, 2
	rg := newRig(t, nil, nil)
	f := startFrontend(t, &Loop{Handler: rg.handler, Fallback: NewListener(rg.handler, rg.handler.opts.UpstreamTimeout, nil), Workers: workers})
	t.Cleanup(f.Close)
	l := f.srv.(*Loop)

	// One connection at a time, each answered before the next is made:
	// they go round the loops.
	conns := make([]net.Conn, workers*perWorker)
	readers := make([]*bufio.Reader, len(conns))
	exchange := func(i int, id string) {
		if _, err := io.WriteString(conns[i], rawWebhook(testKey, id)); err != nil {
			t.Error(err)
			return
		}
		conns[i].SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(readers[i], nil)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 204 {
			t.Errorf("%s: got %d, want 204", id, resp.StatusCode)
		}
	}
	for i := range conns {
		c, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i], readers[i] = c, bufio.NewReader(c)
		exchange(i, fmt.Sprintf("msg_w%d", i))
	}
	var got []int32
	for _, w := range l.workers {
		got = append(got, w.senders.Load())
	}
	if diff := cmp.Diff([]int32{perWorker, perWorker, perWorker}, got); diff != "" {
		t.Errorf("sender connections per loop (-want +got):\n%s", diff)
	}

	// Then all at once, several requests each.
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			for k := range 5 {
				exchange(i, fmt.Sprintf("msg_w%d_%d", i, k))
			}
		})
	}
	wg.Wait()
	want := len(conns) * 6
	if n := l.served.Load(); n != int64(want) {
		t.Errorf("loops answered %d requests, want %d", n, want)
	}
	seen := map[string]int{}
	for _, r := range rg.app.requests() {
		seen[r.Header.Get("Svix-Id")]++
	}
	if len(seen) != want {
		t.Errorf("app received %d distinct ids, want %d", len(seen), want)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("app received %s %d times, want once", id, n)
		}
	}
}

// TestLoopBodyInPlace: the loop checks and forwards a body where it read
// it, in the connection's buffer. Bytes of the next request that arrive
// during the exchange do not disturb it, each body reaches the app as
// sent, and the body still counts against the budget: with no room, the
// loop refuses 503 overloaded and forwards nothing.
func TestLoopBodyInPlace(t *testing.T) {
	release := make(chan struct{})
	first := true
	var mu sync.Mutex
	rg, l := loopRig(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		wait := first
		first = false
		mu.Unlock()
		if wait {
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(rg.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bodies := []string{
		strings.Replace(validBody, "evt_1", "evt_A", 1) + strings.Repeat(" ", 7),
		strings.Replace(validBody, "evt_1", "evt_BB", 1),
	}
	if _, err := io.WriteString(conn, rawWebhookBody(testKey, "msg_h1", bodies[0])); err != nil {
		t.Fatal(err)
	}
	// The first is at the app (which holds it) before the second is sent.
	for deadline := time.Now().Add(5 * time.Second); len(rg.app.requests()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first webhook did not reach the app")
		}
	}
	if _, err := io.WriteString(conn, rawWebhookBody(testKey, "msg_h2", bodies[1])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the loop reads it into the same buffer
	close(release)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	for i := range bodies {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 204 {
			t.Errorf("answer %d: got %d, want 204", i, resp.StatusCode)
		}
	}
	var got []string
	for _, r := range rg.app.requests() {
		got = append(got, r.Body)
	}
	if diff := cmp.Diff(bodies, got); diff != "" {
		t.Errorf("bodies at the app (-sent +received):\n%s", diff)
	}

	rg.handler.budget.max = int64(len(validBody)) - 1
	if got := rg.post(t, "/hook", signed(testKey, "msg_h3", testNow, validBody), validBody); got.Status != 503 || got.Reason != ReasonOverloaded {
		t.Errorf("with no room in the budget: got %d %q, want 503 %s", got.Status, got.Reason, ReasonOverloaded)
	}
	if n := len(rg.app.requests()); n != 2 {
		t.Errorf("app received %d requests, want the 2 before", n)
	}
	if used := rg.handler.budget.used.Load(); used != 0 {
		t.Errorf("budget in use after all requests: %d, want 0", used)
	}
	if n, h := l.served.Load(), handedOff(rg.handler); n != 3 || h != 0 {
		t.Errorf("loop answered %d and handed over %v, want 3 and 0", n, h)
	}
}

// TestLoopAcceptOutOfDescriptors: when accepting fails for want of file
// descriptors, the loop keeps the connection waiting in the listen queue,
// says so in the log, and accepts and serves it once descriptors are free
// again, as net/http's accept loop does.
//
// It runs alone in a process of its own: a descriptor that another test's
// leftovers free meanwhile (a connection an app handler closes late, a
// finalizer) lets the accept succeed.
func TestLoopAcceptOutOfDescriptors(t *testing.T) {
	if os.Getenv("POSTERN_TEST_ALONE") == "" {
		runAlone(t)
		return
	}
	var logged lockedBuffer
	rg := newRig(t, nil, func(o *Options) { o.Log = slog.New(slog.NewTextHandler(&logged, nil)) })
	f := newLoopFrontend(t, rg.handler)
	l := f.srv.(*Loop)

	// Room for exactly one more descriptor: the test's own end of the
	// connection, so that the loop's accept fails.
	restore := fillDescriptors(t, 1)
	defer restore()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
	if err != nil {
		restore()
		t.Fatalf("dial with one descriptor left: %v", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, rawWebhook(testKey, "msg_fd1")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("answered while no descriptor was free")
	}
	restore()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("after descriptors were freed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Errorf("after descriptors were freed: got %d, want 204", resp.StatusCode)
	}
	if n := l.served.Load(); n != 1 {
		t.Errorf("loop answered %d requests, want 1", n)
	}
	if got := logged.String(); !strings.Contains(got, "accept failed; retrying in 100ms") || !strings.Contains(got, "too many open files") {
		t.Errorf("log does not tell of the failed accept:\n%s", got)
	}
}

// TestLoopEventTypeOutlivesBuffer: the event type, read out of a body that
// lives in the loop's connection buffer, keeps its value after the buffer
// is reused for the requests behind it: in the metric label of a schema
// violation and in the span attribute exported after the delivery.
func TestLoopEventTypeOutlivesBuffer(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	rg := newRig(t, nil, func(o *Options) { o.Tracer = tp.Tracer("test") })
	f := newLoopFrontend(t, rg.handler)

	violation := `{"eventType":"REFERRAL_CREATED","data":{"referralId":"r","customer_type":"INDIVIDUAL","status":"FAILED"}}`
	unknown := strings.Replace(validBody, "REFERRAL_CREATED", "ZZ_UNLISTED_TYPE", 1)
	answers := sendRaw(t, f.URL, rawWebhookBody(testKey, "msg_e1", violation)+rawWebhookBody(testKey, "msg_e2", unknown)+rawWebhook(testKey, "msg_e3"))
	var got []int
	for _, a := range answers {
		got = append(got, a.Status)
	}
	if diff := cmp.Diff([]int{422, 204, 204}, got); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}

	ch := make(chan prometheus.Metric, 8)
	rg.handler.metrics.violations.Collect(ch)
	close(ch)
	var labels []string
	for m := range ch {
		var d dto.Metric
		m.Write(&d)
		for _, l := range d.GetLabel() {
			labels = append(labels, l.GetValue())
		}
	}
	if diff := cmp.Diff([]string{"REFERRAL_CREATED"}, labels); diff != "" {
		t.Errorf("violation metric's event types (-want +got):\n%s", diff)
	}
	types := map[string]string{}
	for _, s := range sr.Ended() {
		a := attrsOf(s)
		if id, ok := a["postern.msg_id"]; ok && s.SpanKind() == trace.SpanKindServer {
			types[id] = a["postern.event_type"]
		}
	}
	want := map[string]string{"msg_e1": "REFERRAL_CREATED", "msg_e2": "ZZ_UNLISTED_TYPE", "msg_e3": "REFERRAL_CREATED"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("server spans' event types (-want +got):\n%s", diff)
	}
}

// strayApp answers every request 500 and, on demand, sends a 200 that
// nobody asked for on its first connection.
type strayApp struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	ids   []string // the message ids received, and on which connection
	wg    sync.WaitGroup
}

func startStrayApp(t *testing.T) *strayApp {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &strayApp{ln: ln}
	a.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			a.conns = append(a.conns, conn)
			n := len(a.conns)
			a.mu.Unlock()
			a.wg.Go(func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					a.mu.Lock()
					a.ids = append(a.ids, fmt.Sprintf("%s on %d", req.Header.Get("Svix-Id"), n))
					a.mu.Unlock()
					io.WriteString(conn, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		a.mu.Lock()
		for _, c := range a.conns {
			c.Close()
		}
		a.mu.Unlock()
		a.wg.Wait()
	})
	return a
}

// stray writes an unsolicited 200 on the app's first connection.
func (a *strayApp) stray(t *testing.T) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.conns) == 0 {
		t.Fatal("the app has no connection")
	}
	io.WriteString(a.conns[0], "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
}

// stallHandler is an audit handler that holds the loop, inside the audit
// record of the message ids in gates, until the gate is closed.
type stallHandler struct {
	reached chan string
	gates   map[string]chan struct{}
}

func (s *stallHandler) Enabled(context.Context, slog.Level) bool { return true }
func (s *stallHandler) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *stallHandler) WithGroup(string) slog.Handler            { return s }
func (s *stallHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "msg_id" {
			return true
		}
		if g, ok := s.gates[a.Value.String()]; ok {
			s.reached <- a.Value.String()
			<-g
		}
		return false
	})
	return nil
}

// TestLoopStrayBytesOnPickedConnection holds that bytes an app sends on a
// pooled connection after a round of the loop picked it for a request,
// but before that request was written, are never read as its answer. The
// loop is held in the audit record of a forged request (C) that arrived
// after the valid one (B) in the same round of events, so B has picked the
// app's idle connection and is not written yet when the app sends an
// unsolicited 200 on it. B must get the app's own answer, 500, from a new
// connection. (A peek at the pick, as the loop made before, let the 200
// through: it had looked before the bytes came.)
func TestLoopStrayBytesOnPickedConnection(t *testing.T) {
	app := startStrayApp(t)
	stall := &stallHandler{reached: make(chan string), gates: map[string]chan struct{}{
		"msg_stall1": make(chan struct{}), "msg_stall2": make(chan struct{}),
	}}
	h := newHandler(t, "http://"+app.ln.Addr().String(), func(o *Options) {
		o.Now = func() time.Time { return testNow }
		o.Audit = slog.New(stall)
	})
	// One loop, so that one round of events holds B and C, and one pool
	// the idle connection.
	f := startFrontend(t, &Loop{Handler: h, Fallback: NewListener(h, h.opts.UpstreamTimeout, nil), Workers: 1})
	t.Cleanup(f.Close)
	addr := strings.TrimPrefix(f.URL, "http://")
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	status := func(br *bufio.Reader) int {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading an answer: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	wrongKey := []byte("another key, not the sender's ..")

	// A leaves an idle connection in the loop's pool.
	ca, bra := dial()
	io.WriteString(ca, rawWebhook(testKey, "msg_a"))
	if got := status(bra); got != 500 {
		t.Fatalf("A: got %d, want the app's 500", got)
	}
	// The loop is held in S1's audit record while B, then C, arrive on
	// connections it has already accepted, so that the next round of
	// events has B's request first and C's second.
	cs, brs := dial()
	cb, brb := dial()
	cc, brc := dial()
	time.Sleep(50 * time.Millisecond)
	io.WriteString(cs, rawWebhook(wrongKey, "msg_stall1"))
	if got := <-stall.reached; got != "msg_stall1" {
		t.Fatalf("held in %s, want msg_stall1", got)
	}
	io.WriteString(cb, rawWebhook(testKey, "msg_b"))
	time.Sleep(30 * time.Millisecond)
	io.WriteString(cc, rawWebhook(wrongKey, "msg_stall2"))
	time.Sleep(30 * time.Millisecond)
	close(stall.gates["msg_stall1"])
	// One round: B picks the idle connection, then C holds the loop.
	if got := <-stall.reached; got != "msg_stall2" {
		t.Fatalf("held in %s, want msg_stall2", got)
	}
	app.stray(t)
	time.Sleep(30 * time.Millisecond)
	close(stall.gates["msg_stall2"])

	if got := status(brb); got != 500 {
		t.Errorf("B: got %d, want the app's 500 (the unsolicited 200 must not answer it)", got)
	}
	for name, br := range map[string]*bufio.Reader{"S1": brs, "C": brc} {
		if got := status(br); got != 401 {
			t.Errorf("%s: got %d, want 401", name, got)
		}
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	if diff := cmp.Diff([]string{"msg_a on 1", "msg_b on 2"}, app.ids); diff != "" {
		t.Errorf("what the app received (-want +got):\n%s", diff)
	}
}

// fillDescriptors takes every free descriptor but spare, with files held
// open and a lower limit, until the function it returns (which may be
// called more than once) gives them back. A new descriptor takes the
// lowest free number, so the gaps below the highest are filled first.
func fillDescriptors(t *testing.T, spare int) (restore func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	top := 0
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		top = max(top, n)
	}
	var held []*os.File
	restore = sync.OnceFunc(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
			t.Error(err)
		}
		for _, f := range held {
			f.Close()
		}
	})
	var last int
	for last < top {
		f, err := os.Open(os.DevNull)
		if err != nil {
			restore()
			t.Fatal(err)
		}
		held = append(held, f)
		last = int(f.Fd())
	}
	low := old
	low.Cur = uint64(last + 1 + spare)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		restore()
		t.Fatal(err)
	}
	return restore
}

// runAlone runs test t again in a child process, alone, through the same
// engine, and fails t with the child's output unless it passed there.
func runAlone(t *testing.T) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "POSTERN_TEST_ALONE=1", "POSTERN_TEST_ENGINE="+testEngine())
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("alone in a child process (%v):\n%s", err, out)
	}
}
