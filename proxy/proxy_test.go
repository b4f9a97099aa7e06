package proxy

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStatusContract drives every row of DESIGN.md's status table through a
// real listener with a real app behind it.
func TestStatusContract(t *testing.T) {
	sig := func(body string) http.Header { return signed(testKey, "msg_1", testNow, body) }
	with := func(h http.Header, k, v string) http.Header { h = h.Clone(); h.Set(k, v); return h }
	without := func(h http.Header, k string) http.Header { h = h.Clone(); h.Del(k); return h }
	invalidFailed := `{"eventType":"REFERRAL_CREATED","data":{"referralId":"r","customer_type":"INDIVIDUAL","status":"FAILED"}}`
	unknownBody := `{"eventType":"REFERRAL_DELETED","data":{}}`

	tests := []struct {
		name       string
		method     string
		header     http.Header
		body       string
		mutate     func(*Options)
		handle     http.HandlerFunc
		wantStatus int
		wantReason string
		wantSent   bool   // the app received the request
		wantDetail string // a substring of the problem detail
		wantRetry  bool   // a Retry-After header
	}{
		{name: "valid event is forwarded", header: sig(validBody), body: validBody,
			wantStatus: 204, wantSent: true},
		{name: "webhook-* headers are accepted", header: http.Header{
			"Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {strconv.FormatInt(testNow.Unix(), 10)},
			"Webhook-Signature": sig(validBody)["Svix-Signature"]}, body: validBody,
			wantStatus: 204, wantSent: true},
		{name: "GET", method: http.MethodGet, header: sig(""), wantStatus: 405, wantReason: ReasonMethodNotAllowed},
		{name: "PUT", method: http.MethodPut, header: sig(validBody), body: validBody, wantStatus: 405, wantReason: ReasonMethodNotAllowed},
		{name: "body over the cap", header: sig(validBody), body: validBody,
			mutate: func(o *Options) { o.MaxBodyBytes = 10 }, wantStatus: 413, wantReason: ReasonBodyTooLarge},
		{name: "signature header twice", header: func() http.Header {
			h := sig(validBody)
			h["Svix-Signature"] = append(h["Svix-Signature"], "v1,AAAA")
			return h
		}(), body: validBody, wantStatus: 400, wantReason: ReasonMalformedHeaders},
		{name: "id header twice", header: func() http.Header {
			h := sig(validBody)
			h["Svix-Id"] = append(h["Svix-Id"], "msg_2")
			return h
		}(), body: validBody, wantStatus: 400, wantReason: ReasonMalformedHeaders},
		{name: "no signature headers", header: http.Header{"Content-Type": {"application/json"}}, body: validBody,
			wantStatus: 400, wantReason: ReasonMissingHeaders},
		{name: "signature header missing", header: without(sig(validBody), "Svix-Signature"), body: validBody,
			wantStatus: 400, wantReason: ReasonMissingHeaders},
		{name: "underscore spelling is not a signature header", header: http.Header{
			"Svix_id": {"msg_1"}, "Svix_timestamp": {strconv.FormatInt(testNow.Unix(), 10)},
			"Svix_signature": sig(validBody)["Svix-Signature"]}, body: validBody,
			wantStatus: 400, wantReason: ReasonMissingHeaders},
		{name: "timestamp not digits", header: with(sig(validBody), "Svix-Timestamp", "+1764410400"), body: validBody,
			wantStatus: 400, wantReason: ReasonMalformedHeaders},
		{name: "signature empty", header: with(sig(validBody), "Svix-Signature", ""), body: validBody,
			wantStatus: 400, wantReason: ReasonMalformedHeaders},
		{name: "signature token without comma", header: with(sig(validBody), "Svix-Signature", "v1"), body: validBody,
			wantStatus: 400, wantReason: ReasonMalformedHeaders},
		{name: "timestamp too old", header: signed(testKey, "msg_1", testNow.Add(-5*time.Minute-time.Second), validBody),
			body: validBody, wantStatus: 401, wantReason: ReasonTimestampTooOld},
		{name: "stale forgery is too old, not a mismatch", header: signed(otherKey, "msg_1", testNow.Add(-time.Hour), validBody),
			body: validBody, wantStatus: 401, wantReason: ReasonTimestampTooOld},
		{name: "timestamp too new", header: signed(testKey, "msg_1", testNow.Add(5*time.Minute+time.Second), validBody),
			body: validBody, wantStatus: 401, wantReason: ReasonTimestampTooNew},
		{name: "timestamp at the tolerance edge", header: signed(testKey, "msg_1", testNow.Add(-5*time.Minute), validBody),
			body: validBody, wantStatus: 204, wantSent: true},
		{name: "forged with another key", header: signed(otherKey, "msg_1", testNow, validBody), body: validBody,
			wantStatus: 401, wantReason: ReasonSignatureMismatch},
		{name: "tampered body", header: sig(validBody), body: strings.Replace(validBody, "ref_123", "ref_666", 1),
			wantStatus: 401, wantReason: ReasonSignatureMismatch},
		{name: "bad base64 value", header: with(sig(validBody), "Svix-Signature", "v1,!!!!"), body: validBody,
			wantStatus: 401, wantReason: ReasonSignatureMismatch},
		{name: "unknown version", header: with(sig(validBody), "Svix-Signature",
			strings.Replace(sig(validBody).Get("Svix-Signature"), "v1,", "v2,", 1)), body: validBody,
			wantStatus: 401, wantReason: ReasonSignatureMismatch},
		{name: "not JSON", header: sig("not json"), body: "not json", wantStatus: 400, wantReason: ReasonInvalidJSON},
		{name: "duplicate keys", header: sig(`{"eventType":"REFERRAL_CREATED","eventType":"X"}`),
			body: `{"eventType":"REFERRAL_CREATED","eventType":"X"}`, wantStatus: 400, wantReason: ReasonInvalidJSON},
		{name: "lone surrogate", header: sig(`{"eventType":"A\ud800"}`), body: `{"eventType":"A\ud800"}`,
			wantStatus: 400, wantReason: ReasonInvalidJSON},
		{name: "invalid UTF-8", header: sig("{\"eventType\":\"\xff\"}"), body: "{\"eventType\":\"\xff\"}",
			wantStatus: 400, wantReason: ReasonInvalidJSON},
		{name: "event type missing", header: sig(`{"data":{}}`), body: `{"data":{}}`,
			wantStatus: 400, wantReason: ReasonMissingEventType},
		{name: "event type not a string", header: sig(`{"eventType":7}`), body: `{"eventType":7}`,
			wantStatus: 400, wantReason: ReasonMissingEventType},
		{name: "event type empty", header: sig(`{"eventType":""}`), body: `{"eventType":""}`,
			wantStatus: 400, wantReason: ReasonMissingEventType},
		{name: "body not an object", header: sig(`["REFERRAL_CREATED"]`), body: `["REFERRAL_CREATED"]`,
			wantStatus: 400, wantReason: ReasonMissingEventType},
		{name: "schema violation names the field", header: sig(invalidFailed), body: invalidFailed,
			wantStatus: 422, wantReason: ReasonSchemaViolation, wantDetail: "/data"},
		{name: "unknown type, policy forward", header: sig(unknownBody), body: unknownBody,
			wantStatus: 204, wantSent: true},
		{name: "unknown type, policy reject", header: sig(unknownBody), body: unknownBody,
			mutate:     func(o *Options) { o.UnknownEvents = UnknownReject },
			wantStatus: 422, wantReason: ReasonUnknownEventType},
		{name: "unknown type, policy ack", header: sig(unknownBody), body: unknownBody,
			mutate:     func(o *Options) { o.UnknownEvents = UnknownAck },
			wantStatus: 200},
		{name: "app answers 410", header: sig(validBody), body: validBody,
			handle:     func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) },
			wantStatus: 502, wantReason: ReasonUpstreamGone, wantSent: true},
		{name: "app answers 500, passed through", header: sig(validBody), body: validBody,
			handle:     func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
			wantStatus: 500, wantSent: true},
		{name: "app slower than the timeout", header: sig(validBody), body: validBody,
			mutate: func(o *Options) { o.UpstreamTimeout = 50 * time.Millisecond },
			handle: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			wantStatus: 504, wantReason: ReasonUpstreamTimeout, wantSent: true},
		{name: "app resets the connection", header: sig(validBody), body: validBody,
			handle:     hijackAndClose(""),
			wantStatus: 502, wantReason: ReasonUpstreamError, wantSent: true},
		{name: "app cuts its 200 off midway", header: sig(validBody), body: validBody,
			handle:     hijackAndClose("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"),
			wantStatus: 502, wantReason: ReasonUpstreamError, wantSent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRig(t, tt.handle, tt.mutate)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			got := rg.do(t, method, "/hook", tt.header, tt.body)
			if got.Status != tt.wantStatus || got.Reason != tt.wantReason {
				t.Errorf("got %d %q (%s), want %d %q", got.Status, got.Reason, got.Detail, tt.wantStatus, tt.wantReason)
			}
			if sent := len(rg.app.requests()) > 0; sent != tt.wantSent {
				t.Errorf("app received: got %v, want %v", sent, tt.wantSent)
			}
			if !strings.Contains(got.Detail, tt.wantDetail) {
				t.Errorf("detail %q does not name %q", got.Detail, tt.wantDetail)
			}
			if tt.wantReason != "" && got.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("content type %q, want application/problem+json", got.Header.Get("Content-Type"))
			}
			if tt.wantStatus == 405 && got.Header.Get("Allow") != "POST" {
				t.Errorf("Allow: got %q, want POST", got.Header.Get("Allow"))
			}
		})
	}
}

// hijackAndClose returns an app handler that writes raw (possibly nothing)
// and drops the connection.
func hijackAndClose(raw string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		buf.WriteString(raw)
		buf.Flush()
		if tc, ok := conn.(interface{ SetLinger(int) error }); ok && raw == "" {
			tc.SetLinger(0) // RST instead of FIN
		}
		conn.Close()
	}
}

func TestRetryAfter(t *testing.T) {
	t.Run("app not listening", func(t *testing.T) {
		rg := newRig(t, nil, nil)
		rg.appSrv.Close()
		got := rg.post(t, "/", signed(testKey, "msg_1", testNow, validBody), validBody)
		if got.Status != 503 || got.Reason != ReasonUpstreamUnavailable || got.RetryAfter == "" {
			t.Errorf("got %d %q Retry-After %q, want 503 %s with Retry-After", got.Status, got.Reason, got.RetryAfter, ReasonUpstreamUnavailable)
		}
	})
	t.Run("draining", func(t *testing.T) {
		rg := newRig(t, nil, nil)
		rg.handler.Drain()
		got := rg.post(t, "/", signed(testKey, "msg_1", testNow, validBody), validBody)
		if got.Status != 503 || got.Reason != ReasonShuttingDown || got.RetryAfter == "" {
			t.Errorf("got %d %q Retry-After %q, want 503 %s with Retry-After", got.Status, got.Reason, got.RetryAfter, ReasonShuttingDown)
		}
		if n := len(rg.app.requests()); n != 0 {
			t.Errorf("app received %d requests while draining, want 0", n)
		}
	})
}

// TestBodyBudgetHugeCap: a body cap so large that four of it wrap around
// leaves the budget at its largest, not at its 16 MiB floor (which
// refused every larger body as overloaded).
func TestBodyBudgetHugeCap(t *testing.T) {
	for _, c := range []int64{1 << 61, math.MaxInt64} {
		h := newHandler(t, "http://127.0.0.1:1", func(o *Options) { o.MaxBodyBytes = c })
		if h.budget.max < 1<<62 {
			t.Errorf("cap %d: budget %d, want at least 2^62", c, h.budget.max)
		}
	}
}
