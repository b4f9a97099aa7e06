package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// malformedHeads are app responses that net/http's ReadResponse refuses
// (and a status below 100, which it takes but no handler could send on).
var malformedHeads = []struct{ name, raw string }{
	{"no space after the version", "HTTP/1.1200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"},
	{"four-digit status", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"},
	{"status with a letter", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"},
	{"negative status", "HTTP/1.1 -20 OK\r\nContent-Length: 0\r\n\r\n"},
	{"status below 100", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n"},
	{"signed status", "HTTP/1.1 +99 Odd\r\nContent-Length: 0\r\n\r\n"},
	{"lower-case version", "http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"short version", "HTTP/1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"not HTTP", "ICY 200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"header without a colon", "HTTP/1.1 200 OK\r\nX-Broken\r\nContent-Length: 0\r\n\r\n"},
	{"empty header name", "HTTP/1.1 200 OK\r\n: value\r\nContent-Length: 0\r\n\r\n"},
	{"tab in a header name", "HTTP/1.1 200 OK\r\nX\tName: 1\r\nContent-Length: 0\r\n\r\n"},
	{"separator in a header name", "HTTP/1.1 200 OK\r\nX(Name): 1\r\nContent-Length: 0\r\n\r\n"},
	{"first header line folded", "HTTP/1.1 200 OK\r\n X: 1\r\nContent-Length: 0\r\n\r\n"},
	{"control byte in a value", "HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 0\r\n\r\n"},
	{"DEL in a value", "HTTP/1.1 200 OK\r\nX: a\x7fb\r\nContent-Length: 0\r\n\r\n"},
	{"NUL in a value", "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n"},
	{"bare CR in a value", "HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n"},
	{"two different Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"},
	{"Content-Length not a number", "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n"},
	{"negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
	{"signed Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"},
	{"empty Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n"},
	{"Content-Length with two numbers", "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\nok"},
	{"Content-Length over 63 bits", "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n"},
	{"Content-Length bad beside chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
	{"unsupported Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok"},
	{"Transfer-Encoding twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
	{"Transfer-Encoding with two codings", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
	{"chunk size not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"},
	{"chunk line with a bare LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n"},
	{"chunk without its CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX0\r\n\r\n"},
	{"chunk size over 64 bits", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nok\r\n0\r\n\r\n"},
	{"malformed trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Broken\r\n\r\n"},
	{"trailer cut off", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"},
	{"Trailer naming Content-Length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X, content-length\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
	{"body shorter than Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"},
	{"head cut off", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"},
	{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
	{"malformed after 103", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"},
	{"bad Content-Length on a 103", "HTTP/1.1 103 Early Hints\r\nContent-Length: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"headers over 64 KiB (and the read buffer)", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Filler: "+strings.Repeat("f", 1000)+"\r\n", 80) + "Content-Length: 0\r\n\r\n"},
}

// acceptedHeads are app responses net/http's ReadResponse takes in ways
// worth pinning: FuzzResponseHead starts from them.
var acceptedHeads = []string{
	"HTTP/1.1 204 No Content\r\nDate: Thu, 03 Dec 2026 00:00:00 GMT\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\nSet-Cookie: a=1\r\nX: y\r\nset-cookie: b=2\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length:  2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\nTrailer: X-T\r\n\r\n2;ext\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Folded: a \r\n  b\r\n\tc\r\n \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Space : kept as sent\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
	"HTTP/1.1  201  Created twice spaced\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close, X-Named\r\nX-Named: 1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: X-Named, keep-alive\r\nX-Named: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\n\r\nuntil the end",
	"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", // unsolicited: not pooled
	"HTTP/1.1 200 OK\r\nX-Obs-Text: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 410 Gone\r\nContent-Length: 4\r\n\r\ngone",
}

// TestMalformedResponseHeads: every malformed head from the app is a 502
// upstream_error for the sender, never a 2xx, and the delivery is not
// remembered (the sender's retry is forwarded again).
func TestMalformedResponseHeads(t *testing.T) {
	for _, tt := range malformedHeads {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRig(t, rawApp([]byte(tt.raw), "close"), func(o *Options) { o.UpstreamTimeout = 2 * time.Second; o.Now = nil })
			for attempt := range 2 {
				got := rg.post(t, "/hook", signed(testKey, "msg_malformed", time.Now(), validBody), validBody)
				if got.Status != http.StatusBadGateway || got.Reason != ReasonUpstreamError {
					t.Errorf("attempt %d: got %d %q (%s), want 502 %s", attempt, got.Status, got.Reason, got.Detail, ReasonUpstreamError)
				}
				if n := len(rg.app.requests()); n != attempt+1 {
					t.Fatalf("attempt %d: app received %d requests, want %d", attempt, n, attempt+1)
				}
			}
		})
	}
}

// fakeConn is a net.Conn that reads r and discards writes.
type fakeConn struct {
	r      io.Reader
	closed bool
}

func (c *fakeConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *fakeConn) Close() error                     { c.closed = true; return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return nil }
func (c *fakeConn) RemoteAddr() net.Addr             { return nil }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// relayed is what the sender gets for an app response, and whether the
// connection to the app went back to the pool.
type relayed struct {
	Status int
	Header http.Header
	Body   string
	Pooled bool
}

// relayExchange runs raw through the exchange path and writeResponse.
func relayExchange(raw []byte) (relayed, error) {
	conn := &fakeConn{r: bytes.NewReader(raw)}
	cc := &clientConn{conn: conn}
	cc.read.r = conn
	cc.br = bufio.NewReaderSize(&cc.read, 8<<10)
	c := &Client{}
	cc.read.limit = maxResponseHeaderBytes
	err := cc.readFinalHead()
	cc.read.limit = 0
	if err != nil {
		return relayed{}, err
	}
	ur, err := c.readBody(cc)
	if err != nil {
		return relayed{}, err
	}
	rec := httptest.NewRecorder()
	if err, _ := writeResponse(rec, ur); err != nil {
		return relayed{}, err
	}
	c.mu.Lock() // (the pool's sweep may run meanwhile)
	pooled := len(c.idle) == 1
	c.mu.Unlock()
	c.CloseIdleConnections()
	return relayed{rec.Code, rec.Header(), rec.Body.String(), pooled}, nil
}

// relayReference is what postern made of raw before the exchange path:
// http.ReadResponse (1xx skipped, 101 refused), the body read to its end,
// the connection pooled when the response allowed it and nothing followed,
// and the header rules of writeResponse at the time.
func relayReference(raw []byte) (relayed, error) {
	cr := &countingReader{r: bytes.NewReader(raw), limit: maxResponseHeaderBytes}
	br := bufio.NewReaderSize(cr, 8<<10)
	var resp *http.Response
	for {
		var err error
		if resp, err = http.ReadResponse(br, &http.Request{Method: http.MethodPost}); err != nil {
			return relayed{}, err
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return relayed{}, errors.New("switched protocols")
		}
		if resp.StatusCode >= 200 || resp.StatusCode < 100 {
			break
		}
	}
	cr.limit = 0
	if resp.StatusCode < 100 {
		return relayed{}, errors.New("status below 100") // the one difference, on purpose
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return relayed{}, err
	}
	pooled := !resp.Close && br.Buffered() == 0
	h := http.Header{}
	for k, v := range resp.Header {
		h[k] = v
	}
	for _, c := range resp.Header["Connection"] {
		for name := range strings.SplitSeq(c, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	return relayed{resp.StatusCode, h, string(body), pooled}, nil
}

// FuzzResponseHead holds the exchange path's reading of an app response
// to net/http's: the same responses refused, and for the others the same
// status, headers, body and connection reuse for the sender.
func FuzzResponseHead(f *testing.F) {
	for _, tt := range malformedHeads {
		if len(tt.raw) < 4<<10 {
			f.Add([]byte(tt.raw))
		}
	}
	for _, raw := range acceptedHeads {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, wantErr := relayReference(raw)
		got, gotErr := relayExchange(raw)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("error %v, want %v", gotErr, wantErr)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("relayed response (-net/http +exchange):\n%s", diff)
		}
	})
}

// TestAcceptedResponseHeads pins what some unusual but valid app
// responses become for the sender.
func TestAcceptedResponseHeads(t *testing.T) {
	tests := []struct {
		raw  string
		want relayed
	}{
		{acceptedHeads[1], relayed{200, http.Header{"Content-Type": {"text/plain"}, "Set-Cookie": {"a=1", "b=2"}, "X": {"y"},
			"Content-Length": {"5"}}, "hello", true}},
		{acceptedHeads[3], relayed{200, http.Header{"Content-Length": {"2"}}, "ok", true}},
		{acceptedHeads[5], relayed{200, http.Header{"X-Folded": {"a b c "}, "Content-Length": {"0"}}, "", true}},
		{acceptedHeads[10], relayed{200, http.Header{"X-Named": {"1"}, "Content-Length": {"0"}}, "", false}},
		{acceptedHeads[11], relayed{200, http.Header{"Content-Length": {"0"}}, "", true}},
		{acceptedHeads[12], relayed{200, http.Header{"Content-Length": {"2"}}, "ok", true}},
		{acceptedHeads[14], relayed{200, http.Header{"Content-Length": {"13"}}, "until the end", false}},
		{acceptedHeads[17], relayed{202, http.Header{"Content-Length": {"2"}}, "ok", true}},
		{acceptedHeads[19], relayed{200, http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"no-cache"}, "Content-Length": {"0"}}, "", true}},
		{acceptedHeads[20], relayed{200, http.Header{"Content-Length": {"0"}}, "", false}},
	}
	for _, tt := range tests {
		got, err := relayExchange([]byte(tt.raw))
		if err != nil {
			t.Errorf("%q: %v", tt.raw, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tt.raw, diff)
		}
	}
}

// TestResponseHeadAllocs: reading a head and holding a small body costs
// the upstreamResponse and one string for all of its header, however long
// the names.
func TestResponseHeadAllocs(t *testing.T) {
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Security-Policy-Report-Only: default-src 'self'\r\n" +
		"Date: Thu, 03 Dec 2026 00:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	conn := &fakeConn{}
	cc := &clientConn{conn: conn}
	cc.read.r = conn
	c := &Client{}
	r := bytes.NewReader(raw)
	conn.r = r
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(raw)
		cc.br = getReader(&cc.read) // put (in readBody) pooled the last one
		c.idle = c.idle[:0]
		if err := cc.readFinalHead(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.readBody(cc); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 { // upstreamResponse, the header string, the body
		t.Errorf("%.0f allocations per response, want at most 3", allocs)
	}
}
