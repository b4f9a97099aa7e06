package proxy

import (
	"bytes"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/postern-dev/postern/proxy/jsonlog"
)

// TestAuditRecordEitherHandler: the audit record is the same whether the
// audit logger's handler is postern's own (which takes the attributes
// without an slog.Record) or any other slog.Handler, here
// slog.JSONHandler; and it holds what the request did.
func TestAuditRecordEitherHandler(t *testing.T) {
	var own, std bytes.Buffer
	records := func(buf *bytes.Buffer, h slog.Handler) string {
		rg := newRig(t, nil, func(o *Options) { o.Audit = slog.New(h) })
		rg.post(t, "/", signed(testKey, "msg_a1", testNow, validBody), validBody)
		rg.post(t, "/", signed(otherKey, "msg_a2", testNow, validBody), validBody)
		// Each rig's sender has its own port.
		return regexp.MustCompile(`"remote_addr":"[^"]*"`).ReplaceAllString(buf.String(), `"remote_addr":"-"`)
	}
	got := records(&own, jsonlog.New(&own, nil))
	want := records(&std, slog.NewJSONHandler(&std, nil))
	if got != want {
		t.Errorf("postern's handler wrote\n%s\nslog.JSONHandler wrote\n%s", got, want)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 2 ||
		!strings.Contains(lines[0], `"msg":"webhook","msg_id":"msg_a1","event_type":"REFERRAL_CREATED","outcome":"forwarded","reason":"","status":204`) ||
		!strings.Contains(lines[1], `"msg_id":"msg_a2","event_type":"","outcome":"rejected","reason":"signature_mismatch","status":401`) {
		t.Errorf("audit records:\n%s", got)
	}
}

// TestAuditTraceIDFromSender: with tracing off, the audit record carries the
// trace id of the sender's traceparent, which the app receives unchanged,
// and none for a traceparent that is malformed or repeated.
func TestAuditTraceIDFromSender(t *testing.T) {
	const id = "0af7651916cd43dd8448eb211c80319c"
	tests := []struct {
		name string
		tp   []string
		want string // the record's trace_id, "" for none
	}{
		{"version 00", []string{"00-" + id + "-b7ad6b7169203331-01"}, id},
		{"a later version with more fields", []string{"01-" + id + "-b7ad6b7169203331-01-extra"}, id},
		{"none", nil, ""},
		{"repeated", []string{"00-" + id + "-b7ad6b7169203331-01", "00-" + id + "-b7ad6b7169203331-01"}, ""},
		{"upper-case hex", []string{"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"}, ""},
		{"zero trace id", []string{"00-00000000000000000000000000000000-b7ad6b7169203331-01"}, ""},
		{"zero parent id", []string{"00-" + id + "-0000000000000000-01"}, ""},
		{"version ff", []string{"ff-" + id + "-b7ad6b7169203331-01"}, ""},
		{"version 00 too long", []string{"00-" + id + "-b7ad6b7169203331-01-extra"}, ""},
		{"truncated", []string{"00-" + id + "-b7ad6b7169203331"}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			rg := newRig(t, nil, func(o *Options) { o.Audit = slog.New(jsonlog.New(&buf, nil)) })
			h := signed(testKey, fmt.Sprintf("msg_tp%d", i), testNow, validBody)
			h["Traceparent"] = tt.tp
			if a := rg.post(t, "/", h, validBody); a.Status != 204 {
				t.Fatalf("status %d, want 204", a.Status)
			}
			got := regexp.MustCompile(`"trace_id":"([^"]*)"`).FindStringSubmatch(buf.String())
			switch {
			case tt.want == "" && got != nil:
				t.Errorf("record has trace_id %s, want none: %s", got[1], buf.String())
			case tt.want != "" && (got == nil || got[1] != tt.want):
				t.Errorf("record %s, want trace_id %s", buf.String(), tt.want)
			}
		})
	}
}

// TestAuditNamesRefusedMessage: a request turned away before its signature
// is checked (wrong method, body over the cap) is audited with the message
// id its headers name, when they are well formed.
func TestAuditNamesRefusedMessage(t *testing.T) {
	var buf bytes.Buffer
	rg := newRig(t, nil, func(o *Options) { o.Audit = slog.New(jsonlog.New(&buf, nil)); o.MaxBodyBytes = 64 })
	rg.do(t, "PUT", "/", signed(testKey, "msg_put", testNow, validBody), validBody)
	rg.post(t, "/", signed(testKey, "msg_big", testNow, validBody), validBody)
	rg.do(t, "GET", "/", nil, "")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`"msg_id":"msg_put","event_type":"","outcome":"rejected","reason":"method_not_allowed","status":405`,
		`"msg_id":"msg_big","event_type":"","outcome":"rejected","reason":"body_too_large","status":413`,
		`"msg_id":"","event_type":"","outcome":"rejected","reason":"method_not_allowed","status":405`,
	}
	if len(lines) != len(want) {
		t.Fatalf("audit records:\n%s", buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("record %d: %s\nwant it to hold %s", i, lines[i], w)
		}
	}
}

// TestAuditKeyIndexOnceVerified: a request refused after its signature
// verified (here by the schema) names the key that matched, as the verify
// span and postern_key_matches_total do; a forged one names none.
func TestAuditKeyIndexOnceVerified(t *testing.T) {
	var buf bytes.Buffer
	rg := newRig(t, nil, func(o *Options) { o.Audit = slog.New(jsonlog.New(&buf, nil)) })
	bad := strings.Replace(validBody, `"CREATED"}`, `"FAILED"}`, 1)
	rg.post(t, "/", signed(testKey, "msg_k1", testNow, bad), bad)
	rg.post(t, "/", signed(otherKey, "msg_k2", testNow, validBody), validBody)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("audit records:\n%s", buf.String())
	}
	if !strings.Contains(lines[0], `"reason":"schema_violation"`) || !strings.Contains(lines[0], `"key_index":0`) {
		t.Errorf("schema violation: %s\nwant reason schema_violation and key_index 0", lines[0])
	}
	if !strings.Contains(lines[1], `"reason":"signature_mismatch"`) || strings.Contains(lines[1], "key_index") {
		t.Errorf("forgery: %s\nwant reason signature_mismatch and no key_index", lines[1])
	}
}
