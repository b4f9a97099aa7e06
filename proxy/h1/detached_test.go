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
		req, ok := d.Parse("POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 0\r\n\r\n")
		if !ok {
			t.Fatal("Parse refused a simple request")
		}
		d.SetBody(nil)
		w := d.Writer(req, time.Now())
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		out, keep := d.Finish()
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
