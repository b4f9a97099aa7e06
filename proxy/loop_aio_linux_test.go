package proxy

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// socketPair returns the two ends of a non-blocking Unix stream socket,
// closed when t ends.
func socketPair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
	return fds[0], fds[1]
}

func mustBatch(t *testing.T) *batch {
	t.Helper()
	b := newBatch()
	if b == nil {
		t.Fatal("io_setup failed: this system refuses Linux AIO, and the event loop writes each write with write(2)")
	}
	t.Cleanup(b.close)
	return b
}

// TestBatchResults: one io_submit writes to several sockets, and each
// write's result is what write(2) would have said: the bytes written, EAGAIN
// for a full socket, EPIPE for one whose peer is gone.
func TestBatchResults(t *testing.T) {
	b := mustBatch(t)
	okFd, okPeer := socketPair(t)
	fullFd, _ := socketPair(t)
	goneFd, gonePeer := socketPair(t)
	fill := bytes.Repeat([]byte("x"), 64<<10)
	for {
		if _, err := syscall.Write(fullFd, fill); err == syscall.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	syscall.Shutdown(gonePeer, syscall.SHUT_RDWR) // closed by the cleanup

	ok := &lconn{fd: okFd, out: []byte("hello")}
	full := &lconn{fd: fullFd, out: []byte("more")}
	gone := &lconn{fd: goneFd, out: []byte("lost")}
	for _, c := range []*lconn{ok, full, gone} {
		b.add(c)
	}
	type result struct {
		n   int
		err error
	}
	got := map[*lconn]result{}
	b.run(func(c *lconn, n int, err error) {
		if _, twice := got[c]; twice {
			t.Errorf("fd %d: result given twice", c.fd)
		}
		got[c] = result{n, err}
	})
	want := map[*lconn]result{ok: {5, nil}, full: {-1, syscall.EAGAIN}, gone: {-1, syscall.EPIPE}}
	for c, w := range want {
		if g, seen := got[c]; !seen || g != w {
			t.Errorf("fd %d: got %v (given: %v), want %v", c.fd, g, seen, w)
		}
	}
	buf := make([]byte, 16)
	if n, err := syscall.Read(okPeer, buf); err != nil || string(buf[:n]) != "hello" {
		t.Errorf("peer read %q, %v; want hello", buf[:max(n, 0)], err)
	}
	if len(b.conns) != 0 || b.unbatched != 0 {
		t.Errorf("batch still holds %d writes after run, and %d went out without it", len(b.conns), b.unbatched)
	}
}

// TestBatchedWriteOnce: a connection named twice in a round's lists (an app
// connection picked again after its first request was written and
// answered within the round) has its request written once.
func TestBatchedWriteOnce(t *testing.T) {
	l := &loopWorker{batch: mustBatch(t)}
	fd, peer := socketPair(t)
	a := &lconn{fd: fd, toApp: true, sender: &lconn{}, out: []byte("request")}
	l.toApp = append(l.toApp, a, a)
	l.writeRound(time.Now())
	buf := make([]byte, 64)
	m, err := syscall.Read(peer, buf)
	if err != nil || string(buf[:m]) != "request" {
		t.Fatalf("app read %q, %v; want the request once", buf[:max(m, 0)], err)
	}
	if len(a.out) != 0 || a.queued {
		t.Fatalf("after the round: %d bytes left to write, queued %v", len(a.out), a.queued)
	}
}

// TestBatchedRoundOverflows: a round with more writes than one batch holds
// writes them all, each once and whole, in batches.
func TestBatchedRoundOverflows(t *testing.T) {
	l := &loopWorker{batch: mustBatch(t)}
	const n = batchSize + 44
	peers := make([]int, n)
	for i := range n {
		fd, peer := socketPair(t)
		peers[i] = peer
		l.toApp = append(l.toApp, &lconn{fd: fd, toApp: true, sender: &lconn{}, out: fmt.Appendf(nil, "request %d", i)})
	}
	l.writeRound(time.Now())
	buf := make([]byte, 64)
	for i, peer := range peers {
		m, err := syscall.Read(peer, buf)
		if want := fmt.Sprintf("request %d", i); err != nil || string(buf[:m]) != want {
			t.Fatalf("peer %d read %q, %v; want %q", i, buf[:max(m, 0)], err, want)
		}
		if m, err := syscall.Read(peer, buf); err != syscall.EAGAIN {
			t.Fatalf("peer %d: %d bytes more (%v), want none", i, m, err)
		}
	}
	if len(l.toApp) != 0 || len(l.batch.conns) != 0 || l.batch.unbatched != 0 {
		t.Fatalf("left %d to write and %d in the batch; %d went out without it", len(l.toApp), len(l.batch.conns), l.batch.unbatched)
	}
}

// TestLoopWithoutBatch: where the system refuses Linux AIO, the loop writes
// requests and answers one by one, with the same results: a signed webhook
// forwarded and answered 204, a forged one refused, and pipelined requests
// answered in order.
func TestLoopWithoutBatch(t *testing.T) {
	useBatch = false
	t.Cleanup(func() { useBatch = true })
	rg, l := loopRig(t, nil)
	for _, w := range l.workers {
		if w.batch != nil {
			t.Fatal("the loop set up a batch with useBatch off")
		}
	}
	checkPipelined(t, rg, "msg_nb")
}

// TestLoopBatches: the loop the package's other tests run sets up its
// batch here, so that they cover the batched writes.
func TestLoopBatches(t *testing.T) {
	_, l := loopRig(t, nil)
	for _, w := range l.workers {
		if w.batch == nil {
			t.Fatal("the loop writes without a batch")
		}
	}
}

// TestScanLeavesWaitingAnswer: the timeout scan, which drops a sender whose
// answer has not gone out by its write deadline, leaves alone one whose
// answer waits for the round's batched writes (the scan runs right before
// them), and still drops one whose answer is past its deadline.
func TestScanLeavesWaitingAnswer(t *testing.T) {
	rg := newRig(t, nil, nil)
	fb := NewListener(rg.handler, time.Second, nil)
	l := &loopWorker{Loop: &Loop{Handler: rg.handler, Fallback: fb}, conns: map[int]*lconn{}}
	now := time.Now()
	waitFd, _ := socketPair(t)
	pairFd, _ := socketPair(t)
	lateFd, err := syscall.Dup(pairFd) // the scan closes it; the pair's cleanup closes its own
	if err != nil {
		t.Fatal(err)
	}
	waiting := &lconn{fd: waitFd, out: []byte("answer"), answering: []byte("answer"), writeBy: now.Add(-time.Second)}
	late := &lconn{fd: lateFd, out: []byte("answer"), writeBy: now.Add(-time.Second)}
	l.conns[waitFd], l.conns[lateFd] = waiting, late
	l.senders.Add(2)
	l.scan(now)
	if waiting.closed {
		t.Error("the scan dropped a sender whose answer waits for the round's writes")
	}
	if !late.closed {
		t.Error("the scan left a sender whose answer is past its write deadline")
	}
}
