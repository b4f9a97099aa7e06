package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/postern-dev/postern/proxy/jsonlog"
	"github.com/postern-dev/postern/proxy/signature"
)

// These tests hold issue 6's promises under faults and load: nothing the app
// did not take is acknowledged, nothing forged reaches the app, and postern
// keeps serving. Each is bounded in time and runs on loopback only.

// ledger is what an app really took: the body of every message id it
// answered 2xx for, and how many times it did.
type ledger struct {
	mu         sync.Mutex
	bodies     map[string]string
	deliveries map[string]int
}

func newLedger() *ledger {
	return &ledger{bodies: map[string]string{}, deliveries: map[string]int{}}
}

// take records id as taken; call it before answering 2xx.
func (l *ledger) take(id, body string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bodies[id] = body
	l.deliveries[id]++
}

func (l *ledger) body(id string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.bodies[id]
	return b, ok
}

// duplicates returns the number of deliveries beyond the first, and the ids.
func (l *ledger) duplicates() (n int, ids map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.deliveries {
		n += d - 1
	}
	return n, l.deliveries
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.bodies)
}

// ledgerApp answers 204 after recording the verified message in l; a body
// it could not read completely is not taken.
func ledgerApp(l *ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Header.Get("Postern-Verified") != "true" {
			http.Error(w, "not taken", http.StatusBadRequest)
			return
		}
		l.take(r.Header.Get("Postern-Message-Id"), string(body))
		w.WriteHeader(http.StatusNoContent)
	}
}

// delayedWriter pauses up to half a millisecond before sending the status.
type delayedWriter struct{ http.ResponseWriter }

func (d delayedWriter) WriteHeader(status int) {
	time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
	d.ResponseWriter.WriteHeader(status)
}

// runServer runs h in a real Server (the production timeouts and header
// limit) on loopback and returns the listen address. The server drains when
// the test ends.
func runServer(t testing.TB, h *Handler) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	srv := &Server{
		Handler:         h,
		Admin:           http.NotFoundHandler(),
		ListenAddr:      "127.0.0.1:0",
		AdminAddr:       "127.0.0.1:0",
		UpstreamTimeout: h.opts.UpstreamTimeout,
		ShutdownTimeout: 5 * time.Second,
		Log:             h.opts.Log,
		OnListen:        func(listen, _ net.Addr) { addrs <- listen.String() },
	}
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Server.Run: %v", err)
		}
	})
	select {
	case addr := <-addrs:
		return addr
	case err := <-done:
		t.Fatalf("Server.Run: %v", err)
	}
	return ""
}

// eventBody is a valid REFERRAL_CREATED event for referral ref.
func eventBody(ref string) string {
	return `{"eventType":"REFERRAL_CREATED","eventId":"evt_` + ref + `","createdAt":"2026-11-26T10:00:00Z","data":{"referralId":"` +
		ref + `","customer_type":"INDIVIDUAL","status":"CREATED"}}`
}

// newClient returns a sender's client with its own keep-alive pool.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
		Timeout:   timeout,
	}
}

// send posts body with h and returns the status and the problem reason.
func send(client *http.Client, target string, h http.Header, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("reading the %d response: %w", resp.StatusCode, err)
	}
	a := toAnswer(resp, data)
	return a.Status, a.Reason, nil
}

// waitGoroutines polls until the goroutine count is back to baseline, and
// fails with a dump of the goroutines still running if it is not by the
// deadline.
func waitGoroutines(t *testing.T, baseline int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("%d goroutines after %s, want at most the baseline %d:\n%s", n, within, baseline, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusCounts counts outcomes by a short label, safely from many goroutines.
type statusCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (s *statusCounts) add(label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]int{}
	}
	s.m[label]++
}

func (s *statusCounts) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, s.m[k])
	}
	return strings.TrimSpace(b.String())
}

func outcomeLabel(status int, reason string, err error) string {
	if err != nil {
		return "transport_error"
	}
	if reason != "" {
		return strconv.Itoa(status) + "_" + reason
	}
	return strconv.Itoa(status)
}

// flappingApp is an app on a fixed loopback port that can be stopped (its
// listener and every open connection closed at once, as when a process
// dies) and started again on the same port.
type flappingApp struct {
	addr    string
	handler http.Handler
	mu      sync.Mutex
	srv     *http.Server
}

func (a *flappingApp) start() error {
	var ln net.Listener
	var err error
	for range 50 { // the port was just released; retry briefly
		if ln, err = net.Listen("tcp", a.addr); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.handler, ErrorLog: discardLogger()}
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
	go srv.Serve(ln)
	return nil
}

func (a *flappingApp) stop() {
	a.mu.Lock()
	srv := a.srv
	a.srv = nil
	a.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// TestFlappingAppRetryingSender is the retrying sender against an app that
// is stopped and started again every few hundred milliseconds: 32 senders
// deliver 5,000 distinct events, each retried with a fresh timestamp and
// signature until it is answered 2xx, as Svix does; one event in ten is a
// forgery of one of five kinds, sent one to three times. Every genuine event
// must be acknowledged, every acknowledged event must be in the app's
// ledger with its body, and no forgery may ever be acknowledged or reach it.
func TestFlappingAppRetryingSender(t *testing.T) {
	const (
		events  = 5000
		senders = 32
	)
	l := newLedger()
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	// The app takes a little time before and after taking a message, so that
	// some stops land between taking it and answering: those deliveries are
	// not acknowledged, the sender retries, and the app takes them twice.
	take := ledgerApp(l)
	fa := &flappingApp{addr: addr, handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
		take(delayedWriter{w}, r)
	})}
	if err := fa.start(); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, "http://"+addr, nil)
	px := newFrontend(t, h)
	defer px.Close()

	// The flapper: up for 60-160 ms, down for 30-130 ms.
	stopFlap := make(chan struct{})
	flapDone := make(chan int)
	go func() {
		restarts := 0
		defer func() { flapDone <- restarts }()
		for {
			select {
			case <-stopFlap:
				return
			case <-time.After(time.Duration(60+rand.IntN(100)) * time.Millisecond):
			}
			fa.stop()
			time.Sleep(time.Duration(30+rand.IntN(100)) * time.Millisecond) // paces the outage
			if err := fa.start(); err != nil {
				t.Errorf("restarting the app: %v", err)
				return
			}
			restarts++
		}
	}()
	defer fa.stop()

	deadline := time.Now().Add(40 * time.Second)
	var (
		genuine, acked, forgeries, attempts atomic.Int64
		outcomes                            statusCounts
		mu                                  sync.Mutex
		ackedIDs                            = map[string]string{}
	)
	work := make(chan int)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			client := newClient(5 * time.Second)
			defer client.CloseIdleConnections()
			for i := range work {
				if i%10 == 9 {
					forgeries.Add(1)
					forge(t, client, px.URL, i, &outcomes)
					continue
				}
				genuine.Add(1)
				id := fmt.Sprintf("msg_flap_%05d", i)
				body := eventBody(fmt.Sprintf("ref_%05d", i))
				for try := 0; ; try++ {
					if time.Now().After(deadline) {
						t.Errorf("%s not acknowledged after %d attempts before the deadline", id, try)
						break
					}
					attempts.Add(1)
					status, reason, err := send(client, px.URL+"/hook", signed(testKey, id, time.Now(), body), body)
					outcomes.add(outcomeLabel(status, reason, err))
					if err == nil && status >= 200 && status < 300 {
						acked.Add(1)
						mu.Lock()
						ackedIDs[id] = body
						mu.Unlock()
						break
					}
					// Backoff, much shorter than Svix's, with jitter.
					time.Sleep(time.Duration(min(2<<try, 40)+rand.IntN(5)) * time.Millisecond)
				}
			}
		})
	}
	// The events are spread over at least 1.2 s, so that however fast
	// postern answers, the app goes down several times (a cycle of the
	// flapper is at most 260 ms) while they are in flight.
	start := time.Now()
	for i := range events {
		if i%100 == 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * 1200 * time.Millisecond / time.Duration(events))))
		}
		work <- i
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	close(stopFlap)
	restarts := <-flapDone

	if got, want := acked.Load(), genuine.Load(); got != want {
		t.Errorf("acknowledged %d of %d genuine events", got, want)
	}
	for id, body := range ackedIDs {
		got, ok := l.body(id)
		if !ok {
			t.Errorf("%s was acknowledged but the app never took it", id)
		} else if got != body {
			t.Errorf("%s: app took body %q, want %q", id, got, body)
		}
	}
	dups, deliveries := l.duplicates()
	for id := range deliveries {
		if strings.Contains(id, "forged") {
			t.Errorf("forgery %s reached the app", id)
		}
		if _, ok := ackedIDs[id]; !ok {
			t.Errorf("app took %s, which no genuine sender sent", id)
		}
	}
	for id, body := range l.bodies {
		if strings.Contains(body, "forged") {
			t.Errorf("app took %s with a forged body %q", id, body)
		}
	}
	if restarts < 3 {
		t.Errorf("the app restarted %d times, want several during the run", restarts)
	}
	t.Logf("%d events (%d genuine, %d forgeries) in %s with %d restarts of the app; %d attempts for genuine events; "+
		"%d duplicate deliveries to the app; outcomes: %s",
		events, genuine.Load(), forgeries.Load(), elapsed.Round(time.Millisecond), restarts, attempts.Load(), dups, outcomes.String())
}

// forge sends forgery i one to three times; postern must never acknowledge
// it, and must reject it before forwarding (4xx, not a 5xx from the app's
// outage).
func forge(t *testing.T, client *http.Client, target string, i int, outcomes *statusCounts) {
	id := fmt.Sprintf("msg_forged_%05d", i)
	body := eventBody(fmt.Sprintf("forged_%05d", i))
	for n := range i%3 + 1 {
		now := time.Now()
		var h http.Header
		var kind string
		switch (i/10 + n) % 5 {
		case 0:
			kind, h = "wrong key", signed(otherKey, id, now, body)
		case 1:
			kind, h = "body tampered after signing", signed(testKey, id, now, eventBody(fmt.Sprintf("ref_%05d", i)))
		case 2:
			kind, h = "replayed outside the window", signed(testKey, id, now.Add(-10*time.Minute), body)
		case 3:
			kind, h = "signature of another id", signed(testKey, fmt.Sprintf("msg_flap_%05d", i-1), now, body)
			h.Set("Svix-Id", id)
		case 4:
			kind, h = "garbage signature", signed(testKey, id, now, body)
			h.Set("Svix-Signature", "v1,"+b64(bytes.Repeat([]byte{0x42}, 32)))
		}
		status, reason, err := send(client, target+"/hook", h, body)
		outcomes.add("forgery_" + outcomeLabel(status, reason, err))
		if err != nil {
			t.Errorf("forgery %s (%s): %v", id, kind, err)
			continue
		}
		if status != http.StatusUnauthorized {
			t.Errorf("forgery %s (%s): got %d %s, want 401", id, kind, status, reason)
		}
	}
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// TestAppHangs holds the timeout: an app that never answers costs the
// sender a 504 within the upstream timeout, and leaves nothing running.
func TestAppHangs(t *testing.T) {
	const timeout = 300 * time.Millisecond
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done(): // postern hung up
		case <-time.After(10 * time.Second):
		}
	}, func(o *Options) { o.UpstreamTimeout = timeout; o.Now = nil })
	baseline := runtime.NumGoroutine()

	const senders = 20
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			id := fmt.Sprintf("msg_hang_%d", i)
			start := time.Now()
			status, reason, err := send(rg.proxy.Client(), rg.proxy.URL+"/hook", signed(testKey, id, time.Now(), validBody), validBody)
			elapsed := time.Since(start)
			if err != nil || status != http.StatusGatewayTimeout || reason != ReasonUpstreamTimeout {
				t.Errorf("%s: got %d %q %v, want 504 %s", id, status, reason, err, ReasonUpstreamTimeout)
			}
			if elapsed < timeout || elapsed > timeout+time.Second {
				t.Errorf("%s: answered after %s, want just after the %s timeout", id, elapsed, timeout)
			}
		})
	}
	wg.Wait()
	if n := len(rg.app.requests()); n != senders {
		t.Errorf("app received %d requests, want %d", n, senders)
	}
	rg.proxy.Client().CloseIdleConnections()
	rg.handler.opts.Client.CloseIdleConnections()
	waitGoroutines(t, baseline, 5*time.Second)
}

// rawApp returns an app handler that answers with raw bytes on the
// hijacked connection and then ends it: with a FIN, with a RST (reset), or
// by stalling until postern hangs up (stall).
func rawApp(raw []byte, end string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		buf.Write(raw)
		buf.Flush()
		switch end {
		case "reset":
			conn.(*net.TCPConn).SetLinger(0)
		case "late reset": // after postern has read what was written
			time.Sleep(100 * time.Millisecond)
			conn.(*net.TCPConn).SetLinger(0)
		case "stall":
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, conn) // until postern closes the connection
		}
	}
}

// deliverOnce posts a signed event and reads the whole answer; complete is
// false when the answer broke off before its end.
func deliverOnce(client *http.Client, target, id string, body string) (status int, complete bool, err error) {
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	for k, v := range signed(testKey, id, time.Now(), body) {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err == nil, nil
}

// TestAppBreaksMidResponse holds "never acknowledge what the app did not
// take" when the app's answer breaks: reset before or after the status,
// cut off mid-body, stalled mid-body. Up to 1 MiB postern holds the body
// and answers 502 (504 for a stall); past that it has streamed the status
// already and must abort the connection so that the sender cannot read a
// complete 2xx. Either way the delivery is not remembered as acknowledged:
// the sender's retry reaches the app again.
func TestAppBreaksMidResponse(t *testing.T) {
	const big = 3 << 20
	head := func(status string, length int) []byte {
		return []byte(fmt.Sprintf("HTTP/1.1 %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", status, length))
	}
	chunked := func(n int) []byte {
		b := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range n / 4096 {
			b = fmt.Appendf(b, "1000\r\n%s\r\n", bytes.Repeat([]byte("c"), 4096))
		}
		return b // no last chunk
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name       string
		raw        []byte
		end        string
		wantStatus int    // what the sender reads, when it reads a status
		wantReason string // for held bodies
		streamed   bool   // past 1 MiB: the status is sent, the body must break
	}{
		{name: "reset after the status line", raw: []byte("HTTP/1.1 200 OK\r\n"), end: "reset",
			wantStatus: 502, wantReason: ReasonUpstreamError},
		{name: "closed after the headers", raw: head("200 OK", 10), end: "close",
			wantStatus: 502, wantReason: ReasonUpstreamError},
		{name: "reset mid-body", raw: cat(head("200 OK", 100), []byte("partial")), end: "reset",
			wantStatus: 502, wantReason: ReasonUpstreamError},
		{name: "no length, reset mid-body", raw: []byte("HTTP/1.1 200 OK\r\n\r\npartial"), end: "late reset",
			wantStatus: 502, wantReason: ReasonUpstreamError},
		{name: "no length, HTTP/1.0, reset mid-body", raw: []byte("HTTP/1.0 200 OK\r\n\r\npartial"), end: "late reset",
			wantStatus: 502, wantReason: ReasonUpstreamError},
		{name: "chunked without its last chunk", raw: chunked(8192), end: "close",
			wantStatus: 502, wantReason: ReasonUpstreamError},
		{name: "512 KiB of 600 KiB, then closed", raw: cat(head("200 OK", 600<<10), make([]byte, 512<<10)), end: "close",
			wantStatus: 502, wantReason: ReasonUpstreamError},
		{name: "stalls mid-body", raw: cat(head("200 OK", 100), []byte("partial")), end: "stall",
			wantStatus: 504, wantReason: ReasonUpstreamTimeout},
		{name: "large: 1.5 MiB of 3 MiB, then closed", raw: cat(head("200 OK", big), make([]byte, 3<<19)), end: "close",
			wantStatus: 200, streamed: true},
		{name: "large: 1.5 MiB of 3 MiB, then reset", raw: cat(head("200 OK", big), make([]byte, 3<<19)), end: "reset",
			wantStatus: 200, streamed: true},
		{name: "large: chunked 1.5 MiB without its last chunk", raw: chunked(3 << 19), end: "close",
			wantStatus: 200, streamed: true},
		{name: "large: 1.5 MiB of 3 MiB, then stalls", raw: cat(head("200 OK", big), make([]byte, 3<<19)), end: "stall",
			wantStatus: 200, streamed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRig(t, rawApp(tt.raw, tt.end), func(o *Options) { o.UpstreamTimeout = 500 * time.Millisecond; o.Now = nil })
			for attempt := range 2 { // the sender's retry must be forwarded again
				if tt.wantReason != "" {
					got := rg.post(t, "/hook", signed(testKey, "msg_broken", time.Now(), validBody), validBody)
					if got.Status != tt.wantStatus || got.Reason != tt.wantReason {
						t.Errorf("attempt %d: got %d %q (%s), want %d %s", attempt, got.Status, got.Reason, got.Detail, tt.wantStatus, tt.wantReason)
					}
				} else {
					status, complete, err := deliverOnce(rg.proxy.Client(), rg.proxy.URL+"/hook", "msg_broken", validBody)
					// A reset can reach postern before it has read the first
					// MiB: then it is a plain 502.
					if err == nil && status/100 == 2 && complete {
						t.Errorf("attempt %d: got a complete %d, want the %d cut off (or a 502)", attempt, status, tt.wantStatus)
					}
				}
				if n := len(rg.app.requests()); n != attempt+1 {
					t.Fatalf("attempt %d: app received %d requests, want %d (a broken answer is not an acknowledgement)", attempt, n, attempt+1)
				}
			}
		})
	}
	t.Run("large and complete is passed on whole", func(t *testing.T) {
		payload := bytes.Repeat([]byte("0123456789abcdef"), big/16)
		rg := newRig(t, rawApp(cat(head("200 OK", big), payload), "close"), func(o *Options) { o.Now = nil })
		got := rg.post(t, "/hook", signed(testKey, "msg_big", time.Now(), validBody), validBody)
		if got.Status != 200 || got.Body != string(payload) {
			t.Errorf("got %d with %d bytes, want 200 with the app's %d bytes", got.Status, len(got.Body), len(payload))
		}
	})
}

// oneShotApp is an HTTP/1.1 app on a raw listener that answers each
// connection's first request with 204 and no Connection: close, so postern
// keeps the connection for reuse, and then ends the connection: at once
// (mode "close"), or only when the next request starts to arrive, without
// answering it (mode "next": the app closed the idle connection just as
// postern reused it, and never took that request).
type oneShotApp struct {
	ln      net.Listener
	mode    string
	ledger  *ledger
	dropped atomic.Int64 // requests that met a connection the app was closing
	wg      sync.WaitGroup
}

func startOneShotApp(t *testing.T, mode string) *oneShotApp {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &oneShotApp{ln: ln, mode: mode, ledger: newLedger()}
	a.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			a.wg.Go(func() { a.serve(conn) })
		}
	})
	t.Cleanup(func() { ln.Close(); a.wg.Wait() })
	return a
}

func (a *oneShotApp) serve(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	a.ledger.take(req.Header.Get("Postern-Message-Id"), string(body))
	io.WriteString(conn, "HTTP/1.1 204 No Content\r\n\r\n")
	if a.mode == "next" {
		if _, err := br.Peek(1); err == nil { // the next request is arriving
			a.dropped.Add(1)
		}
	}
}

// TestKeepAliveRace holds that a request postern can resend never costs the
// sender a spurious 502: when a reused connection to the app fails before
// any byte of an answer, postern sends the request once more on a new
// connection. The app here ends every connection after one answer without
// saying so, so every reuse meets a closed connection, and with several
// senders the pool holds several such connections at once; every request
// must still succeed, and the app must take each exactly once.
func TestKeepAliveRace(t *testing.T) {
	for _, mode := range []string{"close", "next"} {
		for _, senders := range []int{1, 8} {
			t.Run(fmt.Sprintf("%s/%d senders", mode, senders), func(t *testing.T) {
				a := startOneShotApp(t, mode)
				h := newHandler(t, "http://"+a.ln.Addr().String(), nil)
				px := newFrontend(t, h)
				defer px.Close()
				defer h.opts.Client.CloseIdleConnections()
				const perSender = 40
				var wg sync.WaitGroup
				for s := range senders {
					wg.Go(func() {
						client := newClient(5 * time.Second)
						defer client.CloseIdleConnections()
						for i := range perSender {
							id := fmt.Sprintf("msg_ka_%d_%d", s, i)
							status, reason, err := send(client, px.URL+"/hook", signed(testKey, id, time.Now(), validBody), validBody)
							if err != nil || status != http.StatusNoContent {
								t.Errorf("%s: got %d %q %v, want 204", id, status, reason, err)
							}
						}
					})
				}
				wg.Wait()
				total := senders * perSender
				dups, _ := a.ledger.duplicates()
				if a.ledger.len() != total || dups != 0 {
					t.Errorf("app took %d distinct events with %d duplicates, want %d and 0", a.ledger.len(), dups, total)
				}
				var resends dto.Metric
				h.metrics.resends.Write(&resends)
				if mode == "next" {
					// Each request the app saw arrive on a connection it was
					// closing was sent again, and counted so.
					if got, want := resends.GetCounter().GetValue(), float64(a.dropped.Load()); got != want {
						t.Errorf("postern_upstream_resends_total = %v, want %v (requests the app dropped)", got, want)
					}
					t.Logf("%d requests, %d of them first sent on a connection the app was closing", total, a.dropped.Load())
				}
			})
		}
	}
}

// TestAppEndlessHeaders holds postern's memory against an app that sends
// response headers without end: postern must give up on them (502) without
// holding them all.
func TestAppEndlessHeaders(t *testing.T) {
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\n")
		line := []byte("X-Filler: " + strings.Repeat("f", 1000) + "\r\n")
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		for sent := 0; sent < 256<<20; sent += len(line) {
			if _, err := buf.Write(line); err != nil {
				return // postern hung up
			}
		}
		buf.Flush()
	}, func(o *Options) { o.UpstreamTimeout = 3 * time.Second; o.Now = nil })
	base := heapInuse()
	peak := watchHeap(t)
	got := rg.post(t, "/hook", signed(testKey, "msg_headers", time.Now(), validBody), validBody)
	if got.Status != http.StatusBadGateway || got.Reason != ReasonUpstreamError {
		t.Errorf("got %d %q (%s), want 502 %s", got.Status, got.Reason, got.Detail, ReasonUpstreamError)
	}
	if grew := peak() - base; grew > 32<<20 {
		t.Errorf("heap grew by %d MiB while the app sent headers, want a bounded header read", grew>>20)
	}
}

// heapInuse returns the heap in use after a collection.
func heapInuse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// watchHeap samples the heap in use every few milliseconds until the test
// ends; the returned function stops it and gives the peak.
func watchHeap(t *testing.T) (stop func() int64) {
	var peak atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if v := int64(ms.HeapInuse); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	stop = func() int64 {
		once.Do(func() { close(done); <-finished })
		return peak.Load()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestAppUnsolicitedResponse holds that bytes an app sends on an idle
// connection never become the answer to the next request: here the app
// answers a first request 500 and then, late, a second 200 nobody asked
// for; it answers every later request 500. No request may be acknowledged.
func TestAppUnsolicitedResponse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(conn)
				for first := true; ; first = false {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					io.WriteString(conn, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
					if first {
						time.Sleep(20 * time.Millisecond) // postern has pooled the connection
						io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
					}
				}
			})
		}
	})
	h := newHandler(t, "http://"+ln.Addr().String(), nil)
	px := newFrontend(t, h)
	defer px.Close()
	defer h.opts.Client.CloseIdleConnections()
	client := newClient(5 * time.Second)
	defer client.CloseIdleConnections()
	for i := range 3 {
		id := fmt.Sprintf("msg_unsolicited_%d", i)
		status, reason, err := send(client, px.URL+"/hook", signed(testKey, id, time.Now(), validBody), validBody)
		if err != nil || status/100 == 2 {
			t.Errorf("%s: got %d %q %v, want the app's 500 (or a 502), never a 2xx", id, status, reason, err)
		}
		time.Sleep(50 * time.Millisecond) // paces the app's late bytes
	}
}

// rawHeaders renders signed svix headers for a raw request.
func rawHeaders(h http.Header) string {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	return b.String()
}

// hostileConn is one hostile client: it sends head, then trickles a byte
// every interval until the server closes the connection, and reports when
// that happened and what the server answered, if anything.
func hostileConn(addr, head string, interval time.Duration, trickle string) (closedAfter time.Duration, answer string, err error) {
	start := time.Now()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head); err != nil {
		return 0, "", err
	}
	var got []byte
	buf := make([]byte, 4096)
	for time.Since(start) < 15*time.Second {
		conn.SetReadDeadline(time.Now().Add(interval))
		n, rerr := conn.Read(buf)
		got = append(got, buf[:n]...)
		var ne net.Error
		switch {
		case errors.As(rerr, &ne) && ne.Timeout():
			io.WriteString(conn, trickle) // a failed write shows as a failed read next
		case rerr != nil: // EOF or reset: the server hung up
			return time.Since(start), string(got), nil
		}
	}
	return time.Since(start), string(got), errors.New("still open after 15s")
}

// TestSlowClientsCutOff holds the server timeouts against slowloris (300
// connections trickling header lines) and slow bodies (50 requests with
// complete headers trickling their body): every connection is closed by
// ReadHeaderTimeout (3 s) or ReadTimeout (4 s), valid traffic is served
// meanwhile, nothing reaches the app, and the goroutines return to their
// baseline. The timeouts are constants, so this test takes about 4 s.
func TestSlowClientsCutOff(t *testing.T) {
	l := newLedger()
	app := httptest.NewServer(ledgerApp(l))
	defer app.Close()
	h := newHandler(t, app.URL, nil)
	addr := runServer(t, h)
	baseline := runtime.NumGoroutine()

	const (
		lorises = 300
		slow    = 50
		pace    = 200 * time.Millisecond
	)
	type result struct {
		kind   string
		after  time.Duration
		answer string
		err    error
	}
	results := make(chan result, lorises+slow)
	var wg sync.WaitGroup
	for i := range lorises {
		wg.Go(func() {
			head := fmt.Sprintf("POST /hook HTTP/1.1\r\nHost: postern\r\nX-Loris-%d: ", i)
			after, answer, err := hostileConn(addr, head, pace, "a")
			results <- result{"slowloris", after, answer, err}
		})
	}
	for i := range slow {
		wg.Go(func() {
			id := fmt.Sprintf("msg_slow_body_%d", i)
			head := fmt.Sprintf("POST /hook HTTP/1.1\r\nHost: postern\r\nContent-Length: %d\r\n%s\r\n",
				len(validBody), rawHeaders(signed(testKey, id, time.Now(), validBody)))
			after, answer, err := hostileConn(addr, head, pace, validBody[:1])
			results <- result{"slow body", after, answer, err}
		})
	}

	// Valid traffic is served while the connections hang on.
	time.Sleep(time.Second) // paces the valid request into the middle of the attack
	client := newClient(2 * time.Second)
	status, reason, err := send(client, "http://"+addr+"/hook", signed(testKey, "msg_valid", time.Now(), validBody), validBody)
	if err != nil || status != http.StatusNoContent {
		t.Errorf("valid request during the attack: got %d %q %v, want 204", status, reason, err)
	}
	client.CloseIdleConnections()

	wg.Wait()
	close(results)
	var worst = map[string]time.Duration{}
	for r := range results {
		limit := ReadHeaderTimeout
		if r.kind == "slow body" {
			limit = ReadTimeout
		}
		switch {
		case r.err != nil:
			t.Errorf("%s: %v", r.kind, r.err)
		case r.after > limit+2*time.Second:
			t.Errorf("%s: closed after %s, want within %s of the %s timeout", r.kind, r.after, 2*time.Second, limit)
		case r.kind == "slow body" && r.answer != "" && !strings.HasPrefix(r.answer, "HTTP/1.1 400 "):
			t.Errorf("slow body: answered %q, want nothing or 400 body_read_failed", r.answer)
		case r.kind == "slowloris" && r.answer != "":
			t.Errorf("slowloris: answered %q, want nothing", r.answer)
		}
		worst[r.kind] = max(worst[r.kind], r.after)
	}
	if n := l.len(); n != 1 {
		t.Errorf("app took %d events, want only the valid one", n)
	}
	t.Logf("last slowloris closed after %s, last slow body after %s", worst["slowloris"].Round(time.Millisecond), worst["slow body"].Round(time.Millisecond))
	h.opts.Client.CloseIdleConnections()
	waitGoroutines(t, baseline, 5*time.Second)
}

// TestForgeryFloodDoesNotStarveValid floods postern with forgeries at full
// speed from 8 connections while one sender delivers 50 genuine events one
// after another: every genuine event must be acknowledged promptly, and no
// forgery may reach the app.
func TestForgeryFloodDoesNotStarveValid(t *testing.T) {
	l := newLedger()
	app := httptest.NewServer(ledgerApp(l))
	defer app.Close()
	h := newHandler(t, app.URL, nil)
	addr := runServer(t, h)
	target := "http://" + addr + "/hook"

	stop := make(chan struct{})
	var flood atomic.Int64
	var wg sync.WaitGroup
	for f := range 8 {
		wg.Go(func() {
			client := newClient(5 * time.Second)
			defer client.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("msg_flood_%d_%d", f, i)
				body := eventBody("forged_" + id)
				status, reason, err := send(client, target, signed(otherKey, id, time.Now(), body), body)
				if err != nil || status != http.StatusUnauthorized {
					t.Errorf("forgery %s: got %d %q %v, want 401", id, status, reason, err)
					return
				}
				flood.Add(1)
			}
		})
	}

	const genuine = 50
	client := newClient(5 * time.Second)
	defer client.CloseIdleConnections()
	var slowest time.Duration
	start := time.Now()
	for i := range genuine {
		id := fmt.Sprintf("msg_amid_flood_%d", i)
		body := eventBody("ref_" + id)
		t0 := time.Now()
		status, reason, err := send(client, target, signed(testKey, id, time.Now(), body), body)
		slowest = max(slowest, time.Since(t0))
		if err != nil || status != http.StatusNoContent {
			t.Errorf("%s during the flood: got %d %q %v, want 204", id, status, reason, err)
		}
	}
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if slowest > 2*time.Second {
		t.Errorf("slowest genuine event took %s during the flood, want under 2s", slowest)
	}
	if flood.Load() < genuine {
		t.Errorf("only %d forgeries were sent while %d genuine events went through; the flood did not happen", flood.Load(), genuine)
	}
	if n := l.len(); n != genuine {
		t.Errorf("app took %d events, want the %d genuine ones", n, genuine)
	}
	t.Logf("%d genuine events in %s (slowest %s) amid %d forgeries (%.0f/s)",
		genuine, elapsed.Round(time.Millisecond), slowest.Round(time.Millisecond), flood.Load(), float64(flood.Load())/elapsed.Seconds())
}

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestOversizedRefusedWithoutMemoryGrowth sends, from 8 connections at a
// time, 50 requests each of: a declared 16 MiB body (refused on its
// Content-Length, 413), a 2 MiB chunked body (refused at the 1 MiB cap,
// 413), 2,000 header lines (~100 KiB) and one 100 KiB header (431 from the
// server's 64 KiB header limit). Nothing reaches the app and the heap stays
// bounded while it happens and after.
func TestOversizedRefusedWithoutMemoryGrowth(t *testing.T) {
	l := newLedger()
	app := httptest.NewServer(ledgerApp(l))
	defer app.Close()
	h := newHandler(t, app.URL, nil)
	addr := runServer(t, h)

	sig := rawHeaders(signed(testKey, "msg_oversized", time.Now(), validBody))
	declared := "POST /hook HTTP/1.1\r\nHost: postern\r\nContent-Length: 16777216\r\n" + sig + "\r\n" + strings.Repeat("x", 16<<10)
	var many strings.Builder
	many.WriteString("POST /hook HTTP/1.1\r\nHost: postern\r\n" + sig)
	for i := range 2000 {
		fmt.Fprintf(&many, "X-Flood-%04d: %s\r\n", i, strings.Repeat("h", 36))
	}
	manyHeaders := many.String() + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(validBody), validBody)
	oneHeader := "POST /hook HTTP/1.1\r\nHost: postern\r\n" + sig + "X-Big: " + strings.Repeat("b", 100<<10) +
		fmt.Sprintf("\r\nContent-Length: %d\r\n\r\n%s", len(validBody), validBody)

	// rawStatus writes req while reading the answer, and returns its status.
	rawStatus := func(req string) (int, error) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		go io.WriteString(conn, req)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, err
		}
		// Not resp.Body.Close(): it would read to the end, which the server
		// only marks after its 500 ms RST-avoidance delay.
		return resp.StatusCode, nil
	}
	chunkedStatus := func(client *http.Client) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/hook", io.LimitReader(zeros{}, 2<<20))
		req.ContentLength = -1
		for k, v := range signed(testKey, "msg_chunked", time.Now(), validBody) {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	base := heapInuse()
	peak := watchHeap(t)
	var outcomes statusCounts
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			client := newClient(10 * time.Second)
			defer client.CloseIdleConnections()
			for kind := range work {
				var status int
				var err error
				want := http.StatusRequestEntityTooLarge
				switch kind {
				case "declared":
					status, err = rawStatus(declared)
				case "chunked":
					status, err = chunkedStatus(client)
				case "many headers":
					status, err = rawStatus(manyHeaders)
					want = http.StatusRequestHeaderFieldsTooLarge
				case "one header":
					status, err = rawStatus(oneHeader)
					want = http.StatusRequestHeaderFieldsTooLarge
				}
				outcomes.add(kind + "_" + outcomeLabel(status, "", err))
				// The chunked sender may still be writing when postern
				// hangs up after its 413: a broken pipe is a refusal too.
				if (err != nil && kind != "chunked") || (err == nil && status != want) {
					t.Errorf("%s: got %d %v, want %d", kind, status, err, want)
				}
			}
		})
	}
	for range 50 {
		for _, kind := range []string{"declared", "chunked", "many headers", "one header"} {
			work <- kind
		}
	}
	close(work)
	wg.Wait()
	top := peak()
	after := heapInuse()
	if n := l.len(); n != 0 {
		t.Errorf("app took %d events, want none", n)
	}
	t.Logf("heap in use: %d MiB before, %d MiB at the peak, %d MiB after; outcomes: %s", base>>20, top>>20, after>>20, outcomes.String())
	if grew := top - base; grew > 64<<20 {
		t.Errorf("heap grew by %d MiB at the peak, want under 64 MiB", grew>>20)
	}
	if grew := after - base; grew > 8<<20 {
		t.Errorf("heap grew by %d MiB and stayed, want under 8 MiB", grew>>20)
	}
}

// TestHeaderTricks extends TestForwardedRequest and TestStatusContract with
// header tricks sent raw, as a hostile client can: case-variant duplicates,
// repeated spoofs, Connection naming the verified and framing headers,
// strays of the other signature family, smuggling framings. A trick is
// either refused before the app, or the app sees exactly the verified
// headers (one value each), the signed body with its own length, and none
// of the tricks.
func TestHeaderTricks(t *testing.T) {
	ts := time.Now()
	sig := signed(testKey, "msg_trick", ts, validBody)
	svix := "Svix-Id: msg_trick\r\nSvix-Timestamp: " + sig.Get("Svix-Timestamp") + "\r\nSvix-Signature: " + sig.Get("Svix-Signature") + "\r\n"
	webhook := "Webhook-Id: msg_trick\r\nWebhook-Timestamp: " + sig.Get("Svix-Timestamp") + "\r\nWebhook-Signature: " + sig.Get("Svix-Signature") + "\r\n"
	framing := fmt.Sprintf("Content-Length: %d\r\n", len(validBody))
	chunkedBody := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(validBody), validBody)
	tests := []struct {
		name       string
		headers    string // after the request line and Host
		body       string // default validBody
		wantStatus int
		wantReason string
		family     string            // the verified family: "svix" (default) or "webhook"
		wantAlso   map[string]string // further headers the app must see ("" = absent)
	}{
		{name: "signature header twice in different cases",
			headers: svix + "SVIX-ID: msg_other\r\n" + framing, wantStatus: 400, wantReason: ReasonMalformedHeaders},
		{name: "signature timestamp twice with the same value",
			headers: svix + "svix-timestamp: " + sig.Get("Svix-Timestamp") + "\r\n" + framing, wantStatus: 400, wantReason: ReasonMalformedHeaders},
		{name: "Postern headers spoofed in several spellings and repeated",
			headers: svix + "postern-verified: false\r\nPOSTERN-VERIFIED: no\r\nPostern-Event-Type: X\r\nPostern-Event-Type: Y\r\n" +
				"Postern-Message-Id: msg_evil\r\nPostern-Anything: 1\r\n" + framing,
			wantStatus: 204, wantAlso: map[string]string{"Postern-Anything": ""}},
		{name: "Connection names every verified header, the framing and Content-Type",
			headers: svix + "Connection: Svix-Id, svix-timestamp, SVIX-SIGNATURE, Postern-Verified, Postern-Message-Id, Content-Length, Content-Type\r\n" +
				"Content-Type: application/json\r\n" + framing,
			wantStatus: 204, wantAlso: map[string]string{"Content-Type": "application/json", "Connection": ""}},
		{name: "Connection: keep-alive, Upgrade with an Upgrade header",
			headers:    svix + "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nKeep-Alive: timeout=5\r\n" + framing,
			wantStatus: 204, wantAlso: map[string]string{"Upgrade": "", "Keep-Alive": "", "Connection": ""}},
		{name: "Connection names X-Forwarded-For and Host",
			headers:    svix + "Connection: X-Forwarded-For, Host\r\nX-Forwarded-For: 6.6.6.6\r\n" + framing,
			wantStatus: 204, wantAlso: map[string]string{"X-Forwarded-For": "127.0.0.1"}}, // the named one is hop-by-hop
		{name: "underscore spellings beside the real headers",
			headers:    svix + "Svix_Id: msg_evil\r\nsvix_signature: v1,AAAA\r\nPostern_Verified: true\r\nContent_Length: 1\r\n" + framing,
			wantStatus: 204, wantAlso: map[string]string{"Svix_id": "", "Svix_signature": "", "Postern_verified": "", "Content_length": ""}},
		{name: "proxy and hop-by-hop headers",
			headers:    svix + "Proxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\nTe: trailers\r\nTrailer: X-T\r\nExpect: 100-continue\r\n" + framing,
			wantStatus: 204, wantAlso: map[string]string{"Proxy-Authorization": "", "Proxy-Connection": "", "Te": "", "Trailer": "", "Expect": ""}},
		{name: "X-Forwarded-Proto and X-Forwarded-Host spoofed",
			headers:    svix + "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n" + framing,
			wantStatus: 204, wantAlso: map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Host": "postern.test"}},
		{name: "a stray webhook-id beside the verified svix set",
			headers:    svix + "Webhook-Id: msg_evil\r\n" + framing,
			wantStatus: 204, wantAlso: map[string]string{"Webhook-Id": ""}},
		{name: "a stray svix-id beside the verified webhook set",
			headers: webhook + "Svix-Id: msg_evil\r\n" + framing, family: "webhook",
			wantStatus: 204, wantAlso: map[string]string{"Svix-Id": ""}},
		{name: "both sets complete, the webhook set forged",
			headers:    svix + "Webhook-Id: msg_evil\r\nWebhook-Timestamp: 1\r\nWebhook-Signature: v1,AAAA\r\n" + framing,
			wantStatus: 204, wantAlso: map[string]string{"Webhook-Id": "", "Webhook-Timestamp": "", "Webhook-Signature": ""}},
		{name: "chunked with a Content-Length", // two framings: refused, whichever a parser would pick
			headers: svix + "Transfer-Encoding: chunked\r\n" + framing, body: chunkedBody, wantStatus: 400, wantReason: ReasonMalformedRequest},
		{name: "chunked", headers: svix + "Transfer-Encoding: chunked\r\n", body: chunkedBody, wantStatus: 204},
		{name: "two different Content-Lengths",
			headers: svix + framing + "Content-Length: 3\r\n", wantStatus: 400, wantReason: ReasonMalformedRequest},
		{name: "obs-fold continuing the id",
			headers:    svix[:len("Svix-Id: msg_trick")] + "\r\n x" + svix[len("Svix-Id: msg_trick"):] + framing,
			wantStatus: 400, wantReason: ReasonMalformedRequest},
		{name: "a traceparent twice",
			headers:    svix + "Traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nTraceparent: 00-11111111111111111111111111111111-2222222222222222-01\r\n" + framing,
			wantStatus: 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRig(t, nil, func(o *Options) { o.Now = nil })
			body := tt.body
			if body == "" {
				body = validBody
			}
			conn, err := net.Dial("tcp", strings.TrimPrefix(rg.proxy.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, "POST /hook HTTP/1.1\r\nHost: postern.test\r\n"+tt.headers+"\r\n"+body)
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			for err == nil && resp.StatusCode == http.StatusContinue {
				resp, err = http.ReadResponse(br, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			got := toAnswer(resp, data)
			if got.Status != tt.wantStatus || got.Reason != tt.wantReason {
				t.Errorf("got %d %q (%s), want %d %q", got.Status, got.Reason, got.Detail, tt.wantStatus, tt.wantReason)
			}
			reqs := rg.app.requests()
			if got.Status/100 != 2 {
				if len(reqs) != 0 {
					t.Errorf("app received %d requests for a refused trick, want 0", len(reqs))
				}
				return
			}
			if len(reqs) != 1 {
				t.Fatalf("app received %d requests, want 1", len(reqs))
			}
			checkAppView(t, reqs[0], tt.family, sig, validBody)
			for k, want := range tt.wantAlso {
				if got := strings.Join(reqs[0].Header[http.CanonicalHeaderKey(k)], ","); got != want {
					t.Errorf("app saw %s: %q, want %q", k, got, want)
				}
			}
		})
	}
}

// checkAppView checks what the app saw of a request postern verified with
// the headers in sig (its svix-* values, under the family's names): the
// verified headers with one value each, nothing else under a signature or
// Postern- name, no underscore names, one traceparent, and the body with
// its own length.
func checkAppView(t *testing.T, r received, family string, sig http.Header, body string) {
	t.Helper()
	names := [3]string{"Svix-Id", "Svix-Timestamp", "Svix-Signature"}
	if family == "webhook" {
		names = [3]string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}
	}
	id := sig.Get("Svix-Id")
	want := map[string]string{
		names[0]:             id,
		names[1]:             sig.Get("Svix-Timestamp"),
		names[2]:             sig.Get("Svix-Signature"),
		"Postern-Verified":   "true",
		"Postern-Event-Type": "REFERRAL_CREATED",
		"Postern-Message-Id": id,
	}
	for k, v := range want {
		if got := r.Header[k]; len(got) != 1 || got[0] != v {
			t.Errorf("app saw %s: %q, want exactly %q", k, got, v)
		}
	}
	for k, v := range r.Header {
		switch {
		case strings.ContainsRune(k, '_'):
			t.Errorf("app saw the underscore header %s: %q", k, v)
		case hasPrefixFold(k, "Postern-") && want[k] == "":
			t.Errorf("app saw %s: %q, which postern did not set", k, v)
		case k == "Traceparent" && len(v) != 1:
			t.Errorf("app saw %d traceparent headers, want postern's one", len(v))
		}
	}
	if r.Body != body || r.ContentLength != int64(len(body)) {
		t.Errorf("app got body %q (length %d), want %q (length %d)", r.Body, r.ContentLength, body, len(body))
	}
}

// lockedBuffer is a log destination the test reads while postern writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSecretRotationUnderLoad rotates the signing key through the keys file
// while senders are busy, as a Kubernetes Secret update does: [old], then
// [new, old] (overlap), then [new], then an invalid file, a file without
// keys and no file at all. Senders signing with the old key never fail
// while the old key is configured, senders signing with the new key never
// fail from the overlap on, the old key is refused once retired, and a bad
// file keeps the keys and logs why without a secret.
func TestSecretRotationUnderLoad(t *testing.T) {
	const (
		oldSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // testKey
		newSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD" // otherKey
		badSecret = "whsec_not*base64*at-all"
	)
	path := filepath.Join(t.TempDir(), "keys")
	write := func(content string) { // atomically, as the kubelet swaps ..data
		t.Helper()
		if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write(oldSecret + "\n")
	v := signature.NewVerifier([][]byte{testKey})
	var logs lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		v.WatchFile(ctx, path, 10*time.Millisecond, slog.New(slog.NewJSONHandler(&logs, nil)))
	}()
	defer func() { cancel(); <-watching }()

	l := newLedger()
	app := httptest.NewServer(ledgerApp(l))
	defer app.Close()
	h := newHandler(t, app.URL, func(o *Options) { o.Verifier = v })
	px := newFrontend(t, h)
	defer px.Close()

	// sender delivers fresh events signed with key until stop is closed;
	// every one must be acknowledged.
	var acked, failed atomic.Int64
	sender := func(name string, key []byte, stop <-chan struct{}) {
		client := newClient(5 * time.Second)
		defer client.CloseIdleConnections()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("msg_%s_%d", name, i)
			body := eventBody("ref_" + id)
			status, reason, err := send(client, px.URL+"/hook", signed(key, id, time.Now(), body), body)
			if err != nil || status != http.StatusNoContent {
				failed.Add(1)
				t.Errorf("%s: got %d %q %v, want 204", id, status, reason, err)
				continue
			}
			if _, ok := l.body(id); !ok {
				t.Errorf("%s acknowledged but not taken by the app", id)
			}
			acked.Add(1)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	probe := func(key []byte) (int, string) {
		id := fmt.Sprintf("msg_probe_%d", time.Now().UnixNano())
		status, reason, _ := send(px.Client(), px.URL+"/hook", signed(key, id, time.Now(), validBody), validBody)
		return status, reason
	}
	busy := func() { time.Sleep(150 * time.Millisecond) } // paces the phases so senders run in each

	var oldWG, newWG sync.WaitGroup
	stopOld, stopNew := make(chan struct{}), make(chan struct{})
	for s := range 4 {
		oldWG.Go(func() { sender(fmt.Sprintf("old%d", s), testKey, stopOld) })
	}
	busy()

	write(newSecret + "\n" + oldSecret + "\n") // the overlap
	waitFor("the overlap keys", func() bool { return v.Len() == 2 })
	for s := range 4 {
		newWG.Go(func() { sender(fmt.Sprintf("new%d", s), otherKey, stopNew) })
	}
	busy()
	close(stopOld) // the sender has switched to the new key
	oldWG.Wait()

	write(newSecret + "\n") // the old key retired
	waitFor("the old key to be retired", func() bool { return v.Len() == 1 })
	if status, reason := probe(testKey); status != http.StatusUnauthorized || reason != ReasonSignatureMismatch {
		t.Errorf("old key after retirement: got %d %q, want 401 %s", status, reason, ReasonSignatureMismatch)
	}
	busy()

	for _, bad := range []struct{ content, msg, reason string }{
		{badSecret + "\n", "secrets file invalid, keeping current keys", "key 1 is not base64 after whsec_"},
		{"# rotated, nothing yet\n", "secrets file invalid, keeping current keys", "no keys"},
		{"", "secrets file unreadable, keeping current keys", "no such file"},
	} {
		if bad.content == "" {
			os.Remove(path)
		} else {
			write(bad.content)
		}
		waitFor("the log of "+bad.reason, func() bool { return logLine(logs.String(), bad.msg, bad.reason) != "" })
		line := logLine(logs.String(), bad.msg, bad.reason)
		for _, secret := range []string{oldSecret[6:], newSecret[6:], "not*base64"} {
			if strings.Contains(line, secret) {
				t.Errorf("log line %s holds a secret", line)
			}
		}
		busy()
		if v.Len() != 1 {
			t.Errorf("after %q: %d keys, want the new key kept", bad.reason, v.Len())
		}
	}
	close(stopNew)
	newWG.Wait()
	if status, _ := probe(otherKey); status != http.StatusNoContent {
		t.Errorf("new key at the end: got %d, want 204", status)
	}
	t.Logf("%d events acknowledged, %d failed, across the rotation", acked.Load(), failed.Load())
}

// logLine returns the first line of logs holding both msg and reason.
func logLine(logs, msg, reason string) string {
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, `"msg":"`+msg+`"`) && strings.Contains(line, reason) {
			return line
		}
	}
	return ""
}

// validToken reports whether s is an RFC 9110 token, as net/http requires
// of a header name before a handler sees it.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validFieldValue reports whether s may be a header value as net/http
// admits it: no control characters but tab, no DEL.
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzForwardedHeaders adds two arbitrary headers and an arbitrary
// Connection header to a validly signed request (svix-* or webhook-*) and
// checks what the app sees: never a 2xx the app did not take; when the app
// takes it, exactly the verified headers (TestHeaderTricks' checkAppView),
// and nothing a Connection header names except what postern sets again.
// Header names and values are limited to what net/http's server admits.
func FuzzForwardedHeaders(f *testing.F) {
	f.Add("Postern-Verified", "false", "Svix_Id", "msg_evil", "Svix-Signature, Postern-Message-Id", false)
	f.Add("Webhook-Id", "msg_evil", "X-Custom", "1", "X-Custom", false)
	f.Add("Svix-Id", "msg_evil", "Upgrade", "websocket", "Upgrade, Content-Length", true)
	f.Add("SVIX-SIGNATURE", "v1,AAAA", "Te", "trailers", "close", false)
	f.Add("X-Forwarded-Host", "evil.example", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "Traceparent, X-Forwarded-Host", true)
	f.Add("Content-Type", "text/plain", "Postern-Event-Type", "X", "Content-Type, Postern-Event-Type", false)

	var mu sync.Mutex
	var last received
	var taken int
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = received{Header: r.Header.Clone(), Body: string(body), ContentLength: r.ContentLength}
		taken++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	f.Cleanup(app.Close)
	h := newHandler(f, app.URL, func(o *Options) { o.Dedupe = false; o.Now = func() time.Time { return testNow } })
	sig := signed(testKey, "msg_fuzz", testNow, validBody)

	f.Fuzz(func(t *testing.T, name1, value1, name2, value2, connection string, webhook bool) {
		if !validToken(name1) || !validToken(name2) || !validFieldValue(value1) || !validFieldValue(value2) || !validFieldValue(connection) {
			return // net/http's server refuses these before any handler
		}
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(validBody))
		family := "svix"
		if webhook {
			family = "webhook"
			req.Header.Set("Webhook-Id", sig.Get("Svix-Id"))
			req.Header.Set("Webhook-Timestamp", sig.Get("Svix-Timestamp"))
			req.Header.Set("Webhook-Signature", sig.Get("Svix-Signature"))
		} else {
			for k, v := range sig {
				req.Header[k] = v
			}
		}
		req.Header.Add(name1, value1)
		req.Header.Add(name2, value2)
		if connection != "" {
			req.Header.Add("Connection", connection)
		}
		mu.Lock()
		before := taken
		mu.Unlock()
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		mu.Lock()
		got, took := last, taken > before
		mu.Unlock()
		if rr.Code/100 == 2 && !took {
			t.Fatalf("answered %d but the app took nothing", rr.Code)
		}
		if !took {
			return
		}
		checkAppView(t, got, family, sig, validBody)
		resets := map[string]bool{"Content-Type": true, "Content-Length": true, "Host": true, "Traceparent": true,
			"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true}
		for _, k := range signature.HeaderNames {
			resets[k] = true
		}
		for n := range strings.SplitSeq(connection, ",") {
			n = http.CanonicalHeaderKey(strings.TrimSpace(n))
			if n != "" && !resets[n] && !hasPrefixFold(n, "Postern-") && len(got.Header[n]) > 0 {
				t.Fatalf("app saw %s: %q, which Connection named", n, got.Header[n])
			}
		}
	})
}

// TestDrainIdleTinyTimeout: with nothing in flight, a shutdown timeout
// too short for the shutting down itself (1 ns) is a clean exit, not a
// drain that timed out with requests in flight.
func TestDrainIdleTinyTimeout(t *testing.T) {
	var logs lockedBuffer
	h := newHandler(t, "http://127.0.0.1:1", func(o *Options) { o.Now = time.Now })
	ctx, cancel := context.WithCancel(context.Background())
	addrs, done := make(chan string, 1), make(chan error, 1)
	srv := &Server{Handler: h, Admin: http.NotFoundHandler(), ListenAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		UpstreamTimeout: time.Second, ShutdownTimeout: time.Nanosecond,
		Log: slog.New(jsonlog.New(&logs, nil)), OnListen: func(listen, _ net.Addr) { addrs <- listen.String() }}
	go func() { done <- srv.Run(ctx) }()
	<-addrs
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v, want nil (nothing was in flight)\n%s", err, logs.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestDrainTimeoutLogged: a drain that times out with a delivery still at
// the app ends Run with an error and says so in the JSON log, and the
// delivery has its audit record: upstream_failed, nothing answered (the
// goroutine engine's handler was still waiting for the app when Run
// returned, and wrote none).
func TestDrainTimeoutLogged(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	defer app.Close()
	defer close(release)
	var logs, audit lockedBuffer
	h := newHandler(t, app.URL, func(o *Options) {
		o.UpstreamTimeout, o.Now = 5*time.Second, time.Now
		o.Audit = slog.New(jsonlog.New(&audit, nil))
	})
	ctx, cancel := context.WithCancel(context.Background())
	addrs, done := make(chan string, 1), make(chan error, 1)
	srv := &Server{Handler: h, Admin: http.NotFoundHandler(), ListenAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		UpstreamTimeout: 5 * time.Second, ShutdownTimeout: 300 * time.Millisecond, Engine: testEngine(),
		Log: slog.New(jsonlog.New(&logs, nil)), OnListen: func(listen, _ net.Addr) { addrs <- listen.String() }}
	go func() { done <- srv.Run(ctx) }()
	addr := <-addrs
	go send(newClient(5*time.Second), "http://"+addr+"/hook", signed(testKey, "msg_stuck", time.Now(), validBody), validBody)
	<-arrived
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "drain timed out") {
			t.Errorf("Run: %v, want the drain timed out", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the drain timeout")
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"drain timed out with requests still in flight`) {
		t.Errorf("log lacks the drain timeout:\n%s", logs.String())
	}
	if got := audit.String(); !strings.Contains(got, `"msg_id":"msg_stuck"`) ||
		!strings.Contains(got, `"outcome":"upstream_failed","reason":"upstream_error","status":0,`) {
		t.Errorf("no audit record of the delivery cut by the drain's timeout (upstream_failed, upstream_error, nothing answered):\n%s", got)
	}
}
