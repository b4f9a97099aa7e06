package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern-dev/postern/config"
	"github.com/postern-dev/postern/proxy/signature"
)

const (
	e2eSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	e2eBody   = `{"eventType":"REFERRAL_CREATED","data":{"referralId":"ref_1","customer_type":"INDIVIDUAL","status":"CREATED"}}`
)

// program is postern started through run() on port 0.
type program struct {
	listen, admin string
	done          chan error
	cancel        context.CancelFunc
	mu            sync.Mutex
	lines         []map[string]any
}

func start(t *testing.T, environ []string) *program {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	p := &program{done: make(chan error, 1), cancel: cancel}
	scanned := make(chan struct{})
	go func() {
		err := run(ctx, nil, environ, strings.NewReader(""), pw, io.Discard)
		pw.Close()
		<-scanned // every line written is in p.lines before done reports
		p.done <- err
	}()
	ready := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			p.mu.Lock()
			p.lines = append(p.lines, m)
			p.mu.Unlock()
			if m["msg"] == "serving" {
				p.listen, p.admin = m["listen_addr"].(string), m["admin_addr"].(string)
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case err := <-p.done:
		t.Fatalf("run returned before serving: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("postern did not start")
	}
	t.Cleanup(func() { cancel() })
	return p
}

// wait waits for run to return after SIGTERM and checks it returned nil.
func (p *program) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("run after SIGTERM: %v, want nil", err)
		}
	case <-time.After(timeout):
		t.Fatal("run did not return after SIGTERM")
	}
}

// testEnv is postern's environment for a test: the test key, upstream,
// free ports on loopback, then extra.
func testEnv(upstream string, extra ...string) []string {
	return append([]string{
		"POSTERN_SECRETS=" + e2eSecret,
		"POSTERN_UPSTREAM_URL=" + upstream,
		"POSTERN_LISTEN_ADDR=127.0.0.1:0",
		"POSTERN_ADMIN_ADDR=127.0.0.1:0",
	}, extra...)
}

// postSigned posts the test event, signed, to /hook and returns the status.
func (p *program) postSigned(t *testing.T) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.listen+"/hook", strings.NewReader(e2eBody))
	req.Header = signWith(t)
	resp, err := (&http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (p *program) audit() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, m := range p.lines {
		if m["msg"] == "webhook" {
			out = append(out, m)
		}
	}
	return out
}

// signWith runs `postern sign` and returns its headers.
func signWith(t *testing.T, args ...string) http.Header {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"sign", "--secret", e2eSecret}, args...), nil, strings.NewReader(e2eBody), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		h.Set(k, v)
	}
	return h
}

func TestEndToEnd(t *testing.T) {
	var mu sync.Mutex
	var got []string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	defer app.Close()
	p := start(t, testEnv(app.URL))
	client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := client.Get("http://" + p.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: got %d, want 200", path, resp.StatusCode)
		}
	}

	send := func(h http.Header) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.listen+"/hook", strings.NewReader(e2eBody))
		req.Header = h
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := send(signWith(t)); status != 200 {
		t.Errorf("signed: got %d, want 200", status)
	}
	if status := send(signWith(t, "--prefix", "webhook")); status != 200 {
		t.Errorf("signed with webhook-* headers: got %d, want 200", status)
	}
	forged := signWith(t)
	forged.Set("Svix-Signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if status := send(forged); status != 401 {
		t.Errorf("forged: got %d, want 401", status)
	}
	mu.Lock()
	if len(got) != 2 || got[0] != e2eBody {
		t.Errorf("app got %q, want the body twice", got)
	}
	mu.Unlock()

	resp, err := client.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`postern_requests_total{outcome="forwarded",reason=""} 2`,
		`postern_requests_total{outcome="rejected",reason="signature_mismatch"} 1`,
		`postern_upstream_responses_total{class="2xx"} 2`,
		`postern_key_matches_total{key_index="0"} 2`,
		"postern_request_duration_seconds_count 3",
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	p.cancel() // SIGTERM
	p.wait(t, 10*time.Second)
	records := p.audit()
	if len(records) != 3 {
		t.Fatalf("got %d audit records, want 3", len(records))
	}
	for _, r := range records {
		for _, k := range []string{"msg_id", "event_type", "outcome", "reason", "status", "upstream_status", "bytes", "duration_ms", "remote_addr"} {
			if _, ok := r[k]; !ok {
				t.Errorf("audit record %v lacks %s", r, k)
			}
		}
		line, _ := json.Marshal(r)
		if strings.Contains(string(line), "MfKQ9r8") || strings.Contains(string(line), "v1,") || strings.Contains(string(line), "ref_1") {
			t.Errorf("audit record leaks a secret, signature or body: %s", line)
		}
	}
	if records[2]["outcome"] != "rejected" || records[2]["reason"] != "signature_mismatch" {
		t.Errorf("third record: got %v %v, want rejected signature_mismatch", records[2]["outcome"], records[2]["reason"])
	}
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	os.WriteFile(keys, []byte("# rotated 2026-11\n"+e2eSecret+"\n"), 0o600)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name    string
		args    []string
		environ []string
		wantOut string
		wantCfg []string // config problems, each a line prefix
		wantErr bool
		errIn   string // with wantErr: text the error holds
		stdin   string
	}{
		{name: "version", args: []string{"version"}, wantOut: "postern dev\n"},
		{name: "check-config ok", args: []string{"check-config"}, environ: []string{"POSTERN_SECRETS=" + e2eSecret}, wantOut: "configuration ok\n"},
		{name: "check-config with a keys file", args: []string{"check-config"}, environ: []string{"POSTERN_SECRETS_FILE=" + keys}, wantOut: "configuration ok\n"},
		{name: "check-config reports every problem", args: []string{"check-config"},
			environ: []string{"POSTERN_SECRETS=" + e2eSecret + ",nope!", "POSTERN_UPSTREAM_URL=http://10.0.0.1:80", "POSTERN_TIMESTAMP_TOLERANCE=soon"},
			wantCfg: []string{"POSTERN_TIMESTAMP_TOLERANCE: ", "POSTERN_UPSTREAM_URL: ", "POSTERN_SECRETS: key 2 is not base64 (nor whsec_"}},
		{name: "serve without secrets", args: nil, environ: nil, wantCfg: []string{"POSTERN_SECRETS: required"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: true, errIn: "usage: postern"},
		{name: "help", args: []string{"--help"}, wantOut: usage},
		{name: "help of a command", args: []string{"demo", "-h"}, wantOut: usage},
		{name: "serve with an argument", args: []string{"serve", "--port=1"}, wantErr: true, errIn: `serve takes no arguments, got ["--port=1"]`},
		{name: "sign without any key", args: []string{"sign"}, wantErr: true},
		{name: "sign with a bad key", args: []string{"sign", "--secret", "whsec_!!"}, wantErr: true},
		{name: "sign with the keys file", args: []string{"sign", "--id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "--timestamp", "1614265330"},
			environ: []string{"POSTERN_SECRETS_FILE=" + keys}, stdin: `{"test": 2432232314}`,
			wantOut: "svix-id: msg_p5jXN8AQM9LWM0D4loKWxJek\nsvix-timestamp: 1614265330\nsvix-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\nContent-Type: application/json\n"},
		{name: "sign with an id Extract refuses", args: []string{"sign", "--secret", e2eSecret, "--id", "msg 1"}, wantErr: true, errIn: "--id"},
		{name: "sign with an empty id", args: []string{"sign", "--secret", e2eSecret, "--id", ""}, wantErr: true, errIn: "--id"},
		{name: "sign with a timestamp with leading zeros", args: []string{"sign", "--secret", e2eSecret, "--id", "msg_1", "--timestamp", "0100"},
			wantOut: "svix-id: msg_1\nsvix-timestamp: 100\nsvix-signature: " + signature.Sign(keyOf(t, e2eSecret), "msg_1", time.Unix(100, 0), nil) + "\nContent-Type: application/json\n"},
		{name: "sign with a hex timestamp", args: []string{"sign", "--secret", e2eSecret, "--timestamp", "0x10"}, wantErr: true, errIn: "--timestamp"},
		{name: "sign with a negative timestamp", args: []string{"sign", "--secret", e2eSecret, "--timestamp", "-5"}, wantErr: true, errIn: "--timestamp"},
		{name: "sign with an argument", args: []string{"sign", "--secret", e2eSecret, "body.json"}, wantErr: true, errIn: `"body.json"`},
		{name: "serve on a port in use", environ: []string{"POSTERN_SECRETS=" + e2eSecret, "POSTERN_LISTEN_ADDR=" + busy.Addr().String(), "POSTERN_ADMIN_ADDR=127.0.0.1:0"},
			wantErr: true, errIn: "POSTERN_LISTEN_ADDR: "},
		{name: "admin on a port in use", environ: []string{"POSTERN_SECRETS=" + e2eSecret, "POSTERN_LISTEN_ADDR=127.0.0.1:0", "POSTERN_ADMIN_ADDR=" + busy.Addr().String()},
			wantErr: true, errIn: "POSTERN_ADMIN_ADDR: "},
		{name: "healthcheck with nothing listening", args: []string{"healthcheck"}, environ: []string{"POSTERN_ADMIN_ADDR=127.0.0.1:1"}, wantErr: true},
		{name: "sign with keys that are only line breaks", args: []string{"sign"}, environ: []string{"POSTERN_SECRETS=\n\n"}, wantErr: true, errIn: "no keys"},
		{name: "healthcheck with a host no URL holds", args: []string{"healthcheck"}, environ: []string{"POSTERN_ADMIN_ADDR=a b:1"}, wantErr: true, errIn: "POSTERN_ADMIN_ADDR: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tt.args, tt.environ, strings.NewReader(tt.stdin), &out, io.Discard)
			var cfgErr *config.Error
			switch {
			case tt.wantCfg != nil:
				if !errors.As(err, &cfgErr) {
					t.Fatalf("got %v, want a config error (exit 2)", err)
				}
				if len(cfgErr.Problems) != len(tt.wantCfg) {
					t.Errorf("got problems %q, want %d", cfgErr.Problems, len(tt.wantCfg))
				}
				for _, want := range tt.wantCfg {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("problems %q lack %q", cfgErr.Problems, want)
					}
				}
				if strings.Contains(err.Error(), "MfKQ9r8") {
					t.Errorf("problems echo the secret: %q", err)
				}
			case tt.wantErr:
				if err == nil || errors.As(err, &cfgErr) || !strings.Contains(err.Error(), tt.errIn) {
					t.Errorf("got %v, want a runtime error (exit 1) with %q", err, tt.errIn)
				}
			default:
				if err != nil || out.String() != tt.wantOut {
					t.Errorf("got %q, %v, want %q", out.String(), err, tt.wantOut)
				}
			}
		})
	}
}

// TestSignFirstKey: sign uses the first key of POSTERN_SECRETS, whether
// its keys are separated by commas or by lines.
func TestSignFirstKey(t *testing.T) {
	sign := func(args, environ []string) string {
		var out bytes.Buffer
		args = append([]string{"sign", "--id", "msg_first", "--timestamp", "1764410400"}, args...)
		if err := run(context.Background(), args, environ, strings.NewReader("{}"), &out, io.Discard); err != nil {
			t.Fatalf("sign %q: %v", environ, err)
		}
		return out.String()
	}
	other := "whsec_" + strings.Repeat("A", 32)
	want := sign([]string{"--secret", e2eSecret}, nil)
	for _, secrets := range []string{e2eSecret + "," + other, "\n" + e2eSecret + "\n" + other + "\n", e2eSecret + "\r\n" + other} {
		if got := sign(nil, []string{"POSTERN_SECRETS=" + secrets}); got != want {
			t.Errorf("POSTERN_SECRETS=%q: sign printed %q, want %q (the first key's)", secrets, got, want)
		}
	}
}

// TestDemoSelf: the demo's paste line runs postern as the user did.
func TestDemoSelf(t *testing.T) {
	bin := t.TempDir()
	onPath := filepath.Join(bin, "postern")
	if err := os.WriteFile(onPath, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	if p, err := filepath.EvalSymlinks(onPath); err == nil {
		onPath = p // as os.Executable has it
	}
	other := filepath.Join(t.TempDir(), "postern-1")
	tests := []struct{ exe, want string }{
		{"", "go run ."},
		{"/root/.cache/go-build/ab/cd/exe/postern", "go run ."},
		{onPath, "postern"},
		{other, other},
	}
	for _, tt := range tests {
		if got := demoSelf(tt.exe); got != tt.want {
			t.Errorf("demoSelf(%q) = %q, want %q", tt.exe, got, tt.want)
		}
	}
}

// TestModuleVersion: a go install build reports the module version it
// recorded; a build from a checkout, "dev".
func TestModuleVersion(t *testing.T) {
	for _, tc := range []struct {
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{&debug.BuildInfo{Main: debug.Module{Version: "v0.1.0"}}, true, "v0.1.0"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261204101500-7807cfb1a2b3"}}, true, "v0.0.0-20261204101500-7807cfb1a2b3"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "dev"},
		{&debug.BuildInfo{}, true, "dev"},
		{nil, false, "dev"},
	} {
		if got := moduleVersion(tc.bi, tc.ok); got != tc.want {
			t.Errorf("moduleVersion(%+v) = %q, want %q", tc.bi, got, tc.want)
		}
	}
}
