package proxy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern-dev/postern/proxy/signature"
)

// FuzzHandler holds the central property: nothing reaches the app unless
// its signature verified with a configured key, inside the time window.
func FuzzHandler(f *testing.F) {
	f.Add([]byte(validBody), "msg_1", int64(0), "", true)
	f.Add([]byte(validBody), "msg_1", int64(0), "v1,AAAA", false)
	f.Add([]byte(`{"eventType":"X"}`), "msg 1", int64(-301), "v2,abc v1,", true)
	f.Add([]byte(`{"eventType":"REFERRAL_CREATED","eventType":"X"}`), "msg_2", int64(300), " ", true)
	f.Add([]byte{0xff}, "", int64(1<<40), "v1,a,b", false)
	rg := newRig(f, nil, func(o *Options) { o.Dedupe = false; o.UnknownEvents = UnknownForward })
	f.Fuzz(func(t *testing.T, body []byte, id string, offset int64, extra string, sign bool) {
		ts := testNow.Add(time.Duration(offset%1e6) * time.Second)
		sig := extra
		if sign {
			sig = strings.TrimSpace(signature.Sign(testKey, id, ts, body) + " " + extra)
		}
		before := len(rg.app.requests())
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Svix-Id", id)
		req.Header.Set("Svix-Timestamp", strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set("Svix-Signature", sig)
		rr := httptest.NewRecorder()
		rg.handler.ServeHTTP(rr, req)
		if len(rg.app.requests()) == before {
			return
		}
		want := signature.Sign(testKey, id, ts, body)
		if !strings.Contains(" "+sig+" ", " "+want+" ") {
			t.Fatalf("forwarded a request whose signature %q does not contain %q", sig, want)
		}
		if d := testNow.Sub(ts); d > 5*time.Minute || d < -5*time.Minute {
			t.Fatalf("forwarded a request %s outside the window", d)
		}
		if got := rg.app.requests()[before].Body; got != string(body) {
			t.Fatalf("app got body %q, want %q", got, body)
		}
	})
}
