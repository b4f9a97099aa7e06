package h1_test

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postern-dev/postern/proxy/h1"
)

// fuzzSeen is what the fuzz handler saw of one request.
type fuzzSeen struct {
	method, target   string
	contentLength    int64
	transferEncoding []string
	bodyLen          int
	bodyErr          error
}

// headerBlocks counts the places where a header block can end: a line feed
// followed by an empty line. The server accepts a bare LF as a line
// terminator (RFC 9112 section 2.2), so "\n\n" and "\n\r\n" both count;
// every request the server parses ends at a different one.
func headerBlocks(in []byte) int {
	n := 0
	for i, b := range in {
		if b != '\n' {
			continue
		}
		rest := in[i+1:]
		if bytes.HasPrefix(rest, []byte("\n")) || bytes.HasPrefix(rest, []byte("\r\n")) {
			n++
		}
	}
	return n
}

func FuzzServer(f *testing.F) {
	for _, seed := range []string{
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		// CL.TE and TE.CL
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
		// Obfuscated transfer codings.
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n1\r\nZ\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n1\r\nZ\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nX: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello",
		// Bare LF in chunked framing and headers.
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
		"POST / HTTP/1.1\nHost: a\nContent-Length: 2\n\nhiGET / HTTP/1.1\nHost: a\n\n",
		"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx\r\n0\r\n\r\n",
		"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}

	var (
		mu   sync.Mutex
		seen = map[string][]fuzzSeen{} // by client address
		logs lockedBuffer
	)
	srv := &h1.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			s := fuzzSeen{
				method: r.Method, target: r.RequestURI,
				contentLength:    r.ContentLength,
				transferEncoding: append([]string(nil), r.TransferEncoding...),
				bodyLen:          len(b),
				bodyErr:          err,
			}
			mu.Lock()
			seen[r.RemoteAddr] = append(seen[r.RemoteAddr], s)
			mu.Unlock()
			io.WriteString(w, "ok")
		}),
		ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout:       2 * time.Second,
		IdleTimeout:       2 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          log.New(&logs, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go srv.Serve(ln)
	f.Cleanup(func() { srv.Close() })

	f.Fuzz(func(t *testing.T, in []byte) {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		conn := nc.(*net.TCPConn)
		conn.SetDeadline(time.Now().Add(ioTimeout))
		local := conn.LocalAddr().String()
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			conn.Write(in) // fails if the server closes early
			conn.CloseWrite()
		}()
		// The server closes (or resets) the connection only after its
		// last handler returned.
		_, err = io.Copy(io.Discard, conn)
		<-wrote
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading the responses: %v", err)
		}
		mu.Lock()
		reqs := seen[local]
		delete(seen, local)
		mu.Unlock()

		if max := headerBlocks(in); len(reqs) > max {
			t.Errorf("the handler saw %d requests in input with %d header blocks: %+v", len(reqs), max, reqs)
		}
		for i, r := range reqs {
			if r.bodyLen > len(in) {
				t.Errorf("request %d: body of %d bytes from %d bytes of input", i, r.bodyLen, len(in))
			}
			if r.bodyErr != nil {
				if i != len(reqs)-1 {
					t.Errorf("request %d: a request was served after a body error (%v)", i, r.bodyErr)
				}
				continue
			}
			switch {
			case r.contentLength >= 0 && int64(r.bodyLen) != r.contentLength:
				t.Errorf("request %d: body of %d bytes with Content-Length %d", i, r.bodyLen, r.contentLength)
			case r.contentLength == -1 && (len(r.transferEncoding) != 1 || r.transferEncoding[0] != "chunked"):
				t.Errorf("request %d: unknown length without chunked coding (%q)", i, r.transferEncoding)
			case r.contentLength < -1:
				t.Errorf("request %d: ContentLength %d", i, r.contentLength)
			}
		}
		if l := logs.String(); strings.Contains(l, "panic") {
			t.Fatalf("the server logged a panic: %s", l)
		}
	})
}
