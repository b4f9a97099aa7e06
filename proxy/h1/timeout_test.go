package h1_test

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern-dev/postern/proxy/h1"
)

func TestReadHeaderTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	tests := []struct {
		name    string
		partial string
		trickle bool // send the rest one byte every 10ms, never finishing
	}{
		{"nothing sent", "", false},
		{"partial request line", "POST /slow HT", false},
		{"partial headers", "POST / HTTP/1.1\r\nHost: a\r\nX-Slow: ", false},
		{"trickled headers", "POST / HTTP/1.1\r\nHost: a\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRecorder()
			ts := startServer(t, h, func(s *h1.Server) { s.ReadHeaderTimeout = timeout })
			start := time.Now()
			c := dial(t, ts.addr)
			if tt.partial != "" {
				c.send(tt.partial)
			}
			if tt.trickle {
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					tick := time.NewTicker(10 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						if _, err := io.WriteString(c.conn, "X"); err != nil {
							return
						}
					}
				}()
				defer wg.Wait()
				defer close(stop)
			}
			c.expectClosedWithin(2 * time.Second)
			ts.serverDone(c)
			if elapsed := time.Since(start); elapsed < timeout {
				t.Errorf("closed after %v, before the %v timeout", elapsed, timeout)
			}
			h.none(t)
		})
	}
}

// TestReadHeaderTimeoutKeptAlive: on a kept-alive connection, the header
// timeout, not the idle timeout, bounds a request's head from its first byte.
func TestReadHeaderTimeoutKeptAlive(t *testing.T) {
	const timeout = 150 * time.Millisecond
	h := newRecorder()
	ts := startServer(t, h, func(s *h1.Server) {
		s.ReadHeaderTimeout = timeout
		s.IdleTimeout = 10 * time.Second
	})
	c := dial(t, ts.addr)
	c.send("GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.mustRead("GET"); resp.Close {
		t.Fatal("the response closes the connection; want it kept alive")
	}
	h.next(t)
	// The next request starts, then stalls: the header timeout, not the
	// idle timeout, applies from its first byte.
	c.send("POST /second HTTP/1.1\r\nHost: a\r\n")
	if elapsed := closedAfter(ts, c); elapsed < timeout/2 {
		t.Errorf("closed after %v, before the %v timeout", elapsed, timeout)
	}
	h.none(t)
}

// TestReadTimeoutBoundsHeaders: ReadTimeout "bounds reading a whole request,
// body included, from its first byte", so it also bounds the headers when
// ReadHeaderTimeout is not set.
func TestReadTimeoutBoundsHeaders(t *testing.T) {
	const timeout = 150 * time.Millisecond
	h := newRecorder()
	ts := startServer(t, h, func(s *h1.Server) { s.ReadTimeout = timeout })
	c := dial(t, ts.addr)
	c.send("POST / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
	c.expectClosedWithin(time.Second)
	ts.serverDone(c)
	h.none(t)
}

func TestIdleTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	h := newRecorder()
	ts := startServer(t, h, func(s *h1.Server) {
		s.IdleTimeout = timeout
		s.ReadHeaderTimeout = 2 * time.Second
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.mustRead("GET"); resp.Close {
		t.Fatal("the response closes the connection; want it kept alive")
	}
	if elapsed := closedAfter(ts, c); elapsed < timeout/2 {
		t.Errorf("closed after %v, before the %v idle timeout", elapsed, timeout)
	}
	h.next(t)
	h.none(t)
}

func TestReadTimeoutSlowBody(t *testing.T) {
	const timeout = 200 * time.Millisecond
	type result struct {
		body string
		err  error
	}
	results := make(chan result, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		results <- result{string(b), err}
		io.WriteString(w, "late")
	}), func(s *h1.Server) { s.ReadTimeout = timeout })
	c := dial(t, ts.addr)
	start := time.Now()
	c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
	resp, body := c.mustRead("POST")
	r := <-results
	if r.body != "abc" || !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Errorf("handler read %q, %v; want %q and a deadline error", r.body, r.err, "abc")
	}
	if elapsed := time.Since(start); elapsed < timeout {
		t.Errorf("body read failed after %v, before the %v timeout", elapsed, timeout)
	}
	if body != "late" || !resp.Close {
		t.Errorf("response %q close %v, want %q with Connection: close", body, resp.Close, "late")
	}
	c.expectClosed()
}

// Both timeouts together: a slow body still fails once the header was read in time.
func TestReadTimeoutWithHeaderTimeout(t *testing.T) {
	results := make(chan error, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		results <- err
	}), func(s *h1.Server) {
		s.ReadHeaderTimeout = 100 * time.Millisecond
		s.ReadTimeout = 200 * time.Millisecond
	})
	c := dial(t, ts.addr)
	c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n" + strings.Repeat("a", 9))
	resp, _ := c.mustRead("POST")
	if err := <-results; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("body read error %v, want a deadline error", err)
	}
	if !resp.Close {
		t.Error("the response does not carry Connection: close")
	}
	c.expectClosed()
}

// A request that arrives whole sets no read deadline (it needs no read),
// so the next request on the connection must get deadlines of its own:
// after a pause longer than the read timeout, a whole request is still
// served, and a slow head still times out at the header timeout, not the
// idle one.
func TestDeadlinesAfterBufferedRequest(t *testing.T) {
	const headerTimeout = 100 * time.Millisecond
	h := newRecorder()
	ts := startServer(t, h, func(s *h1.Server) {
		s.ReadHeaderTimeout = headerTimeout
		s.ReadTimeout = 150 * time.Millisecond
		s.IdleTimeout = 5 * time.Second
	})
	c := dial(t, ts.addr)
	whole := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
	c.send(whole)
	c.mustRead("POST")
	time.Sleep(400 * time.Millisecond)
	c.send(whole + whole) // two at once: the second is buffered behind the first
	c.mustRead("POST")
	c.mustRead("POST")
	c.send("POST / HTTP/1.1\r\nHost: a\r\n")
	if elapsed := closedAfter(ts, c); elapsed < headerTimeout/2 || elapsed > time.Second {
		t.Errorf("slow head closed after %v, want about the %v header timeout", elapsed, headerTimeout)
	}
	for range 3 {
		h.next(t)
	}
	h.none(t)
}

// closedAfter waits (up to 2 s) for the server to close c and to be done
// with it, and returns how long that took.
func closedAfter(ts *testServer, c *client) time.Duration {
	start := time.Now()
	c.expectClosedWithin(2 * time.Second)
	ts.serverDone(c)
	return time.Since(start)
}
