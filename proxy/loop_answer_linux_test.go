package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
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

// FuzzChunkedArrived: whatever the bytes, the loop never waits for more of
// a chunked body the chunked reader already takes whole.
func FuzzChunkedArrived(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("1;a=b\r\nx\r\n0\r\nT: 1\r\n\r\nrest"))
	f.Add([]byte("0\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		hd := &respHead{length: -1, chunked: true, teChunked: true}
		_, _, complete, err := holdBody(bufio.NewReader(&needMore{b: b}), hd)
		if err == nil && complete && errors.Is(bodyArrived(&respHead{length: -1, chunked: true}, b, false), errNeedMore) {
			t.Errorf("%q: the reader takes it whole, the loop would wait for more", b)
		}
	})
}

// TestLoopStreamedAnswerPipelined: an answer over 1 MiB, streamed, reaches
// the sender whole even with a pipelined request behind it that the loop
// had not read (closing over those unread bytes reset the connection, and
// the sender lost the end of the answer).
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
