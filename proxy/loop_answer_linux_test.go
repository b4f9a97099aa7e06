package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestChunkedArrived: while a chunked answer is arriving, the loop waits
// for the rest at every cut, including inside the last chunk and the
// trailer (where the chunked reader over the bytes so far reported a
// broken trailer, and the loop answered 502), and takes it once whole.
func TestChunkedArrived(t *testing.T) {
	bodies := []string{
		"0\r\n\r\n",
		"5\r\nhello\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\n6 \r\n world\r\n0\r\n\r\n",
		"A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
		"3\r\nabc\r\n000\r\nA: 1\r\nB: 2\r\n\r\n",
	}
	for _, body := range bodies {
		for i := 0; i <= len(body); i++ {
			prefix := []byte(body[:i])
			hd := &respHead{length: -1, chunked: true, teChunked: true}
			err := bodyArrived(hd, prefix, false)
			if i < len(body) && !errors.Is(err, errNeedMore) {
				t.Errorf("%q of %q: got %v, want errNeedMore", prefix, body, err)
			}
			if i == len(body) {
				if err != nil {
					t.Errorf("%q: got %v, want nil (arrived)", body, err)
				}
				if _, _, complete, err := holdBody(bufio.NewReader(&needMore{b: prefix}), hd); err != nil || !complete {
					t.Errorf("%q: the reader got %v, complete %v", body, err, complete)
				}
			}
		}
	}
	// Over the loop's limit while still arriving: streamed.
	big := fmt.Sprintf("%x\r\n%s", maxResponseBytes+1, strings.Repeat("x", maxResponseBytes+1))
	if err := bodyArrived(&respHead{length: -1, chunked: true}, []byte(big), false); !errors.Is(err, errLargeAnswer) {
		t.Errorf("a chunk over the limit: got %v, want errLargeAnswer", err)
	}
}

// TestLoopChunkedAnswerEndApart: an app whose chunked answer's last bytes
// arrive apart from the rest is answered with its 200, not a 502.
func TestLoopChunkedAnswerEndApart(t *testing.T) {
	for _, cut := range []string{"0\r\n", "0\r\nX-T: 1\r\n", "0"} {
		whole := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
		i := strings.Index(whole, "0\r\nX-T") + len(cut)
		rg, _ := loopRig(t, func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			defer conn.Close()
			buf.WriteString(whole[:i])
			buf.Flush()
			time.Sleep(50 * time.Millisecond) // read by the loop apart
			buf.WriteString(whole[i:])
			buf.Flush()
			time.Sleep(50 * time.Millisecond)
		})
		got := rg.post(t, "/", signed(testKey, "msg_apart", testNow, validBody), validBody)
		if got.Status != 200 || got.Body != "hello" {
			t.Errorf("end cut after %q: got %d %q %q, want 200 hello", cut, got.Status, got.Reason, got.Body)
		}
	}
}

// TestLoopLargeAnswerCost: an app answer of 900 KiB arriving in pieces
// costs the loop about one copy of it, not one per piece (it held the
// whole answer again on each read), and no answer body stays in memory
// with the idle connections afterwards (it was kept until the
// connection's next answer: up to 1 MiB for each of up to 512).
func TestLoopLargeAnswerCost(t *testing.T) {
	const size = 900 << 10
	piece := strings.Repeat("p", 16<<10)
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		for sent := 0; sent < size; sent += len(piece) {
			io.WriteString(w, piece[:min(len(piece), size-sent)])
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Microsecond)
		}
	}, func(o *Options) { o.UpstreamTimeout = 30 * time.Second }) // 24 at once, under -race, on 2 cores
	if _, ok := rg.proxy.srv.(*Loop); !ok {
		rg.proxy = newLoopFrontend(t, rg.handler)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := rg.post(t, "/", signed(testKey, "msg_cost", testNow, validBody), validBody)
	runtime.ReadMemStats(&after)
	if got.Status != 200 || len(got.Body) != size {
		t.Fatalf("got %d with %d bytes, want 200 with %d", got.Status, len(got.Body), size)
	}
	// The sender's client, the app, the test's rig and the loop all
	// allocate (about 6 MiB in all, against 38 when the loop held the
	// answer again on each read).
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("one 900 KiB answer: %.1f MiB allocated in all", float64(alloc)/(1<<20))
	if alloc > 16<<20 {
		t.Errorf("one 900 KiB answer: %d MiB allocated, want under 16", alloc>>20)
	}

	base := heapInuse()
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			got := rg.post(t, "/", signed(testKey, fmt.Sprint("msg_keep", i), testNow, validBody), validBody)
			if got.Status != 200 {
				t.Errorf("answer %d: got %d", i, got.Status)
			}
		})
	}
	wg.Wait()
	if grew := heapInuse() - base; grew > 8<<20 {
		t.Errorf("after 24 answers of 900 KiB, the heap holds %d MiB more, want under 8 (no answer kept)", grew>>20)
	}
}

// TestLoopAnswerBodyInPlace: an answer framed by its Content-Length is
// passed back from the buffer it was read into, not from a copy (a 1 MiB
// answer cost the loop 1 MiB more for it); one whose connection ended
// short of its length is still refused, not padded with what the buffer
// held past it.
func TestLoopAnswerBodyInPlace(t *testing.T) {
	l := &loopWorker{}
	l.abr = bufio.NewReaderSize(&l.src, 8<<10)
	body := strings.Repeat("b", maxResponseBytes)
	answer := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	a := &lconn{toApp: true, buf: []byte(answer)}
	ur, used, err := l.parseAnswer(a)
	if err != nil || ur.status != 200 || used != len(answer) || string(ur.body) != body {
		t.Fatalf("got %v, status %d, used %d of %d, body of %d bytes; want the whole answer", err, ur.status, used, len(answer), len(ur.body))
	}
	if &ur.body[0] != &a.buf[len(answer)-len(body)] {
		t.Error("the body was copied out of the buffer it was read into")
	}

	short := &lconn{toApp: true, eof: true, buf: make([]byte, 0, len(answer))}
	short.buf = append(short.buf, answer[:len(answer)-10]...)
	copy(short.buf[len(short.buf):cap(short.buf)], "0123456789") // past the end of what was read
	if _, _, err := l.parseAnswer(short); err == nil {
		t.Error("an answer 10 bytes short of its Content-Length, its connection ended, was taken")
	}
}

// TestLoopStreamedAnswerOutOfDescriptors: an answer over 1 MiB, which the
// loop hands to a goroutine to stream, when no descriptor is free for the
// hand-over: the sender is answered 503 overloaded with a Retry-After, as
// when dialing the app fails for want of one (the app's connection, given
// up, frees the descriptor the sender's then takes). It runs alone in a
// process of its own, as TestLoopAcceptOutOfDescriptors does.
func TestLoopStreamedAnswerOutOfDescriptors(t *testing.T) {
	if os.Getenv("POSTERN_TEST_ALONE") == "" {
		runAlone(t)
		return
	}
	arrived, answer := make(chan struct{}), make(chan struct{})
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-answer
		w.Header().Set("Content-Length", fmt.Sprint(2<<20))
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select { // until the loop gives up the connection
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}, func(o *Options) { o.Now = nil }) // the real clock: a streamed answer has real deadlines
	f := newLoopFrontend(t, rg.handler)

	conn, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, rawWebhookSigned(signed(testKey, "msg_stream_fd", time.Now(), validBody), "msg_stream_fd", validBody)); err != nil {
		t.Fatal(err)
	}
	<-arrived
	restore := fillDescriptors(t, 0)
	defer restore()
	close(answer)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"`+ReasonOverloaded+`"`) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("got %d Retry-After %q %s, want 503 %s with a Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body, ReasonOverloaded)
	}
}

// TestLoopLargeAnswerSlowReader: answers of several hundred KiB, whose
// bodies go to the sender from the buffer they were read into (after a
// head that is the Detached's, 40 KiB in every other one), reach a sender
// that reads slowly, through a small send buffer, so that each goes out
// over many rounds, byte for byte; and the connection carries the next
// request and its own answer, not bytes of the last.
func TestLoopLargeAnswerSlowReader(t *testing.T) {
	const size = 700 << 10
	var n atomic.Int32
	pad := string(patterned(0, 40<<10)) // a head larger than the send buffer
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1))
		if i%2 == 0 {
			w.Header().Set("X-Pad", pad)
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		w.Write(patterned(i, size))
	}, func(o *Options) { o.Now = nil }) // the real clock: the sender's write timeout is real
	// A small send buffer for the connections the loop accepts (they
	// take the listener's), so that an answer goes out over many writes.
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 16<<10) })
		return err
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := serveFrontend(t, &Loop{Handler: rg.handler, Fallback: NewListener(rg.handler, rg.handler.opts.UpstreamTimeout, nil)}, ln)
	t.Cleanup(f.Close)
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(32 << 10)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(slowReader{conn}, 4<<10)
	for i := 1; i <= 3; i++ {
		id := fmt.Sprint("msg_slow_reader", i)
		if _, err := io.WriteString(conn, rawWebhookSigned(signed(testKey, id, time.Now(), validBody), id, validBody)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || resp.Close {
			t.Fatalf("answer %d: %d, close %v, %v", i, resp.StatusCode, resp.Close, err)
		}
		if got := resp.Header.Get("X-Pad"); (i%2 == 0) != (got == pad) {
			t.Errorf("answer %d: X-Pad of %d bytes", i, len(got))
		}
		if want := patterned(i, size); !bytes.Equal(got, want) {
			at := 0
			for at < min(len(got), len(want)) && got[at] == want[at] {
				at++
			}
			t.Fatalf("answer %d: %d bytes, differing from the app's %d from byte %d", i, len(got), len(want), at)
		}
	}
}

// patterned returns n bytes that tell answer i's every 16-byte block apart.
func patterned(i, n int) []byte {
	b := make([]byte, 0, n+16)
	for block := 0; len(b) < n; block++ {
		b = fmt.Appendf(b, "a%02d b%010d|", i, block)
	}
	return b[:n]
}

// slowReader reads at most 16 KiB at a time, a millisecond apart.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return s.r.Read(p[:min(len(p), 16<<10)])
}

// FuzzChunkedArrived: whatever the bytes, the loop waits for more of a
// chunked body exactly when the chunked reader would: never for one the
// reader already takes whole, and never for one it already refuses (the
// goroutine engine answers that 502 at once; the loop waited, and answered
// 504 at the timeout). The reader would wait when it asks for bytes past b.
func FuzzChunkedArrived(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("1;a=b\r\nx\r\n0\r\nT: 1\r\n\r\nrest"))
	f.Add([]byte("0\n\n"))
	f.Add([]byte("5\nhel"))
	f.Add([]byte("5\r\nhelloXY"))
	f.Add([]byte("0\r\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		hd := &respHead{length: -1, chunked: true, teChunked: true}
		src := &starving{needMore: needMore{b: b}}
		_, _, complete, err := holdBody(bufio.NewReaderSize(src, 8<<10), hd)
		waits := errors.Is(bodyArrived(&respHead{length: -1, chunked: true}, b, false), errNeedMore)
		switch {
		case err == nil && complete && waits:
			t.Errorf("%q: the reader takes it whole, the loop would wait for more", b)
		case waits && !src.starved:
			t.Errorf("%q: the reader ends it (%v) without more bytes, the loop would wait for more", b, err)
		case !waits && src.starved && !errors.Is(err, errNeedMore) && err != nil:
			// The loop goes on to the reader, which reports what it
			// made of the bytes so far: only a wait is a wait.
			t.Errorf("%q: the reader would wait for more, the loop ends it with %v", b, err)
		}
	})
}

// starving is a needMore that records whether its reader asked for more
// than it has.
type starving struct {
	needMore
	starved bool
}

func (s *starving) Read(p []byte) (int, error) {
	n, err := s.needMore.Read(p)
	if errors.Is(err, errNeedMore) {
		s.starved = true
	}
	return n, err
}

// TestLoopStreamedAnswerPipelined: an answer over 1 MiB, streamed, reaches
// the sender whole, saying Connection: close, even with a pipelined request
// behind it that the loop had not read (closing over those unread bytes
// reset the connection, and the sender lost the end of the answer).
func TestLoopStreamedAnswerPipelined(t *testing.T) {
	const size = 1100000
	big := strings.Repeat("b", size)
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.WriteString(w, big)
	}, func(o *Options) { o.Now = nil }) // the real clock: a streamed answer has real deadlines
	if _, ok := rg.proxy.srv.(*Loop); !ok {
		rg.proxy = newLoopFrontend(t, rg.handler)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(rg.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	second := strings.Replace(validBody, `"data":{`, `"pad":"`+strings.Repeat("p", 16000)+`","data":{`, 1)
	now := time.Now()
	io.WriteString(conn, rawWebhookSigned(signed(testKey, "msg_big1", now, validBody), "msg_big1", validBody)+
		rawWebhookSigned(signed(testKey, "msg_big2", now, second), "msg_big2", second))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || n != size || err != nil {
		t.Errorf("got %d with %d of %d bytes (%v), want the whole 200", resp.StatusCode, n, size, err)
	}
	// The loop closes the connection after a streamed answer, and the
	// answer says so: the sender sends the second request again on a new
	// connection (the header was set, then dropped with the app's
	// hop-by-hop headers, so the sender took the connection for open).
	if !resp.Close {
		t.Errorf("a streamed answer, after which the connection closes, has no Connection: close (headers %v)", resp.Header)
	}
}

// TestLoopChunkedSmallChunks: a whole chunked answer whose framing takes
// it past what the loop reads of an answer (1 MiB + 64 KiB) while its data
// stays under 1 MiB (here 300,000 bytes in 1-byte chunks, in one write, the
// connection kept open) is streamed, not left waiting for a readiness edge
// that never comes (it was answered 504 at the timeout).
func TestLoopChunkedSmallChunks(t *testing.T) {
	const size = 300000
	var wire strings.Builder
	wire.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range size {
		wire.WriteString("1\r\nx\r\n")
	}
	wire.WriteString("0\r\n\r\n")
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		buf.WriteString(wire.String())
		buf.Flush()
		time.Sleep(3 * time.Second) // kept alive
	}, func(o *Options) { o.Now = nil; o.UpstreamTimeout = 2 * time.Second }) // the real clock: a streamed answer has real deadlines
	if _, ok := rg.proxy.srv.(*Loop); !ok {
		rg.proxy = newLoopFrontend(t, rg.handler)
	}
	got := rg.post(t, "/", signed(testKey, "msg_small_chunks", time.Now(), validBody), validBody)
	if got.Status != 200 || len(got.Body) != size {
		t.Errorf("got %d %s with %d bytes, want 200 with %d", got.Status, got.Reason, len(got.Body), size)
	}
}

// TestLoopShutdownWaitsForStreamedAnswer: a request in flight when the
// drain begins finishes before Shutdown returns, also when its answer is
// over 1 MiB and streamed from a goroutine: Shutdown returned while the
// answer was streaming, so the process could exit with the answer cut and
// the request never audited.
func TestLoopShutdownWaitsForStreamedAnswer(t *testing.T) {
	const size = 2 << 20
	first := strings.Repeat("a", 1200000)
	rest := strings.Repeat("b", size-len(first))
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.WriteString(w, first)
		w.(http.Flusher).Flush()
		time.Sleep(400 * time.Millisecond) // still streaming when the drain begins
		io.WriteString(w, rest)
	}, func(o *Options) { o.Now = nil; o.UpstreamTimeout = 10 * time.Second })
	if _, ok := rg.proxy.srv.(*Loop); !ok {
		rg.proxy = newLoopFrontend(t, rg.handler)
	}
	l := rg.proxy.srv.(*Loop)
	resp := sendForAnswer(t, rg.proxy.URL, "msg_drain_big")
	// The answer's head has arrived, so it is streaming: drain now.
	type result struct {
		err      error
		inFlight int64
	}
	shut := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		err := l.Shutdown(ctx)
		shut <- result{err, rg.handler.metrics.inFlight.Load()}
	}()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || n != size || err != nil {
		t.Errorf("sender got %d with %d of %d bytes (%v), want the whole 200", resp.StatusCode, n, size, err)
	}
	if r := <-shut; r.err != nil || r.inFlight != 0 {
		t.Errorf("Shutdown returned %v with %d request(s) in flight, want nil with 0 (the streamed answer finished and recorded)", r.err, r.inFlight)
	}
}

// TestLoopStreamedAnswerEndsWhenSent: a streamed answer's request ends
// (audit record, duration, in-flight gauge, its id settled for dedupe) when
// its answer has been sent, not after the sender's connection has lingered
// (up to 500 ms, made 30 s here so that the two cannot be confused).
func TestLoopStreamedAnswerEndsWhenSent(t *testing.T) {
	lingerFor.Store(int64(30 * time.Second))
	t.Cleanup(func() { lingerFor.Store(0) })
	const size = 1100000
	big := strings.Repeat("b", size)
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.WriteString(w, big)
	}, func(o *Options) { o.Now = nil })
	if _, ok := rg.proxy.srv.(*Loop); !ok {
		rg.proxy = newLoopFrontend(t, rg.handler)
	}
	resp := sendForAnswer(t, rg.proxy.URL, "msg_linger")
	if n, err := io.Copy(io.Discard, resp.Body); resp.StatusCode != 200 || n != size || err != nil {
		t.Fatalf("got %d with %d of %d bytes (%v), want the whole 200", resp.StatusCode, n, size, err)
	}
	// The sender has its whole answer and keeps its connection open, so
	// postern lingers on it for 30 s.
	deadline := time.Now().Add(10 * time.Second)
	for rg.handler.metrics.inFlight.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := rg.handler.metrics.inFlight.Load(); n != 0 {
		t.Errorf("%d request(s) still in flight 10 s after the whole answer reached the sender, while its connection lingers", n)
	}
}

// TestLoopCloseCutsStreamedAnswer: Close (the drain's timeout) cuts an
// answer being streamed as it cuts every other connection, and returns
// with the request recorded; the streamed answer ran on after Close,
// unrecorded, until the app finished.
func TestLoopCloseCutsStreamedAnswer(t *testing.T) {
	release := make(chan struct{})
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(3<<20))
		io.WriteString(w, strings.Repeat("a", 1200000))
		w.(http.Flusher).Flush()
		select { // the rest never comes before Close
		case <-release:
		case <-r.Context().Done():
		}
	}, func(o *Options) { o.Now = nil; o.UpstreamTimeout = 20 * time.Second })
	defer close(release)
	if _, ok := rg.proxy.srv.(*Loop); !ok {
		rg.proxy = newLoopFrontend(t, rg.handler)
	}
	l := rg.proxy.srv.(*Loop)
	resp := sendForAnswer(t, rg.proxy.URL, "msg_close_big")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := rg.handler.metrics.inFlight.Load(); n != 0 {
		t.Errorf("Close returned with %d request(s) in flight, want 0", n)
	}
	if n, err := io.Copy(io.Discard, resp.Body); err == nil || n >= 3<<20 {
		t.Errorf("sender read %d bytes (%v) of an answer cut by Close, want fewer and an error", n, err)
	}
}

// TestBrokenChunkedAnswerAtOnce: a chunked answer whose framing is already
// broken (a bare LF, chunk data not followed by CRLF, a space before an
// extension, too much that is not data) is a 502 at once, from either
// engine, while the app holds its connection open: the loop waited for
// more, and answered 504 at the timeout.
func TestBrokenChunkedAnswerAtOnce(t *testing.T) {
	noisy := strings.Repeat("1;"+strings.Repeat("e", 100)+"\r\nx\r\n", 200) // over 16 KiB that is not data
	for _, framing := range []string{"5\nhel", "5\r\nhelloXY", "5 ;x\r\nhello\r\n", noisy} {
		rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			defer conn.Close()
			buf.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framing)
			buf.Flush()
			time.Sleep(4 * time.Second) // held open past the timeout
		}, func(o *Options) { o.Now = nil; o.UpstreamTimeout = 3 * time.Second })
		got := rg.post(t, "/", signed(testKey, "msg_badchunk", time.Now(), validBody), validBody)
		if got.Status != 502 || got.Reason != ReasonUpstreamError {
			t.Errorf("%q: got %d %s, want 502 %s", framing, got.Status, got.Reason, ReasonUpstreamError)
		}
	}
}

// TestChunkedAnswerJustOverLimit: a chunked answer of maxResponseBytes+1
// bytes that arrives whole is passed back as either engine streams it,
// chunked (the loop held it and sent it with a Content-Length).
func TestChunkedAnswerJustOverLimit(t *testing.T) {
	body := strings.Repeat("c", maxResponseBytes+1)
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)
		buf.Flush()
		time.Sleep(200 * time.Millisecond) // kept alive
	}, func(o *Options) { o.Now = nil })
	resp := sendForAnswer(t, rg.proxy.URL, "msg_just_over")
	got, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != body || err != nil {
		t.Fatalf("got %d with %d of %d bytes (%v), want the whole 200", resp.StatusCode, len(got), len(body), err)
	}
	if resp.ContentLength != -1 || len(resp.TransferEncoding) != 1 {
		t.Errorf("framed with Content-Length %d, Transfer-Encoding %q; want chunked, as streamed", resp.ContentLength, resp.TransferEncoding)
	}
}

// sendForAnswer sends a webhook signed now, with id, to the frontend at
// url on a connection of its own, and returns the answer as soon as its
// head has arrived (the connection closes with the test).
func sendForAnswer(t *testing.T, url, id string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, rawWebhookSigned(signed(testKey, id, time.Now(), validBody), id, validBody))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
