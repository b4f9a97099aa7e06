package proxy

import (
	"fmt"
	"testing"
)

// TestSmuggling sends request-smuggling shapes on one connection: each
// carries a signed request and, hidden in its framing, an unsigned second
// request to /smuggled. The listener (proxy/h1) refuses every ambiguous
// framing with one answer and closes the connection: the app sees neither
// /smuggled nor the signed request whose framing was in doubt.
func TestSmuggling(t *testing.T) {
	h := signed(testKey, "msg_smuggle", testNow, validBody)
	sig := fmt.Sprintf("Svix-Id: %s\r\nSvix-Timestamp: %s\r\nSvix-Signature: %s\r\n", h.Get("Svix-Id"), h.Get("Svix-Timestamp"), h.Get("Svix-Signature"))
	hidden := "POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
	chunk := func(body string) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body) }
	tests := []struct {
		name, raw  string
		wantStatus int
		wantReason string
	}{
		{"Content-Length and Transfer-Encoding",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("Content-Length: %d\r\n", len(chunk(validBody))+len(hidden)) +
				"Transfer-Encoding: chunked\r\n\r\n" + chunk(validBody) + hidden, 400, ReasonMalformedRequest},
		{"two different Content-Lengths",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n\r\n", len(validBody), len(validBody)+len(hidden)) +
				validBody + hidden, 400, ReasonMalformedRequest},
		{"obfuscated Transfer-Encoding",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("Content-Length: %d\r\n", len(validBody)) +
				"Transfer-Encoding: xchunked\r\n\r\n" + validBody + hidden, 400, ReasonMalformedRequest},
		{"Transfer-Encoding chunked, identity",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + "Transfer-Encoding: chunked, identity\r\n\r\n" + chunk(validBody) + hidden, 501, ReasonMalformedRequest},
		{"Transfer-Encoding with a space before the colon",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("Content-Length: %d\r\n", len(validBody)) +
				"Transfer-Encoding : chunked\r\n\r\n" + validBody + hidden, 400, ReasonMalformedRequest},
		{"bare LF in chunked framing",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + "Transfer-Encoding: chunked\r\n\r\n" +
				fmt.Sprintf("%x\n%s\n0\n\n", len(validBody), validBody) + hidden, 400, ReasonBodyReadFailed},
		{"chunk size with an extension and garbage",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + "Transfer-Encoding: chunked\r\n\r\n" +
				fmt.Sprintf("%x;ext=\"a\r\nb\"\r\n%s\r\n0\r\n\r\n", len(validBody), validBody) + hidden, 400, ReasonBodyReadFailed},
	}
	tests = append(tests, []struct {
		name, raw  string
		wantStatus int
		wantReason string
	}{
		{"two identical Content-Lengths",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n\r\n", len(validBody), len(validBody)) +
				validBody + hidden, 400, ReasonMalformedRequest},
		{"Content-Length with a sign",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("Content-Length: +%d\r\n\r\n", len(validBody)) + validBody + hidden,
			400, ReasonMalformedRequest},
		{"Transfer-Encoding in HTTP/1.0",
			"POST /hook HTTP/1.0\r\nHost: x\r\n" + sig + "Transfer-Encoding: chunked\r\n\r\n" + chunk(validBody) + hidden,
			400, ReasonMalformedRequest},
		{"a bare CR ending a header",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("X-A: 1\rContent-Length: %d\r\n\r\n", len(validBody)) + validBody + hidden,
			400, ReasonMalformedRequest},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRig(t, nil, nil)
			var statuses []int
			var reasons []string
			for _, a := range sendRaw(t, rg.proxy.URL, tt.raw) {
				statuses = append(statuses, a.Status)
				reasons = append(reasons, a.Reason)
			}
			if len(statuses) != 1 || statuses[0] != tt.wantStatus || reasons[0] != tt.wantReason {
				t.Errorf("answers %v %q, want exactly one %d %q and the connection closed", statuses, reasons, tt.wantStatus, tt.wantReason)
			}
			reqs := rg.app.requests()
			for _, r := range reqs {
				if r.Path != "/hook" || r.Body != validBody || r.Header.Get("Postern-Message-Id") != "msg_smuggle" {
					t.Errorf("app received %s %q (id %q): not the signed request", r.Path, r.Body, r.Header.Get("Postern-Message-Id"))
				}
			}
			if len(reqs) != 0 {
				t.Errorf("app received %d requests, want none", len(reqs))
			}
			for i, s := range statuses {
				if s/100 == 2 && len(reqs) == 0 {
					t.Errorf("response %d is %d but the app received nothing", i, s)
				}
			}
			t.Logf("statuses %v, app received %d", statuses, len(reqs))
		})
	}
}
