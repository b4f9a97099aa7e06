package h1_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postern-dev/postern/proxy/h1"
)

// TestDetachedLetsGoOfLargeOutput: a response whose bytes outgrow
// RetainedOut is the caller's to keep (the event loop writes it out over
// many rounds without copying it): the Detached's next responses do not
// write over it. A smaller one is the Detached's own and is reused.
func TestDetachedLetsGoOfLargeOutput(t *testing.T) {
	d := new(h1.Server).Detach("192.0.2.1:1234")
	respond := func(body string) []byte {
		t.Helper()
		w := detachedWriter(t, d)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		out, tail, keep := d.Finish()
		if tail != nil {
			t.Fatalf("Finish returned a tail of %d bytes, with no Refer", len(tail))
		}
		if !keep {
			t.Fatal("Finish: the connection cannot carry another request")
		}
		return out
	}
	large := strings.Repeat("L", h1.RetainedOut)
	out := respond(large)
	if cap(out) <= h1.RetainedOut {
		t.Fatalf("a response of %d bytes came in a buffer of %d", len(out), cap(out))
	}
	kept := bytes.Clone(out)
	respond(strings.Repeat("s", 100))
	respond(large)
	if !bytes.Equal(out, kept) {
		t.Error("the large response's bytes were written over by the next responses")
	}
	if !bytes.HasSuffix(out, []byte(large)) {
		t.Errorf("the large response ends %q, want its body", out[max(0, len(out)-20):])
	}

	small := respond("first")
	if cap(small) > h1.RetainedOut {
		t.Fatalf("a small response came in a buffer of %d", cap(small))
	}
	respond("again")
	if !bytes.HasSuffix(small, []byte("again")) {
		t.Errorf("a small response's buffer was not reused: %q", small)
	}
}

// TestDetachedRefer: with Refer, a body of at least the given size, framed
// by its Content-Length, comes back from Finish as the very bytes written,
// after a head that holds none of it; a smaller body, a chunked one, and
// bytes written after a referred body are copied into out in order.
func TestDetachedRefer(t *testing.T) {
	d := new(h1.Server).Detach("192.0.2.1:1234")
	respond := func(length int, writes ...[]byte) (out, tail []byte) {
		t.Helper()
		w := detachedWriter(t, d)
		d.Refer(1024)
		if length >= 0 {
			w.Header().Set("Content-Length", fmt.Sprint(length))
		}
		w.WriteHeader(http.StatusOK)
		for _, p := range writes {
			if _, err := w.Write(p); err != nil {
				t.Fatal(err)
			}
		}
		out, tail, keep := d.Finish()
		if !keep {
			t.Fatal("Finish: the connection cannot carry another request")
		}
		return bytes.Clone(out), tail
	}
	large := bytes.Repeat([]byte("L"), 2048)
	out, tail := respond(len(large), large)
	if &tail[0] != &large[0] || len(tail) != len(large) {
		t.Errorf("a 2 KiB body came back as %d bytes of tail, want the bytes written", len(tail))
	}
	if !bytes.HasSuffix(out, []byte("\r\n\r\n")) || !bytes.Contains(out, []byte("Content-Length: 2048\r\n")) {
		t.Errorf("out is %q, want the head alone", out)
	}

	small := []byte("small body")
	if out, tail := respond(len(small), small); tail != nil || !bytes.HasSuffix(out, small) {
		t.Errorf("a small body: tail of %d bytes, out %q; want it in out", len(tail), out)
	}
	unframed := bytes.Repeat([]byte("U"), 8<<10) // past what is held to frame it with a Content-Length
	if out, tail := respond(-1, unframed); tail != nil || !bytes.Contains(out, []byte("Transfer-Encoding: chunked")) || !bytes.HasSuffix(out, []byte("\r\n0\r\n\r\n")) {
		t.Errorf("a chunked body: tail of %d bytes, out ends %q; want it framed in out", len(tail), out[max(0, len(out)-20):])
	}
	second := bytes.Repeat([]byte("S"), 100)
	out, tail = respond(len(large)+len(second), large, second)
	if tail != nil || !bytes.HasSuffix(out, append(bytes.Clone(large), second...)) {
		t.Errorf("bytes after a referred body: tail of %d bytes, out ends %q; want both in out, in order", len(tail), out[max(0, len(out)-20):])
	}
	if out, tail := respond(len(large), large); tail == nil {
		t.Errorf("Refer did not last the response: out of %d bytes", len(out))
	}
}

// detachedWriter has d parse a request with no body and returns the writer
// for its response.
func detachedWriter(t *testing.T, d *h1.Detached) http.ResponseWriter {
	t.Helper()
	req, ok := d.Parse("POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 0\r\n\r\n")
	if !ok {
		t.Fatal("Parse refused a simple request")
	}
	d.SetBody(nil)
	return d.Writer(req, time.Now())
}
