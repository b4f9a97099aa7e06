package demo

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern-dev/postern/proxy"
	"github.com/postern-dev/postern/proxy/schema"
	"github.com/postern-dev/postern/proxy/signature"
)

// syncBuffer is a bytes.Buffer safe for the demo's writer and the test's reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// serveForTest stands in for main's serve: it reads the few variables the
// demo sets and runs the real handler.
func serveForTest(ctx context.Context, environ []string, logs io.Writer, onListen func(listen, admin net.Addr)) error {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	keys, err := signature.ParseSecrets([]string{env["POSTERN_SECRETS"]})
	if err != nil {
		return err
	}
	up, _ := url.Parse(env["POSTERN_UPSTREAM_URL"])
	set, _ := schema.Builtin()
	h, err := proxy.New(proxy.Options{Upstream: up, Verifier: signature.NewVerifier(keys), Schemas: set, Dedupe: true})
	if err != nil {
		return err
	}
	srv := &proxy.Server{Handler: h, Admin: http.NotFoundHandler(), ListenAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		UpstreamTimeout: time.Second, ShutdownTimeout: time.Second, Log: proxyLog(logs), OnListen: onListen}
	return srv.Run(ctx)
}

func TestDemo(t *testing.T) {
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, out, "postern", serveForTest) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Audit records follow") {
		select {
		case err := <-done:
			t.Fatalf("demo returned early: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo did not finish its script:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("demo: %v", err)
	}
	got := out.String()
	for _, want := range []string{
		"REFERRAL_CREATED, status CREATED         200    -                    yes",
		"REFERRAL_CREATED, status FAILED          200    -                    yes",
		"forged (signed with another key)         401    signature_mismatch   no",
		"tampered (body changed after signing)    401    signature_mismatch   no",
		"schema-invalid (FAILED, no message)      422    schema_violation     no",
		"postern sign --secret whsec_",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
}

func proxyLog(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }
