package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postern-dev/postern/proxy/signature"
)

// These tests hold issue 6's promises through run(), the whole program:
// shutdown under load and key rotation through POSTERN_SECRETS_FILE.

const rotatedSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"

func keyOf(t *testing.T, secret string) []byte {
	t.Helper()
	keys, err := signature.ParseSecrets([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	return keys[0]
}

// signedHeaders returns svix headers for body signed with key now.
func signedHeaders(key []byte, id, body string) http.Header {
	now := time.Now()
	return http.Header{
		"Svix-Id":        {id},
		"Svix-Timestamp": {strconv.FormatInt(now.Unix(), 10)},
		"Svix-Signature": {signature.Sign(key, id, now, []byte(body))},
		"Content-Type":   {"application/json"},
	}
}

// delivery is what one sender saw of one request.
type delivery struct {
	id, body   string
	status     int
	reason     string
	retryAfter string
	err        error
	done       time.Time
}

func post(client *http.Client, target, id, body string, key []byte) delivery {
	d := delivery{id: id, body: body}
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.Header = signedHeaders(key, id, body)
	resp, err := client.Do(req)
	if err != nil {
		d.err, d.done = err, time.Now()
		return d
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	d.status, d.retryAfter, d.err, d.done = resp.StatusCode, resp.Header.Get("Retry-After"), err, time.Now()
	var p struct{ Reason string }
	if json.Unmarshal(data, &p) == nil {
		d.reason = p.Reason
	}
	return d
}

// ledgerServer is an app that records the body and traceparent of every
// message it answers 204; hold, if set, is called first.
type ledgerServer struct {
	mu          sync.Mutex
	bodies      map[string]string
	traceparent map[string]string
	hold        func(id string)
}

func (l *ledgerServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "not taken", http.StatusBadRequest)
		return
	}
	id := r.Header.Get("Postern-Message-Id")
	if l.hold != nil {
		l.hold(id)
	}
	l.mu.Lock()
	l.bodies[id] = string(body)
	l.traceparent[id] = r.Header.Get("Traceparent")
	l.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (l *ledgerServer) get(id string) (body, traceparent string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	body, ok = l.bodies[id]
	return body, l.traceparent[id], ok
}

// waitFor polls cond every few milliseconds until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
	}
}

// TestSIGTERMUnderLoad cancels run's context (SIGTERM) while 16 senders are
// busy, half on keep-alive connections and half on a new connection per
// request, with one request held by the app and one connection midway
// through its request headers. Then: run returns nil; every 2xx a sender
// saw is in the app's ledger with its body; every other answer is 503
// shutting_down with Retry-After, or a refused or closed connection after
// the SIGTERM; the held request completes; the request finished during the
// drain never reaches the app and is answered 503 shutting_down or not at
// all (net/http closes a connection whose request it reads after Shutdown
// began, before any handler); the spans of the last requests reach the
// OTLP receiver; and the admin listener is gone, so there is nothing to
// scrape after shutdown.
func TestSIGTERMUnderLoad(t *testing.T) {
	key := keyOf(t, e2eSecret)
	rc := &receiver{spans: map[string][]string{}}
	otlp := httptest.NewServer(rc)
	defer otlp.Close()

	heldArrived, released := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(released) }) }
	defer release() // before the app closes, also when the test fails early
	ls := &ledgerServer{bodies: map[string]string{}, traceparent: map[string]string{}}
	ls.hold = func(id string) {
		if id == "msg_held" {
			close(heldArrived)
			<-released
		}
	}
	app := httptest.NewServer(ls)
	defer app.Close()
	p := start(t, []string{
		"POSTERN_SECRETS=" + e2eSecret,
		"POSTERN_UPSTREAM_URL=" + app.URL,
		"POSTERN_LISTEN_ADDR=127.0.0.1:0",
		"POSTERN_ADMIN_ADDR=127.0.0.1:0",
		"POSTERN_SHUTDOWN_TIMEOUT=10s",
		"POSTERN_UPSTREAM_TIMEOUT=5s",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_SERVICE_NAME=postern-sigterm",
	})
	target := "http://" + p.listen + "/hook"

	stop := make(chan struct{})
	results := make(chan delivery, 1<<16)
	var wg sync.WaitGroup
	for s := range 16 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: s%2 == 1}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("msg_sigterm_%d_%d", s, i)
				results <- post(client, target, id, strings.Replace(e2eBody, "ref_1", "ref_"+id, 1), key)
				time.Sleep(2 * time.Millisecond) // paces the senders so that the span queue keeps up
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // paces the load before the scrape and SIGTERM

	// Metrics are scraped while serving; the admin listener closes at SIGTERM.
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `postern_requests_total{outcome="forwarded",reason=""}`) {
		t.Errorf("/metrics under load lacks forwarded requests:\n%s", metrics)
	}

	held := make(chan delivery, 1)
	go func() { held <- post(&http.Client{Timeout: 10 * time.Second}, target, "msg_held", e2eBody, key) }()
	<-heldArrived
	partial, err := net.Dial("tcp", p.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer partial.Close()
	io.WriteString(partial, "POST /hook HTTP/1.1\r\nHost: postern\r\n")

	sigterm := time.Now()
	p.cancel()
	waitFor(t, 5*time.Second, "the listener to close", func() bool {
		c, err := net.Dial("tcp", p.listen)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// The connection opened before SIGTERM finishes its request during the drain.
	var rest strings.Builder
	for k, v := range signedHeaders(key, "msg_draining", e2eBody) {
		fmt.Fprintf(&rest, "%s: %s\r\n", k, v[0])
	}
	fmt.Fprintf(&rest, "Content-Length: %d\r\n\r\n%s", len(e2eBody), e2eBody)
	partial.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(partial, rest.String())
	drained503 := false
	if dresp, err := http.ReadResponse(bufio.NewReader(partial), nil); err == nil {
		ddata, _ := io.ReadAll(dresp.Body)
		drained503 = true
		if dresp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(ddata), `"reason":"shutting_down"`) ||
			dresp.Header.Get("Retry-After") == "" {
			t.Errorf("request finished during the drain: got %d %s (Retry-After %q), want 503 shutting_down with Retry-After",
				dresp.StatusCode, ddata, dresp.Header.Get("Retry-After"))
		}
	} else if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("request finished during the drain: %v, want 503 shutting_down or the connection closed", err)
	}

	release()
	if d := <-held; d.err != nil || d.status != http.StatusNoContent {
		t.Errorf("request held by the app across SIGTERM: got %d %v, want 204", d.status, d.err)
	}
	p.wait(t, 15*time.Second)
	close(stop)
	wg.Wait()
	close(results)

	counts := map[string]int{}
	for d := range results {
		switch {
		case d.err != nil && d.status == 0:
			counts["refused or closed"]++
			if d.done.Before(sigterm) {
				t.Errorf("%s failed before SIGTERM: %v", d.id, d.err)
			}
		case d.err != nil:
			t.Errorf("%s: %d answer broken: %v", d.id, d.status, d.err)
		case d.status >= 200 && d.status < 300:
			counts["2xx"]++
			if body, _, ok := ls.get(d.id); !ok || body != d.body {
				t.Errorf("%s acknowledged with %d but the app's ledger has %q (taken: %v)", d.id, d.status, body, ok)
			}
		case d.status == http.StatusServiceUnavailable && d.reason == "shutting_down" && d.retryAfter != "":
			counts["503 shutting_down"]++
		default:
			t.Errorf("%s: got %d %q, want 2xx, 503 shutting_down or a refused connection", d.id, d.status, d.reason)
		}
	}
	if _, _, ok := ls.get("msg_draining"); ok {
		t.Error("the request finished during the drain reached the app")
	}
	t.Logf("senders saw: %v; the request finished during the drain was answered 503: %v", counts, drained503)

	// Nothing to scrape after shutdown.
	if resp, err := http.Get("http://" + p.admin + "/metrics"); err == nil {
		resp.Body.Close()
		t.Errorf("admin listener still answers after run returned: %d", resp.StatusCode)
	}

	// The spans of the last requests were flushed before run returned.
	var drainTrace string
	waitFor(t, 2*time.Second, "the audit record of the held request", func() bool {
		found := false
		for _, r := range p.audit() {
			switch r["msg_id"] {
			case "msg_draining":
				drainTrace, _ = r["trace_id"].(string)
			case "msg_held":
				found = true
			}
		}
		return found
	})
	_, tp, _ := ls.get("msg_held")
	heldTrace := strings.Split(tp+"--", "-")[1]
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if n := len(rc.spans[heldTrace]); n != 5 {
		t.Errorf("exported spans of the held request (trace %q): %d, want 5", heldTrace, n)
	}
	if drained503 != (drainTrace != "") {
		t.Errorf("the request finished during the drain: answered 503 %v, audited %v; want both or neither", drained503, drainTrace != "")
	}
	if n := len(rc.spans[drainTrace]); drained503 && n != 1 {
		t.Errorf("exported spans of the drained request (trace %q): %d, want its server span", drainTrace, n)
	}
	records := p.audit()
	missing := 0
	for _, r := range records[max(0, len(records)-100):] {
		if id, _ := r["trace_id"].(string); len(rc.spans[id]) == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of the last %d requests have no exported spans", missing, min(100, len(records)))
	}
}

// TestSecretsFileRotationThroughRun rotates POSTERN_SECRETS_FILE from [old]
// to [new, old] while senders signing with the old key are busy, then
// writes an invalid file: the old key never fails, the new key starts to
// work within the poll interval, the invalid file keeps both keys and is
// logged with its reason and without a secret. (The poll interval is 2 s,
// a constant, so this takes about 4 s; the semantics under heavier load
// are TestSecretRotationUnderLoad in proxy.)
func TestSecretsFileRotationThroughRun(t *testing.T) {
	oldKey, newKey := keyOf(t, e2eSecret), keyOf(t, rotatedSecret)
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
	write(e2eSecret + "\n")
	ls := &ledgerServer{bodies: map[string]string{}, traceparent: map[string]string{}}
	app := httptest.NewServer(ls)
	defer app.Close()
	p := start(t, []string{
		"POSTERN_SECRETS_FILE=" + path,
		"POSTERN_UPSTREAM_URL=" + app.URL,
		"POSTERN_LISTEN_ADDR=127.0.0.1:0",
		"POSTERN_ADMIN_ADDR=127.0.0.1:0",
	})
	target := "http://" + p.listen + "/hook"

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for s := range 4 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
			defer client.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("msg_rotation_%d_%d", s, i)
				d := post(client, target, id, e2eBody, oldKey)
				if d.err != nil || d.status != http.StatusNoContent {
					t.Errorf("%s signed with the old key: got %d %q %v, want 204", id, d.status, d.reason, d.err)
				}
				mu.Lock()
				sent++
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // paces the senders
			}
		})
	}
	client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	probe := func(key []byte) int {
		return post(client, target, fmt.Sprintf("msg_probe_%d", time.Now().UnixNano()), e2eBody, key).status
	}
	if status := probe(newKey); status != http.StatusUnauthorized {
		t.Errorf("new key before rotation: got %d, want 401", status)
	}

	write(rotatedSecret + "\n" + e2eSecret + "\n")
	waitFor(t, 6*time.Second, "the new key to be accepted", func() bool { return probe(newKey) == http.StatusNoContent })

	write("whsec_not*base64*at-all\n")
	var line string
	waitFor(t, 6*time.Second, "the invalid file to be logged", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, m := range p.lines {
			if m["msg"] == "secrets file invalid, keeping current keys" {
				b, _ := json.Marshal(m)
				line = string(b)
				return true
			}
		}
		return false
	})
	if !strings.Contains(line, "key 1 is not base64 after whsec_") {
		t.Errorf("log line %s does not say why the file is invalid", line)
	}
	for _, secret := range []string{e2eSecret[6:], rotatedSecret[6:], "not*base64"} {
		if strings.Contains(line, secret) {
			t.Errorf("log line %s holds a secret", line)
		}
	}
	for name, key := range map[string][]byte{"old": oldKey, "new": newKey} {
		if status := probe(key); status != http.StatusNoContent {
			t.Errorf("%s key after the invalid file: got %d, want 204 (keys kept)", name, status)
		}
	}
	close(stop)
	wg.Wait()
	client.CloseIdleConnections()
	mu.Lock()
	t.Logf("%d events signed with the old key across the rotation", sent)
	mu.Unlock()
}
