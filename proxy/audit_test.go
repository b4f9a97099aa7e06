package proxy

import (
	"bytes"
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
