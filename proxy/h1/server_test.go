package h1_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postern-dev/postern/proxy/h1"
)

func TestBasicRequest(t *testing.T) {
	h := newRecorder()
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.seen <- record(r)
		w.Header().Set("X-Reply", "yes")
		w.Header().Add("X-Multi", "1")
		w.Header().Add("X-Multi", "2")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "created")
	}), nil)
	c := dial(t, ts.addr)
	body := `{"type":"invoice.paid"}`
	before := time.Now().Add(-time.Second)
	c.send("POST /hooks/stripe?x=1&y=%20 HTTP/1.1\r\n" +
		"Host: Example.COM:8080\r\n" +
		"svix-id: msg_1\r\n" +
		"SVIX-TIMESTAMP: 1700000000\r\n" +
		"x-custom-header:   padded value \t\r\n" +
		"X-List: a\r\n" +
		"x-list: b\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"\r\n" + body)
	resp, got := c.mustRead("POST")
	after := time.Now().Add(time.Second)

	want := seenReq{
		Method: "POST", RequestURI: "/hooks/stripe?x=1&y=%20", Path: "/hooks/stripe", RawQuery: "x=1&y=%20",
		Host: "Example.COM:8080", Proto: "HTTP/1.1", ProtoMinor: 1,
		RemoteAddr: c.conn.LocalAddr().String(),
		Header: http.Header{
			"Svix-Id":         {"msg_1"},
			"Svix-Timestamp":  {"1700000000"},
			"X-Custom-Header": {"padded value"},
			"X-List":          {"a", "b"},
			"Content-Type":    {"application/json"},
			"Content-Length":  {strconv.Itoa(len(body))},
		},
		ContentLength: int64(len(body)),
		Body:          body,
	}
	if diff := cmp.Diff(want, h.next(t)); diff != "" {
		t.Errorf("the handler saw (-want +got):\n%s", diff)
	}

	if resp.StatusCode != http.StatusCreated {
		t.Errorf("status = %d, want 201", resp.StatusCode)
	}
	if got != "created" {
		t.Errorf("body = %q, want %q", got, "created")
	}
	if resp.ContentLength != 7 || resp.Header.Get("Content-Length") != "7" {
		t.Errorf("Content-Length = %d (header %q), want 7", resp.ContentLength, resp.Header.Get("Content-Length"))
	}
	if resp.TransferEncoding != nil {
		t.Errorf("TransferEncoding = %q, want none", resp.TransferEncoding)
	}
	if v := resp.Header.Get("X-Reply"); v != "yes" {
		t.Errorf("X-Reply = %q, want yes", v)
	}
	if v := resp.Header.Values("X-Multi"); !cmp.Equal(v, []string{"1", "2"}) {
		t.Errorf("X-Multi = %q, want [1 2]", v)
	}
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		t.Errorf("Date header %q: %v", resp.Header.Get("Date"), err)
	} else if date.Before(before.Truncate(time.Second)) || date.After(after) {
		t.Errorf("Date = %v, want about %v", date, before)
	}
	if resp.Close {
		t.Error("the response closes the connection; want keep-alive")
	}
}

func TestKeepAlive(t *testing.T) {
	h := newRecorder()
	ts := startServer(t, h, nil)
	c := dial(t, ts.addr)
	for i := range 3 {
		path := "/r" + strconv.Itoa(i)
		body := strings.Repeat("b", i)
		c.send("POST " + path + " HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(i) + "\r\n\r\n" + body)
		resp, got := c.mustRead("POST")
		if resp.StatusCode != 200 || got != "ok "+path || resp.Close {
			t.Fatalf("response %d: status %d, body %q, close %v; want 200, %q, keep-alive", i, resp.StatusCode, got, resp.Close, "ok "+path)
		}
		s := h.next(t)
		if s.Path != path || s.Body != body || s.RemoteAddr != c.conn.LocalAddr().String() {
			t.Errorf("request %d: handler saw %s body %q from %s", i, s.Path, s.Body, s.RemoteAddr)
		}
	}
}

// TestPipelined: requests sent together are answered in order, and each
// is seen as itself, though the connection reuses one Request, URL, header
// map and slab of header values: nothing of a query, a header, a chunked
// body or a length carries over.
func TestPipelined(t *testing.T) {
	h := newRecorder()
	ts := startServer(t, h, nil)
	c := dial(t, ts.addr)
	c.send("POST /first?x=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nContent-Length: 5\r\nX-B: 2\r\nX-A: 3\r\n\r\nhello" +
		"POST /second HTTP/1.1\r\nHost: a\r\nX-C: 4\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
		"GET /third HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []struct {
		path, query, body string
		length            int64
		te                []string
		header            http.Header
	}{
		{"/first", "x=1", "hello", 5, nil, http.Header{"X-A": {"1", "3"}, "X-B": {"2"}, "Content-Length": {"5"}}},
		{"/second", "", "abc", -1, []string{"chunked"}, http.Header{"X-C": {"4"}}},
		{"/third", "", "", 0, nil, http.Header{}},
	} {
		resp, got := c.mustRead("POST")
		if resp.StatusCode != 200 || got != "ok "+want.path || resp.Close {
			t.Fatalf("status %d, body %q, close %v; want 200, %q, keep-alive", resp.StatusCode, got, resp.Close, "ok "+want.path)
		}
		s := h.next(t)
		if s.Path != want.path || s.RawQuery != want.query || s.Body != want.body || s.BodyErr != "" ||
			s.ContentLength != want.length || !slices.Equal(s.TransferEncoding, want.te) {
			t.Errorf("handler saw %s?%s body %q (err %q) length %d coding %v, want %s?%s body %q length %d coding %v",
				s.Path, s.RawQuery, s.Body, s.BodyErr, s.ContentLength, s.TransferEncoding,
				want.path, want.query, want.body, want.length, want.te)
		}
		if diff := cmp.Diff(want.header, s.Header); diff != "" {
			t.Errorf("%s: header (-want +got):\n%s", want.path, diff)
		}
	}
	h.none(t)
}

func TestChunkedRequest(t *testing.T) {
	tests := []struct {
		name, chunks, want string
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"several chunks", "3\r\nabc\r\nA\r\n0123456789\r\n1\r\nZ\r\n0\r\n\r\n", "abc0123456789Z"},
		{"upper and lower case hex, leading zeros", "00b\r\nhello world\r\n0000C\r\n=...........\r\n0\r\n\r\n", "hello world=..........."},
		{"extensions", "3;foo=bar\r\nabc\r\n2 ; name ; k=v\r\nde\r\n1;x\r\nf\r\n0;last\r\n\r\n", "abcdef"},
		{"trailers", "4\r\nwxyz\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n", "wxyz"},
		{"no data", "0\r\n\r\n", ""},
		{"CRLF inside the data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRecorder()
			ts := startServer(t, h, nil)
			c := dial(t, ts.addr)
			c.send("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n" + tt.chunks +
				"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, _ := c.mustRead("POST")
			s := h.next(t)
			if s.Body != tt.want || s.BodyErr != "" {
				t.Errorf("handler read %q (err %q), want %q", s.Body, s.BodyErr, tt.want)
			}
			if s.ContentLength != -1 || !cmp.Equal(s.TransferEncoding, []string{"chunked"}) {
				t.Errorf("ContentLength %d, TransferEncoding %q; want -1, [chunked]", s.ContentLength, s.TransferEncoding)
			}
			if diff := cmp.Diff(http.Header{"X-A": {"b"}}, s.Header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if resp.StatusCode != 200 || resp.Close {
				t.Errorf("status %d, close %v; want 200, keep-alive", resp.StatusCode, resp.Close)
			}
			// The whole body was consumed: the next request starts right after it.
			if _, got := c.mustRead("GET"); got != "ok /next" {
				t.Errorf("second response body %q, want %q", got, "ok /next")
			}
			if s := h.next(t); s.Path != "/next" {
				t.Errorf("second request: handler saw %s", s.Path)
			}
		})
	}
}

func TestChunkedRequestMalformed(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	tests := []struct {
		name     string
		chunks   string
		truncate bool   // the client closes its side after chunks
		want     string // what the handler reads before the error
	}{
		{"bare LF after chunk size", "5\nhello\r\n0\r\n\r\n", false, ""},
		{"bare LF after a later chunk size", "2\r\nhe\r\n3\nllo\r\n0\r\n\r\n", false, "he"},
		{"bare LF after last chunk", "2\r\nhe\r\n0\n\r\n", false, "he"},
		{"bare CR in chunk size line", "5\r\r\nhello\r\n0\r\n\r\n", false, ""},
		{"bare LF after chunk data", "5\r\nhello\n0\r\n\r\n", false, "hello"},
		{"CR without LF after chunk data", "5\r\nhello\rX0\r\n\r\n", false, "hello"},
		{"missing CRLF after chunk data", "5\r\nhello0\r\n\r\n", false, "hello"},
		{"data longer than the chunk size", "3\r\nhello\r\n0\r\n\r\n", false, "hel"},
		{"non-hex size", "g\r\nhello\r\n0\r\n\r\n", false, ""},
		{"0x size", "0x5\r\nhello\r\n0\r\n\r\n", false, ""},
		{"negative size", "-5\r\nhello\r\n0\r\n\r\n", false, ""},
		{"plus size", "+5\r\nhello\r\n0\r\n\r\n", false, ""},
		{"space before size", " 5\r\nhello\r\n0\r\n\r\n", false, ""},
		{"empty size", "\r\nhello\r\n0\r\n\r\n", false, ""},
		{"size overflow, 16 digits", "1000000000000005\r\nhello\r\n0\r\n\r\n", false, ""},
		{"size overflow, 17 digits", "10000000000000005\r\nhello\r\n0\r\n\r\n", false, ""},
		{"size overflow, 16 digits wrapping to small", "ffffffffffffffff\r\nhello\r\n0\r\n\r\n", false, ""},
		{"quoted chunk extension", "5;name=\"va;lue\"\r\nhello\r\n0\r\n\r\n", false, ""},
		{"quoted extension on last chunk", "2\r\nhe\r\n0;a=\"b\"\r\n\r\n", false, "he"},
		{"bare LF in trailer", "2\r\nhe\r\n0\r\nX-T: v\n\r\n", false, "he"},
		{"bare CR in trailer", "2\r\nhe\r\n0\r\nX-T: a\rb\r\n\r\n", false, "he"},
		{"truncated in chunk data", "5\r\nhel", true, "hel"},
		{"truncated in chunk size", "5\r\nhello\r\n1", true, "hello"},
		{"truncated before CRLF after data", "5\r\nhello", true, "hello"},
		{"truncated in trailers", "5\r\nhello\r\n0\r\nX-T: v\r\n", true, "hello"},
		{"truncated before last chunk", "5\r\nhello\r\n", true, "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRecorder()
			ts := startServer(t, h, nil)
			c := dial(t, ts.addr)
			req := "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + tt.chunks
			if !tt.truncate {
				req += smuggled
			}
			c.send(req)
			if tt.truncate {
				c.conn.CloseWrite()
			}
			resp, _, err := c.read("POST")
			if err != nil {
				t.Fatalf("reading the response: %v", err)
			}
			s := h.next(t)
			if s.BodyErr == "" {
				t.Errorf("the handler read %q without error", s.Body)
			}
			if s.Body != tt.want {
				t.Errorf("the handler read %q before the error, want %q", s.Body, tt.want)
			}
			if tt.truncate && s.BodyErr != io.ErrUnexpectedEOF.Error() {
				t.Errorf("body error %q, want %q", s.BodyErr, io.ErrUnexpectedEOF)
			}
			if !resp.Close {
				t.Error("the response does not carry Connection: close")
			}
			c.expectClosed()
			ts.serverDone(c)
			h.none(t)
		})
	}
}

// TestRefusals covers requests the server answers itself: the handler is
// not called, the answer's body comes from ErrorBody, and the connection is
// closed, so that nothing sent after the request is served.
func TestRefusals(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	const post = "POST / HTTP/1.1\r\nHost: a\r\n"
	tests := []struct {
		name   string
		req    string
		status int
	}{
		{"Content-Length and Transfer-Encoding", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"Transfer-Encoding and Content-Length", post + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400},
		{"Content-Length: 0 and Transfer-Encoding", post + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"two Content-Length, different", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
		{"two Content-Length, identical", post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
		{"two Content-Length, different case", post + "content-length: 5\r\nCONTENT-LENGTH: 5\r\n\r\nhello", 400},
		{"Content-Length list", post + "Content-Length: 5, 5\r\n\r\nhello", 400},
		{"Content-Length +5", post + "Content-Length: +5\r\n\r\nhello", 400},
		{"Content-Length ' 5 5'", post + "Content-Length:  5 5\r\n\r\nhello", 400},
		{"Content-Length -1", post + "Content-Length: -1\r\n\r\n", 400},
		{"Content-Length 0x10", post + "Content-Length: 0x10\r\n\r\n0123456789abcdef", 400},
		{"Content-Length empty", post + "Content-Length: \r\n\r\n", 400},
		{"Content-Length too large", post + "Content-Length: 99999999999999999999\r\n\r\n", 400},
		{"Transfer-Encoding gzip", post + "Transfer-Encoding: gzip\r\n\r\n", 501},
		{"Transfer-Encoding chunked, identity", post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501},
		{"Transfer-Encoding gzip, chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"Transfer-Encoding xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501},
		{"Transfer-Encoding identity", post + "Transfer-Encoding: identity\r\n\r\n", 501},
		{"Transfer-Encoding empty", post + "Transfer-Encoding: \r\n\r\n", 501},
		{"two Transfer-Encoding", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"space before colon", post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
		{"tab before colon", post + "Content-Length\t: 5\r\n\r\nhello", 400},
		{"no colon", post + "X-Header value\r\n\r\n", 400},
		{"empty header name", post + ": value\r\n\r\n", 400},
		{"obs-fold with space", post + "X-A: a\r\n b\r\n\r\n", 400},
		{"obs-fold with tab", post + "X-A: a\r\n\tTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"obs-fold as first header", "POST / HTTP/1.1\r\n Host: a\r\nHost: a\r\n\r\n", 400},
		{"NUL in header value", post + "X-A: a\x00b\r\n\r\n", 400},
		{"bare CR in header value", post + "X-A: a\rb\r\n\r\n", 400},
		{"bare CR at end of header", post + "X-A: a\r\r\n\r\n", 400},
		{"control character in header value", post + "X-A: a\x01b\r\n\r\n", 400},
		{"DEL in header value", post + "X-A: a\x7fb\r\n\r\n", 400},
		{"NUL in header name", post + "X-\x00A: b\r\n\r\n", 400},
		{"missing Host", "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400},
		{"two Host", post + "Host: b\r\n\r\n", 400},
		{"two Host, identical", post + "host: a\r\n\r\n", 400},
		{"Host with a space", "POST / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"two spaces after method", "POST  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"two spaces before version", "POST /  HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"trailing space after version", "POST / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
		{"leading space", " POST / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"missing version", "POST /\r\nHost: a\r\n\r\n", 400},
		{"missing target", "POST HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"lower-case version", "POST / http/1.1\r\nHost: a\r\n\r\n", 400},
		{"tab separator", "POST\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bare CR in request line", "POST /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"control character in target", "POST /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"HTTP/2.0", "POST / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"HTTP/1.2", "POST / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
		{"HTTP/0.9", "POST / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
		{"headers larger than MaxHeaderBytes", post + "X-Big: " + strings.Repeat("x", 2000) + "\r\n\r\n", 431},
		{"many headers larger than MaxHeaderBytes", post + strings.Repeat("X-H: 0123456789\r\n", 100) + "\r\n", 431},
		{"request line larger than MaxHeaderBytes", "POST /" + strings.Repeat("p", 2000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 431},
		{"Expect something else", post + "Expect: something-else\r\nContent-Length: 5\r\n\r\nhello", 417},
	}
	type errorCall struct {
		status int
		detail string
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRecorder()
			calls := make(chan errorCall, 8)
			ts := startServer(t, h, func(s *h1.Server) {
				s.MaxHeaderBytes = 1024
				s.ErrorBody = func(status int, detail string) (string, []byte) {
					calls <- errorCall{status, detail}
					return problemType, problemBody(status, detail)
				}
			})
			c := dial(t, ts.addr)
			c.send(tt.req + smuggled)
			resp, body := c.mustRead("POST")
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			var call errorCall
			select {
			case call = <-calls:
			default:
				t.Fatal("ErrorBody was not called")
			}
			if call.status != tt.status || call.detail == "" {
				t.Errorf("ErrorBody(%d, %q), want status %d and a detail", call.status, call.detail, tt.status)
			}
			if want := string(problemBody(call.status, call.detail)); body != want {
				t.Errorf("body = %q, want %q", body, want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != problemType {
				t.Errorf("Content-Type = %q, want %q", ct, problemType)
			}
			if resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length = %d, want %d", resp.ContentLength, len(body))
			}
			if !resp.Close {
				t.Error("the answer does not carry Connection: close")
			}
			c.expectClosed()
			ts.serverDone(c)
			h.none(t)
			select {
			case call := <-calls:
				t.Errorf("ErrorBody called again: %d %q", call.status, call.detail)
			default:
			}
		})
	}
}

func TestDefaultErrorBody(t *testing.T) {
	h := newRecorder()
	ts := startServer(t, h, nil)
	c := dial(t, ts.addr)
	c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
	resp, body := c.mustRead("POST")
	if resp.StatusCode != 400 || !strings.HasPrefix(body, "Bad Request: ") || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("got %d %q (%s), want 400 \"Bad Request: ...\" as text/plain", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	c.expectClosed()
	ts.serverDone(c)
	h.none(t)
}

func TestLeadingEmptyLinesIgnored(t *testing.T) {
	h := newRecorder()
	ts := startServer(t, h, nil)
	c := dial(t, ts.addr)
	c.send("\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.mustRead("GET"); resp.StatusCode != 200 || body != "ok /x" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if s := h.next(t); s.Path != "/x" {
		t.Errorf("handler saw %s", s.Path)
	}
}

func TestExpectContinue(t *testing.T) {
	h := newRecorder()
	ts := startServer(t, h, nil)
	c := dial(t, ts.addr)
	c.send("POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	// The body is not sent yet: the handler's Read makes the server send 100.
	resp, _ := c.mustRead("POST")
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("first response status %d, want 100", resp.StatusCode)
	}
	c.send("hello")
	resp, body := c.mustRead("POST")
	if resp.StatusCode != 200 || body != "ok /e" || resp.Close {
		t.Errorf("final response %d %q close %v, want 200 %q keep-alive", resp.StatusCode, body, resp.Close, "ok /e")
	}
	if s := h.next(t); s.Body != "hello" || s.BodyErr != "" {
		t.Errorf("handler read %q (err %q), want hello", s.Body, s.BodyErr)
	}
	// The connection carries the next request.
	c.send("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.mustRead("GET"); resp.StatusCode != 200 || body != "ok /next" {
		t.Errorf("next response %d %q", resp.StatusCode, body)
	}
}

func TestExpectContinueNotRead(t *testing.T) {
	called := make(chan struct{}, 4)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called <- struct{}{}
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "no")
	}), nil)
	c := dial(t, ts.addr)
	c.send("POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, body := c.mustRead("POST")
	if resp.StatusCode != http.StatusUnauthorized || body != "no" {
		t.Fatalf("first response %d %q, want the final 401 (no 100 Continue)", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Error("the response does not carry Connection: close")
	}
	c.expectClosed()
	ts.serverDone(c)
	if len(called) != 1 {
		t.Errorf("handler called %d times, want 1", len(called))
	}
}

func TestHTTP10(t *testing.T) {
	t.Run("small", func(t *testing.T) {
		h := newRecorder()
		ts := startServer(t, h, nil)
		c := dial(t, ts.addr)
		c.send("POST /old HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc" +
			"GET /smuggled HTTP/1.0\r\n\r\n")
		resp, body := c.mustRead("POST")
		if resp.StatusCode != 200 || body != "ok /old" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		if !resp.Close {
			t.Error("the response does not carry Connection: close")
		}
		c.expectClosed()
		ts.serverDone(c)
		s := h.next(t)
		if s.Proto != "HTTP/1.0" || s.ProtoMinor != 0 || s.Body != "abc" || s.Host != "" {
			t.Errorf("handler saw %s body %q host %q", s.Proto, s.Body, s.Host)
		}
		h.none(t)
	})
	t.Run("large response", func(t *testing.T) {
		big := strings.Repeat("0123456789", 1000)
		ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, big[:5000])
			io.WriteString(w, big[5000:])
		}), nil)
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.0\r\n\r\n")
		resp, body := c.mustRead("GET")
		if resp.TransferEncoding != nil || resp.ContentLength != -1 || !resp.Close {
			t.Errorf("TransferEncoding %q, ContentLength %d, Close %v; want a body ending with the connection", resp.TransferEncoding, resp.ContentLength, resp.Close)
		}
		if body != big {
			t.Errorf("body of %d bytes, want %d", len(body), len(big))
		}
	})
}

func TestConnectionClose(t *testing.T) {
	const next = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	tests := []struct {
		name, req     string
		handlerCloses bool
	}{
		{"client Connection: close", "POST /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi", false},
		{"client Connection list with close", "POST /c HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\nContent-Length: 2\r\n\r\nhi", false},
		{"handler Connection: close", "POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRecorder()
			ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.handlerCloses {
					w.Header().Set("Connection", "close")
				}
				h.ServeHTTP(w, r)
			}), nil)
			c := dial(t, ts.addr)
			c.send(tt.req + next)
			resp, body := c.mustRead("POST")
			if resp.StatusCode != 200 || body != "ok /c" {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
			if !resp.Close {
				t.Error("the response does not carry Connection: close")
			}
			c.expectClosed()
			ts.serverDone(c)
			if s := h.next(t); s.Body != "hi" {
				t.Errorf("handler read %q", s.Body)
			}
			h.none(t)
		})
	}
}

func TestResponseFraming(t *testing.T) {
	big := strings.Repeat("abcdefghij", 700) // 7000 bytes
	t.Run("large body without Content-Length is chunked", func(t *testing.T) {
		ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < len(big); i += 1000 {
				io.WriteString(w, big[i:i+1000])
			}
		}), nil)
		c := dial(t, ts.addr)
		c.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n")
		for range 2 {
			resp, body := c.mustRead("GET")
			if !cmp.Equal(resp.TransferEncoding, []string{"chunked"}) || resp.ContentLength != -1 || resp.Close {
				t.Errorf("TransferEncoding %q ContentLength %d Close %v, want chunked keep-alive", resp.TransferEncoding, resp.ContentLength, resp.Close)
			}
			if body != big {
				t.Errorf("body of %d bytes differs from the %d written", len(body), len(big))
			}
		}
	})
	t.Run("Flush makes a chunked response", func(t *testing.T) {
		ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "first,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "second")
		}), nil)
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, body := c.mustRead("GET")
		if !cmp.Equal(resp.TransferEncoding, []string{"chunked"}) || body != "first,second" {
			t.Errorf("TransferEncoding %q body %q", resp.TransferEncoding, body)
		}
	})
	for _, size := range []int{0, 1, 4096} {
		t.Run("body of "+strconv.Itoa(size)+" bytes without Content-Length", func(t *testing.T) {
			ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				half := size / 2
				io.WriteString(w, big[:half])
				io.WriteString(w, big[half:size])
			}), nil)
			c := dial(t, ts.addr)
			c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, body := c.mustRead("GET")
			if resp.TransferEncoding != nil || resp.ContentLength != int64(size) || resp.Header.Get("Content-Length") != strconv.Itoa(size) {
				t.Errorf("TransferEncoding %q ContentLength %d, want Content-Length %d", resp.TransferEncoding, resp.ContentLength, size)
			}
			if body != big[:size] {
				t.Errorf("body of %d bytes, want %d", len(body), size)
			}
		})
	}
	t.Run("declared Content-Length, fewer bytes written", func(t *testing.T) {
		ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "12345")
		}), nil)
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, body, err := c.read("GET")
		if err == nil {
			t.Fatalf("read a complete response %d %q, want an unexpected EOF", resp.StatusCode, body)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) || body != "12345" {
			t.Errorf("read %q, %v; want %q, unexpected EOF", body, err, "12345")
		}
		c.expectClosed()
	})
	t.Run("writing more than the declared Content-Length", func(t *testing.T) {
		type result struct {
			n   int
			err error
		}
		results := make(chan result, 2)
		ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5")
			n, err := io.WriteString(w, "123456")
			results <- result{n, err}
			n, err = io.WriteString(w, "12345")
			results <- result{n, err}
		}), nil)
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, body := c.mustRead("GET")
		if r := <-results; r.n != 0 || r.err != http.ErrContentLength {
			t.Errorf("Write of 6 bytes with Content-Length 5 = %d, %v; want 0, http.ErrContentLength", r.n, r.err)
		}
		if r := <-results; r.n != 5 || r.err != nil {
			t.Errorf("Write of 5 bytes = %d, %v; want 5, nil", r.n, r.err)
		}
		if resp.ContentLength != 5 || body != "12345" || resp.Close {
			t.Errorf("got ContentLength %d body %q close %v", resp.ContentLength, body, resp.Close)
		}
	})
	t.Run("204 has no body and no Content-Length", func(t *testing.T) {
		errs := make(chan error, 1)
		ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/next" {
				io.WriteString(w, "next")
				return
			}
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(http.StatusNoContent)
			_, err := io.WriteString(w, "hello")
			errs <- err
		}), nil)
		c := dial(t, ts.addr)
		c.send("DELETE / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, body := c.mustRead("DELETE")
		if resp.StatusCode != 204 || body != "" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		if v, ok := resp.Header["Content-Length"]; ok {
			t.Errorf("204 carries Content-Length %q", v)
		}
		if err := <-errs; err != http.ErrBodyNotAllowed {
			t.Errorf("Write on a 204 returned %v, want http.ErrBodyNotAllowed", err)
		}
		// Nothing was sent after the 204's header: the next response parses.
		if resp, body := c.mustRead("GET"); resp.StatusCode != 200 || body != "next" {
			t.Errorf("next response %d %q", resp.StatusCode, body)
		}
	})
	t.Run("HEAD gets headers and no body", func(t *testing.T) {
		type result struct {
			n   int
			err error
		}
		results := make(chan result, 4)
		ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test", "1")
			if r.URL.Path == "/declared" {
				w.Header().Set("Content-Length", "7000")
			}
			n, err := io.WriteString(w, big)
			results <- result{n, err}
		}), nil)
		c := dial(t, ts.addr)
		c.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\nHEAD /declared HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, body := c.mustRead("HEAD")
		if resp.StatusCode != 200 || body != "" || resp.Header.Get("X-Test") != "1" || resp.TransferEncoding != nil {
			t.Errorf("HEAD: %d %q X-Test %q TE %q", resp.StatusCode, body, resp.Header.Get("X-Test"), resp.TransferEncoding)
		}
		resp, body = c.mustRead("HEAD")
		if resp.StatusCode != 200 || body != "" || resp.ContentLength != 7000 {
			t.Errorf("HEAD with Content-Length: %d %q ContentLength %d", resp.StatusCode, body, resp.ContentLength)
		}
		// No body bytes followed the HEAD responses.
		if resp, body := c.mustRead("GET"); resp.StatusCode != 200 || body != big {
			t.Errorf("next response %d, body of %d bytes", resp.StatusCode, len(body))
		}
		// As net/http: Write on a HEAD response drops the bytes and succeeds.
		for range 3 {
			if r := <-results; r.n != len(big) || r.err != nil {
				t.Errorf("Write = %d, %v; want %d, nil", r.n, r.err, len(big))
			}
		}
	})
}

// TestResponseHeaders: the handler's headers cannot break the response's
// framing: values are sanitized, invalid names dropped, and the server owns
// Transfer-Encoding and Connection.
func TestResponseHeaders(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Injected", "a\r\nSet-Cookie: evil\x00b")
		h["Bad Name"] = []string{"v"}
		h["X-Split\r\nSet-Cookie"] = []string{"evil"}
		h.Set("Transfer-Encoding", "chunked")
		h.Set("Connection", "keep-alive")
		if r.URL.Path == "/bad-length" {
			h.Set("Content-Length", "abc")
		}
		io.WriteString(w, "body")
	}), nil)
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /bad-length HTTP/1.1\r\nHost: a\r\n\r\n")
	for range 2 {
		resp, body := c.mustRead("GET")
		if body != "body" || resp.ContentLength != 4 || resp.TransferEncoding != nil || resp.Close {
			t.Errorf("body %q ContentLength %d TransferEncoding %q Close %v; want \"body\", 4, none, keep-alive",
				body, resp.ContentLength, resp.TransferEncoding, resp.Close)
		}
		if v := resp.Header.Get("X-Injected"); v != "a  Set-Cookie: evil b" {
			t.Errorf("X-Injected = %q, want the CR, LF and NUL replaced by spaces", v)
		}
		for _, k := range []string{"Set-Cookie", "Bad Name", "X-Split", "Connection"} {
			if v, ok := resp.Header[k]; ok {
				t.Errorf("response carries %s: %q", k, v)
			}
		}
	}
}

func TestAbortHandler(t *testing.T) {
	tests := []struct {
		name  string
		flush bool
	}{{"flushed", true}, {"buffered", false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedBuffer
			ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/declared" {
					w.Header().Set("Content-Length", "100")
				}
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, "partial")
				if tt.flush {
					w.(http.Flusher).Flush()
				}
				panic(http.ErrAbortHandler)
			}), func(s *h1.Server) { s.ErrorLog = log.New(&logs, "", 0) })
			for _, path := range []string{"/", "/declared"} {
				c := dial(t, ts.addr)
				c.send("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
				resp, body, err := c.read("GET")
				if err == nil {
					t.Errorf("%s: read a complete response %d %q", path, resp.StatusCode, body)
				}
				c.expectClosed()
			}
			if logs.String() != "" {
				t.Errorf("http.ErrAbortHandler was logged: %q", logs.String())
			}
		})
	}
}

func TestHandlerPanic(t *testing.T) {
	var logs lockedBuffer
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			io.WriteString(w, "partial")
			panic("boom in handler")
		}
		io.WriteString(w, "fine")
	}), func(s *h1.Server) { s.ErrorLog = log.New(&logs, "", 0) })
	c := dial(t, ts.addr)
	c.send("GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body, err := c.read("GET"); err == nil {
		t.Errorf("read a complete response %d %q", resp.StatusCode, body)
	}
	c.expectClosed()
	if l := logs.String(); !strings.Contains(l, "panic") || !strings.Contains(l, "boom in handler") || !strings.Contains(l, c.conn.LocalAddr().String()) {
		t.Errorf("ErrorLog = %q, want the panic value and the client address", l)
	}
	// The server keeps serving.
	c2 := dial(t, ts.addr)
	c2.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c2.mustRead("GET"); resp.StatusCode != 200 || body != "fine" {
		t.Errorf("after the panic: %d %q", resp.StatusCode, body)
	}
}

func TestUnreadBody(t *testing.T) {
	t.Run("small body is discarded", func(t *testing.T) {
		seen := make(chan string, 4)
		ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- r.URL.Path
			if r.URL.Path == "/partial" {
				io.ReadFull(r.Body, make([]byte, 3))
			}
			io.WriteString(w, "ok "+r.URL.Path)
		}), nil)
		c := dial(t, ts.addr)
		body := strings.Repeat("GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 100)
		c.send("POST /unread HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body +
			"POST /partial HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body +
			"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
		for _, want := range []string{"/unread", "/partial", "/next"} {
			resp, got := c.mustRead("POST")
			if resp.StatusCode != 200 || got != "ok "+want || resp.Close {
				t.Errorf("got %d %q close %v, want 200 %q keep-alive", resp.StatusCode, got, resp.Close, "ok "+want)
			}
			if p := <-seen; p != want {
				t.Errorf("handler saw %s, want %s", p, want)
			}
		}
		if len(seen) != 0 {
			t.Errorf("handler saw %s", <-seen)
		}
	})
	t.Run("body over 256 KiB closes", func(t *testing.T) {
		seen := make(chan string, 4)
		ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- r.URL.Path
			io.WriteString(w, "ok")
		}), nil)
		c := dial(t, ts.addr)
		body := strings.Repeat("x", 300<<10)
		done := make(chan struct{})
		go func() {
			defer close(done)
			// Fails once the server closes without reading it all.
			io.WriteString(c.conn, "POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body+
				"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
		}()
		resp, got := c.mustRead("POST")
		if resp.StatusCode != 200 || got != "ok" {
			t.Errorf("got %d %q", resp.StatusCode, got)
		}
		if !resp.Close {
			t.Error("the response does not carry Connection: close")
		}
		c.expectClosed()
		<-done
		ts.serverDone(c)
		if p := <-seen; p != "/big" || len(seen) != 0 {
			t.Errorf("handler saw %s and %d more", p, len(seen))
		}
	})
}

func TestShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done "+r.URL.Path)
	}), nil)

	idle := dial(t, ts.addr)
	idle.send("GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := idle.mustRead("GET"); resp.Close {
		t.Fatal("the first response closes the connection; want it kept alive")
	}
	busy := dial(t, ts.addr)
	busy.send("GET /block HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered

	shutdown := make(chan error, 1)
	go func() { shutdown <- ts.srv.Shutdown(context.Background()) }()
	// The idle connection closes while the handler is still blocked.
	idle.expectClosed()
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(release)
	resp, body := busy.mustRead("GET")
	if body != "done /block" {
		t.Errorf("in-flight response body %q", body)
	}
	if !resp.Close {
		t.Error("the in-flight response does not carry Connection: close")
	}
	busy.expectClosed()
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not return")
	}
	select {
	case err := <-ts.serveErr:
		if err != http.ErrServerClosed {
			t.Errorf("Serve = %v, want http.ErrServerClosed", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Serve did not return")
	}
}

// TestShutdownNewConnection: a connection accepted before Shutdown whose
// first request has not arrived yet is not closed as idle: its request,
// sent after Shutdown began, is answered with Connection: close.
func TestShutdownNewConnection(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "late")
	}), nil)
	c := dial(t, ts.addr)
	local := c.conn.LocalAddr().String()
	for addr := range ts.ln.accepted {
		if addr == local {
			break
		}
	}
	shutdown := make(chan error, 1)
	go func() { shutdown <- ts.srv.Shutdown(context.Background()) }()
	select {
	case err := <-ts.serveErr: // the listener is closed: Shutdown has begun
		if err != http.ErrServerClosed {
			t.Errorf("Serve = %v, want http.ErrServerClosed", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Serve did not return")
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a new connection open", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := c.mustRead("GET")
	if body != "late" || !resp.Close {
		t.Errorf("got %q (Connection: close %v), want \"late\" with Connection: close", body, resp.Close)
	}
	c.expectClosed()
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not return")
	}
}

func TestShutdownContextExpires(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}), nil)
	t.Cleanup(func() { close(release) })
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	select {
	case err := <-ts.serveErr:
		if err != http.ErrServerClosed {
			t.Errorf("Serve = %v, want http.ErrServerClosed", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Serve did not return")
	}
}

func TestServeAfterClose(t *testing.T) {
	ts := startServer(t, http.NotFoundHandler(), nil)
	ts.srv.Close()
	if err := <-ts.serveErr; err != http.ErrServerClosed {
		t.Errorf("Serve = %v, want http.ErrServerClosed", err)
	}
}

// TestRefusalWithUnreadData: the answer to a refused request reaches the
// client even when much of what it sent was never read (the server closes
// its side gracefully rather than resetting the connection over the data).
func TestRefusalWithUnreadData(t *testing.T) {
	for _, tt := range []struct {
		name   string
		req    string
		status int
	}{
		{"headers too large", "POST / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-Filler: 0123456789abcdef0123456789abcdef\r\n", 4000) + "\r\n", 431},
		{"bad framing with a large body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\nContent-Length: 200000\r\n\r\n" + strings.Repeat("b", 200000), 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newRecorder()
			ts := startServer(t, h, func(s *h1.Server) { s.MaxHeaderBytes = 1024 })
			c := dial(t, ts.addr)
			done := make(chan struct{})
			go func() {
				defer close(done)
				io.WriteString(c.conn, tt.req)
			}()
			resp, _, err := c.read("POST")
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			if resp.StatusCode != tt.status || !resp.Close {
				t.Errorf("status %d close %v, want %d with Connection: close", resp.StatusCode, resp.Close, tt.status)
			}
			c.expectEOF()
			<-done
			ts.serverDone(c)
			h.none(t)
		})
	}
}
