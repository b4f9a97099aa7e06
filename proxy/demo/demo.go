package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postern-dev/postern/proxy/signature"
)

// ServeFunc runs postern with environ until ctx ends, writing its logs to
// logs and reporting its bound addresses to onListen.
type ServeFunc func(ctx context.Context, environ []string, logs io.Writer, onListen func(listen, admin net.Addr)) error

// NewMessageID returns a random Svix-style message id.
func NewMessageID() string {
	b := make([]byte, 15)
	rand.Read(b)
	return "msg_" + base64.RawURLEncoding.EncodeToString(b)
}

// event is one scripted delivery.
type event struct {
	name  string
	body  string
	key   []byte                   // signs the body; nil means the demo key
	after func(body []byte) []byte // changes the body after signing
}

// Run starts an example app and postern, prints a line per scripted event,
// then serves until ctx ends. self is how the user runs postern ("postern"
// or "go run ."), for the ready-to-paste command.
func Run(ctx context.Context, out io.Writer, self string, serve ServeFunc) error {
	key := make([]byte, 24)
	rand.Read(key)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)

	app := &exampleApp{}
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	appSrv := &http.Server{Handler: app, ReadHeaderTimeout: 5 * time.Second}
	go appSrv.Serve(appLn)
	defer appSrv.Close()

	listen := "127.0.0.1:8090"
	if ln, err := net.Listen("tcp", listen); err == nil {
		ln.Close()
	} else {
		listen = "127.0.0.1:0"
	}
	environ := []string{
		"POSTERN_SECRETS=" + secret,
		"POSTERN_UPSTREAM_URL=http://" + appLn.Addr().String(),
		"POSTERN_LISTEN_ADDR=" + listen,
		"POSTERN_ADMIN_ADDR=127.0.0.1:0",
		"POSTERN_SHUTDOWN_TIMEOUT=2s",
	}
	logs := &gate{w: out}
	addrs := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, environ, logs, func(l, _ net.Addr) { addrs <- l })
	}()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		return err
	}
	url := "http://" + addr.String() + "/webhooks/referrals"

	fmt.Fprintf(out, "postern demo: app on %s, postern on %s, secret %s\n\n", appLn.Addr(), addr, secret)
	fmt.Fprintf(out, "%-40s %-6s %-20s %s\n", "EVENT", "STATUS", "REASON", "APP RECEIVED")
	other := make([]byte, 24)
	rand.Read(other)
	for _, ev := range []event{
		{name: "REFERRAL_CREATED, status CREATED", body: createdBody},
		{name: "REFERRAL_CREATED, status FAILED", body: failedBody},
		{name: "forged (signed with another key)", body: createdBody, key: other},
		{name: "tampered (body changed after signing)", body: createdBody, after: func(b []byte) []byte {
			return bytes.Replace(b, []byte("ref_1001"), []byte("ref_6666"), 1)
		}},
		{name: "schema-invalid (FAILED, no message)", body: invalidBody},
	} {
		if ev.key == nil {
			ev.key = key
		}
		status, reason, received, err := deliver(ctx, url, ev, app)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-40.40s %-6d %-20s %s\n", ev.name, status, reason, yesNo(received))
	}
	fmt.Fprintf(out, "\npostern keeps serving on %s; Ctrl-C stops it. Try one yourself:\n\n", addr)
	fmt.Fprintf(out, "  BODY='%s'\n", createdBody)
	fmt.Fprintf(out, "  printf %%s \"$BODY\" | %s sign --secret %s | curl -sS -H @- --data-binary \"$BODY\" %s\n\n", self, secret, url)
	fmt.Fprintln(out, "Audit records follow, one JSON line per request:")
	logs.open.Store(true)

	<-ctx.Done()
	return <-done
}

// deliver signs and sends one event and reports postern's answer and
// whether the app received it.
func deliver(ctx context.Context, url string, ev event, app *exampleApp) (status int, reason string, received bool, err error) {
	id := NewMessageID()
	now := time.Now()
	body := []byte(ev.body)
	sig := signature.Sign(ev.key, id, now, body)
	if ev.after != nil {
		body = ev.after(body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("svix-id", id)
	req.Header.Set("svix-timestamp", fmt.Sprint(now.Unix()))
	req.Header.Set("svix-signature", sig)
	resp, err := (&http.Client{Transport: &http.Transport{}, Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return 0, "", false, err
	}
	defer resp.Body.Close()
	var p struct{ Reason string }
	json.NewDecoder(resp.Body).Decode(&p)
	if p.Reason == "" {
		p.Reason = "-"
	}
	return resp.StatusCode, p.Reason, app.got(id), nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// exampleApp stands in for the legacy application: it remembers the message
// ids it received and answers 200.
type exampleApp struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (a *exampleApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	a.mu.Lock()
	if a.ids == nil {
		a.ids = map[string]bool{}
	}
	a.ids[r.Header.Get("Postern-Message-Id")] = true
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"received":true}`))
}

func (a *exampleApp) got(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ids[id]
}

// gate passes writes through once open, and drops them before.
type gate struct {
	open atomic.Bool
	w    io.Writer
}

func (g *gate) Write(p []byte) (int, error) {
	if !g.open.Load() {
		return len(p), nil
	}
	return g.w.Write(p)
}

const (
	createdBody = `{"eventType":"REFERRAL_CREATED","eventId":"evt_1001","createdAt":"2026-11-26T10:00:00Z","data":{"referralId":"ref_1001","customer_type":"INDIVIDUAL","status":"CREATED"}}`
	failedBody  = `{"eventType":"REFERRAL_CREATED","eventId":"evt_1002","createdAt":"2026-11-26T10:05:00Z","data":{"referralId":"ref_1002","customer_type":"BUSINESS","status":"FAILED","message":"duplicate referral"}}`
	invalidBody = `{"eventType":"REFERRAL_CREATED","eventId":"evt_1003","createdAt":"2026-11-26T10:10:00Z","data":{"referralId":"ref_1003","customer_type":"INDIVIDUAL","status":"FAILED"}}`
)
