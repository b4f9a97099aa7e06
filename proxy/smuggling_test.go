package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSmuggling sends request-smuggling shapes on one connection: each
// carries a signed request and, hidden in its framing, an unsigned second
// request to /smuggled. Whatever net/http makes of the framing, the app
// must never see /smuggled nor any body other than the signed one.
func TestSmuggling(t *testing.T) {
	h := signed(testKey, "msg_smuggle", testNow, validBody)
	sig := fmt.Sprintf("Svix-Id: %s\r\nSvix-Timestamp: %s\r\nSvix-Signature: %s\r\n", h.Get("Svix-Id"), h.Get("Svix-Timestamp"), h.Get("Svix-Signature"))
	hidden := "POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
	chunk := func(body string) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body) }
	tests := []struct{ name, raw string }{
		{"Content-Length and Transfer-Encoding",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("Content-Length: %d\r\n", len(chunk(validBody))+len(hidden)) +
				"Transfer-Encoding: chunked\r\n\r\n" + chunk(validBody) + hidden},
		{"two different Content-Lengths",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n\r\n", len(validBody), len(validBody)+len(hidden)) +
				validBody + hidden},
		{"obfuscated Transfer-Encoding",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("Content-Length: %d\r\n", len(validBody)) +
				"Transfer-Encoding: xchunked\r\n\r\n" + validBody + hidden},
		{"Transfer-Encoding chunked, identity",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + "Transfer-Encoding: chunked, identity\r\n\r\n" + chunk(validBody) + hidden},
		{"Transfer-Encoding with a space before the colon",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + fmt.Sprintf("Content-Length: %d\r\n", len(validBody)) +
				"Transfer-Encoding : chunked\r\n\r\n" + validBody + hidden},
		{"bare LF in chunked framing",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + "Transfer-Encoding: chunked\r\n\r\n" +
				fmt.Sprintf("%x\n%s\n0\n\n", len(validBody), validBody) + hidden},
		{"chunk size with an extension and garbage",
			"POST /hook HTTP/1.1\r\nHost: x\r\n" + sig + "Transfer-Encoding: chunked\r\n\r\n" +
				fmt.Sprintf("%x;ext=\"a\r\nb\"\r\n%s\r\n0\r\n\r\n", len(validBody), validBody) + hidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRig(t, nil, nil)
			conn, err := net.Dial("tcp", strings.TrimPrefix(rg.proxy.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(conn, tt.raw)
			conn.(*net.TCPConn).CloseWrite()
			br := bufio.NewReader(conn)
			var statuses []int
			for {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					break
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses = append(statuses, resp.StatusCode)
			}
			reqs := rg.app.requests()
			for _, r := range reqs {
				if r.Path != "/hook" || r.Body != validBody || r.Header.Get("Postern-Message-Id") != "msg_smuggle" {
					t.Errorf("app received %s %q (id %q): not the signed request", r.Path, r.Body, r.Header.Get("Postern-Message-Id"))
				}
			}
			if len(reqs) > 1 {
				t.Errorf("app received %d requests, want at most the one signed", len(reqs))
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
