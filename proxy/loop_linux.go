//go:build linux

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
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postern-dev/postern/proxy/h1"
)

// Loop is the event-loop listener: epoll loops, each on its own locked
// thread, that read requests, run the handler's checks, exchange with the
// app and write answers, with no goroutine per connection. It serves the
// common case only: a complete request of at most loopMaxRequest bytes
// with a Content-Length (or no body), forwarded to a plain-HTTP app on
// loopback (LoopSupported). A connection with anything else (chunked or
// larger bodies, Expect, malformed or slow requests) is handed, with the
// bytes already read, to Fallback, the goroutine engine, which then owns
// it and answers as it always does; an app answer larger than
// maxResponseBytes is streamed from a goroutine too. Both engines run the
// same handler halves (check, respond), so the status contract has one
// implementation.
//
// The loops share the listening socket, as nginx's workers do: each waits
// on it with EPOLLEXCLUSIVE, so that the kernel wakes one loop that is
// waiting for a new connection, and a loop takes one connection per round
// of events and gives it to the loop with the fewest (see give). A
// connection then stays with that loop, and each loop keeps its own
// connections to the app.
//
// Timeouts are checked every loopTick: the header, idle and write
// timeouts are Fallback's, and can end up to loopTick late.
type Loop struct {
	// Handler runs the checks and builds the answers.
	Handler *Handler
	// Fallback serves what the loop hands over, with its settings
	// (timeouts, header limit).
	Fallback *h1.Server
	// Workers is how many loops serve; 0 means GOMAXPROCS.
	Workers int

	closing atomic.Bool
	closed  atomic.Bool // Close: drop everything now
	done    chan struct{}
	mu      sync.Mutex
	started bool // Serve is running, or ran
	stopped bool // Serve has returned
	workers []*loopWorker
	// Requests the loops answered themselves, for tests (what they hand
	// over is counted by postern_loop_handoffs_total).
	served atomic.Int64

	lfd       int          // the listening socket, shared by the workers
	listening atomic.Int32 // workers still waiting on lfd: the last one closes it
	up        *net.TCPAddr // the app's address

	// Answers over maxResponseBytes being streamed from goroutines
	// (streamAnswer): Shutdown waits for them, Close cuts their
	// connections.
	streams     sync.WaitGroup
	streamMu    sync.Mutex
	streamConns map[net.Conn]struct{}
}

// loopWorker is one loop; its fields are touched only by its thread, but
// for senders, inbox and wake (see there and signal).
type loopWorker struct {
	*Loop
	ep   int
	lfd  int // Loop.lfd while this loop accepts, then -1
	wake int // eventfd that interrupts epoll_wait
	// The app's address, w's own: Connect writes to it.
	upAddr   syscall.Sockaddr
	upFamily int
	conns    map[int]*lconn
	idle     []*lconn // kept-alive app connections, most recent last
	maxIdle  int      // this loop's share of the client's idle connections
	rbuf     []byte
	req      bytes.Buffer
	bw       *bufio.Writer // renders requests for the app into req
	abr      *bufio.Reader // parses the app's answers
	src      needMore
	// Free lists: a connection holds a Detached and a read buffer only
	// while a request is in progress, so that idle connections cost little.
	dets  []*h1.Detached
	bufs  [][]byte
	toApp []*lconn // app connections with a request to write
	// toSender holds the senders whose answer is written with the round's
	// requests; batch writes them all with one system call (nil where
	// the system refuses it: then each is written at once); spare is the
	// slices the round's writes were taken from, for reuse.
	toSender   []*lconn
	batch      *batch
	spareApp   []*lconn
	spareSends []*lconn
	// reusing is set when the round picked a pooled app connection;
	// late holds the events that the check before the round's writes
	// found (see checkPicked), and pending those of them for the next
	// round, which runs first.
	reusing bool
	late    []syscall.EpollEvent
	pending []syscall.EpollEvent
	round   []syscall.EpollEvent

	lastScan time.Time
	// acceptAgain, when not zero, is when accepting resumes after a
	// failure.
	acceptAgain time.Time

	// senders counts the sender connections w owns, read by the other
	// loops to pick the one that takes a new connection; inbox holds the
	// connections they gave w (guarded by Loop.mu).
	senders atomic.Int32
	inbox   []accepted
}

// accepted is a connection accepted by one loop for another.
type accepted struct {
	fd     int
	remote string
}

// loopMaxRequest is the largest request (head and body) the loop reads
// itself, and the most it buffers of a connection; a larger request is
// handed to Fallback.
const loopMaxRequest = 16 << 10

// loopPatience is how long a request may stay incomplete in the loop
// before its connection is handed to Fallback, which waits for slow
// senders with its own goroutine and timeouts.
const loopPatience = 100 * time.Millisecond

// epollExclusive is EPOLLEXCLUSIVE (Linux 4.5), which package syscall
// does not define.
const epollExclusive = 1 << 28

// loopTick is how often the loop checks deadlines.
const loopTick = 50 * time.Millisecond

// lconn is a sender's connection or one to the app.
type lconn struct {
	fd     int
	toApp  bool
	buf    []byte // read and not yet used
	out    []byte // to write
	tail   []byte // to write after out: an answer's body, not copied (h1.Detached.Refer)
	eof    bool   // the peer closed its side
	rerr   error  // why reading ended, when it failed (a reset) rather than at the end of file
	closed bool
	hup    bool // the peer closed or failed: read to the end of file
	full   bool // reading stopped at the buffer's bound, not at EAGAIN

	// A sender's.
	det        *h1.Detached
	remote     string
	first      bool      // no request answered yet
	since      time.Time // accepted, last answered, or first byte of a partial request
	partial    bool      // some of a request is read
	closeAfter bool      // close once out is written
	answering  []byte    // the answer's output while it waits for the round's writes (toSender)
	queued     bool      // in the batch being filled: written once, whatever lists name it twice
	writeBy    time.Time // while out is pending
	del        *delivery // the request being exchanged (&dv), or nil
	dv         delivery
	w          http.ResponseWriter
	headLen    int // of the request in flight: head and body bytes in buf
	app        *lconn

	// The app's.
	sender     *lconn
	reused     bool
	connecting bool
	gotBytes   bool      // part of an answer arrived
	deadline   time.Time // of the exchange
	sent       time.Time
	lastUsed   time.Time
	request    []byte // what was written, for a retry on a new connection
	hd         respHead
	ur         upstreamResponse // the answer parsed last
}

// errLargeAnswer is an answer's parse that found a body over
// maxResponseBytes: it is streamed from a goroutine.
var errLargeAnswer = errors.New("answer larger than the loop holds")

// needMore reads a byte slice, then errNeedMore, or io.EOF when the app
// closed the connection, or err when reading it failed: a body that ends
// with the connection is complete only if the connection ended cleanly.
type needMore struct {
	b   []byte
	eof bool
	err error
}

func (n *needMore) Read(p []byte) (int, error) {
	if len(n.b) == 0 {
		if n.err != nil {
			return 0, n.err
		}
		if n.eof {
			return 0, io.EOF
		}
		return 0, errNeedMore
	}
	c := copy(p, n.b)
	n.b = n.b[c:]
	return c, nil
}

// LoopSupported reports whether the event loop can serve h: on Linux, with
// a plain-HTTP app on loopback (the sidecar case). The loop resolves the
// app's address once; a remote app, whose name may resolve differently
// over time, is left to the goroutine engine, which dials by name.
func LoopSupported(h *Handler) bool {
	h.fwd.prepare()
	return h.fwd.scheme == "http" && h.fwd.loopback
}

// Serve runs the loops on ln's socket until Shutdown or Close, and returns
// http.ErrServerClosed then.
func (l *Loop) Serve(ln net.Listener) error {
	if err := l.start(ln); err != nil {
		return err
	}
	return l.wait()
}

// start takes over ln's socket and starts the loops, each on a goroutine
// of its own.
func (l *Loop) start(ln net.Listener) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		ln.Close()
		return errors.New("proxy: the event loop needs a TCP listener")
	}
	// The loops own a duplicate of the listening socket: ln and its
	// *os.File are closed now, and the duplicate when the loops stop
	// accepting.
	f, err := tl.File()
	ln.Close()
	if err != nil {
		return err
	}
	lfd, err := syscall.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return err
	}
	syscall.CloseOnExec(lfd)
	if err := syscall.SetNonblock(lfd, true); err != nil {
		syscall.Close(lfd)
		return err
	}
	if err := l.init(lfd); err != nil {
		syscall.Close(lfd)
		return err
	}
	var wg sync.WaitGroup
	for _, w := range l.workers {
		wg.Go(w.serve)
	}
	go func() {
		wg.Wait()
		l.mu.Lock()
		l.stopped = true
		l.mu.Unlock()
		close(l.done)
	}()
	return nil
}

// wait returns http.ErrServerClosed once the loops have stopped.
func (l *Loop) wait() error {
	<-l.done
	return http.ErrServerClosed
}

// init prepares the loops' state; the loop counts as started only when it
// succeeded.
func (l *Loop) init(lfd int) (err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.stopped {
		return errors.New("proxy: Loop.Serve called twice")
	}
	if l.done == nil {
		l.done = make(chan struct{})
	}
	h := l.Handler
	h.fwd.prepare()
	if l.up, err = net.ResolveTCPAddr("tcp", h.fwd.addr); err != nil {
		return fmt.Errorf("POSTERN_UPSTREAM_URL: %w", err)
	}
	n := l.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	maxIdle := max(1, (h.fwd.client.maxIdle()+n-1)/n)
	for range n {
		w := &loopWorker{Loop: l, lfd: lfd, maxIdle: maxIdle}
		if err := w.init(); err != nil {
			for _, w := range l.workers {
				w.closeEpoll()
			}
			l.workers = nil
			return err
		}
		l.workers = append(l.workers, w)
	}
	l.lfd = lfd
	l.listening.Store(int32(n))
	l.started = true
	return nil
}

// init makes w's epoll instance and its wake-up eventfd, and registers the
// listening socket with them.
func (w *loopWorker) init() error {
	if ip4 := w.up.IP.To4(); ip4 != nil {
		sa := &syscall.SockaddrInet4{Port: w.up.Port}
		copy(sa.Addr[:], ip4)
		w.upAddr, w.upFamily = sa, syscall.AF_INET
	} else {
		sa := &syscall.SockaddrInet6{Port: w.up.Port}
		copy(sa.Addr[:], w.up.IP.To16())
		w.upAddr, w.upFamily = sa, syscall.AF_INET6
	}
	var err error
	if w.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return err
	}
	wake, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		syscall.Close(w.ep)
		return e
	}
	w.wake = int(wake)
	if err := w.listen(); err != nil {
		w.closeEpoll()
		return err
	}
	if err := syscall.EpollCtl(w.ep, syscall.EPOLL_CTL_ADD, w.wake, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(w.wake)}); err != nil {
		w.closeEpoll()
		return err
	}
	w.conns = make(map[int]*lconn)
	w.batch = newBatch()
	w.late = make([]syscall.EpollEvent, 64)
	w.rbuf = make([]byte, 64<<10)
	w.bw = bufio.NewWriterSize(&w.req, 16<<10)
	w.abr = bufio.NewReaderSize(&w.src, 8<<10)
	return nil
}

// listen has w wait on the listening socket: exclusively, so that a new
// connection wakes one waiting loop, not all of them.
func (w *loopWorker) listen() error {
	return syscall.EpollCtl(w.ep, syscall.EPOLL_CTL_ADD, w.lfd,
		&syscall.EpollEvent{Events: syscall.EPOLLIN | epollExclusive, Fd: int32(w.lfd)})
}

func (w *loopWorker) closeEpoll() {
	syscall.Close(w.wake)
	syscall.Close(w.ep)
	if w.batch != nil {
		w.batch.close()
		w.batch = nil
	}
}

// serve runs w on a thread of its own.
func (w *loopWorker) serve() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w.run()
	w.mu.Lock()
	w.closeEpoll()
	w.wake = -1
	for _, a := range w.inbox { // given as w stopped
		syscall.Close(a.fd)
	}
	w.inbox = nil
	w.mu.Unlock()
}

// unlisten stops w's accepting; the last loop to stop closes the
// listening socket, whose number no loop then takes for it any more.
func (w *loopWorker) unlisten() {
	syscall.EpollCtl(w.ep, syscall.EPOLL_CTL_DEL, w.lfd, nil) // (fails harmlessly when accepting is paused)
	w.lfd = -1
	if w.listening.Add(-1) == 0 {
		syscall.Close(w.Loop.lfd)
	}
}

// Shutdown stops accepting, closes idle connections, lets the requests in
// progress finish (their connections close after the answer), then shuts
// Fallback down; it returns when all are done or ctx ends.
func (l *Loop) Shutdown(ctx context.Context) error {
	l.closing.Store(true)
	l.signal()
	fb := make(chan error, 1)
	go func() { fb <- l.Fallback.Shutdown(ctx) }()
	if l.isStarted() {
		select {
		case <-l.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := <-fb; err != nil {
		return err
	}
	// And what the loops handed over while they drained: a request that
	// was still arriving when the drain began is answered, not dropped.
	if err := l.Fallback.Shutdown(ctx); err != nil {
		return err
	}
	// The answers still being streamed (the loops, stopped, start none).
	streamed := make(chan struct{})
	go func() { l.streams.Wait(); close(streamed) }()
	select {
	case <-streamed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the listener and every connection at once.
func (l *Loop) Close() error {
	l.closing.Store(true)
	l.closed.Store(true)
	l.signal()
	if l.isStarted() {
		<-l.done
	}
	l.streamMu.Lock()
	for nc := range l.streamConns {
		nc.Close()
	}
	l.streamMu.Unlock()
	err := l.Fallback.Close()
	l.streams.Wait() // their records written: cut, they end at once
	return err
}

func (l *Loop) isStarted() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	return l.started
}

// signal wakes the loops.
func (l *Loop) signal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		return
	}
	one := uint64(1)
	for _, w := range l.workers {
		if w.wake >= 0 {
			syscall.Write(w.wake, (*[8]byte)(unsafe.Pointer(&one))[:])
		}
	}
}

func (l *loopWorker) run() {
	events := make([]syscall.EpollEvent, 256)
	listening := true
	for {
		if l.closing.Load() {
			if listening {
				l.unlisten()
				listening = false
			}
			if l.closeQuiet(l.closed.Load()) {
				return
			}
		}
		if !l.acceptAgain.IsZero() && listening && !time.Now().Before(l.acceptAgain) {
			l.acceptAgain = time.Time{}
			l.listen()
		}
		timeout := -1
		if len(l.conns) > 0 || !l.acceptAgain.IsZero() {
			timeout = int(loopTick / time.Millisecond)
		}
		if len(l.pending) > 0 {
			timeout = 0
		}
		n, err := syscall.EpollWait(l.ep, events, timeout)
		if err != nil && err != syscall.EINTR {
			l.Handler.opts.Log.Error("event loop stopped", "error", err.Error())
			l.closing.Store(true)
			l.closed.Store(true)
			l.signal()
			continue
		}
		now := time.Now()
		round := events[:max(n, 0)]
		if len(l.pending) > 0 {
			// The events the last round's check took go first: an fd
			// seen twice is read once more and finds nothing.
			l.round = append(append(l.round[:0], l.pending...), round...)
			l.pending = l.pending[:0]
			round = l.round
		}
		for _, ev := range round {
			fd := int(ev.Fd)
			switch fd {
			case l.lfd:
				if listening {
					l.accept(now)
				}
				continue
			case l.wake:
				var b [8]byte
				syscall.Read(l.wake, b[:])
				l.takeInbox(now)
				continue
			}
			c := l.conns[fd]
			if c == nil || c.closed {
				continue
			}
			if ev.Events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
				l.writable(c, now)
			}
			if !c.closed && ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
				l.readable(c, ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLERR|syscall.EPOLLHUP) != 0, now)
			}
		}
		l.writeRound(now)
		if now.Sub(l.lastScan) >= loopTick {
			l.lastScan = now
			l.scan(now)
			l.writeRound(now) // a request sent again on a new connection
		}
	}
}

// writeRound writes the requests for the app that this round of events
// made, and the answers to senders it left for the round's end: all of
// them with one system call where the batch is set up. Writing them may
// serve requests that were waiting, whose writes follow in turn.
func (l *loopWorker) writeRound(now time.Time) {
	for {
		if l.reusing {
			l.checkPicked(now)
		}
		if len(l.toApp) == 0 && len(l.toSender) == 0 {
			return
		}
		apps, senders := l.toApp, l.toSender
		l.toApp, l.toSender = l.spareApp[:0], l.spareSends[:0]
		for _, a := range apps {
			if a.sender != nil {
				l.write(a, now)
			}
		}
		for _, c := range senders {
			l.write(c, now)
		}
		if l.batch != nil {
			l.batch.run(func(c *lconn, n int, err error) { l.wrote(c, n, err, now) })
		}
		clear(apps)
		clear(senders)
		l.spareApp, l.spareSends = apps[:0], senders[:0]
	}
}

// write queues c.out in the round's batch, or writes it at once without
// one. A connection closed since its write was planned is left out: its
// descriptor may already be another connection's.
func (l *loopWorker) write(c *lconn, now time.Time) {
	if l.batch == nil {
		if !c.closed && len(c.out) > 0 {
			l.flush(c, now)
		}
		return
	}
	if l.batch.full() { // write what it holds first
		l.batch.run(func(c *lconn, n int, err error) { l.wrote(c, n, err, now) })
	}
	if c.queued {
		return // named twice in the round's lists: its out goes once
	}
	if c.closed || len(c.out) == 0 {
		c.answering = nil
		return
	}
	l.batch.add(c)
}

// wrote takes the result of c's batched write, as flush takes one of
// write(2), then writes what is left, and finishes an answer.
func (l *loopWorker) wrote(c *lconn, n int, err error, now time.Time) {
	out := c.answering
	c.answering = nil
	if c.closed {
		return
	}
	switch {
	case err == syscall.EAGAIN: // the rest when the socket is writable (EPOLLOUT)
		if !c.toApp {
			l.answered(c, out, nil, now)
		}
		return
	case err == syscall.EINTR:
	case err != nil || n <= 0 || n > len(c.out):
		if c.toApp {
			l.appFailed(c, err, now)
		} else {
			l.drop(c)
		}
		return
	default:
		c.out = c.out[n:]
	}
	if !l.flush(c, now) || c.toApp {
		return
	}
	l.answered(c, out, nil, now)
}

// errStray is the failure of a pooled app connection on which bytes, or
// the app's close, arrived before any of the request was written.
var errStray = errors.New("the app sent bytes or closed before the request was written")

// checkPicked looks, right before the round's requests are written, for
// what arrived since the round's events were read: bytes (or a close) on
// a pooled connection that this round picked, and has not written to yet,
// cannot be the answer to its request, and must never be read as one. Its
// request is sent again on a new connection, as for a reused connection
// that fails before any answer; an idle connection stirred is closed; any
// other event is kept for the next round. One epoll_wait per round that
// reuses a connection, where a peek at each pick cost one per request and
// left more time between the check and the write.
func (l *loopWorker) checkPicked(now time.Time) {
	l.reusing = false
	const stirred = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLERR | syscall.EPOLLHUP
	for {
		n, err := syscall.EpollWait(l.ep, l.late, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range l.late[:n] {
			a := l.conns[int(ev.Fd)]
			switch {
			case a == nil || !a.toApp || a.closed || ev.Events&stirred == 0:
			case a.sender == nil:
				l.drop(a)
				continue
			case a.reused && !a.gotBytes && len(a.out) > 0 && len(a.out) == len(a.request):
				l.appFailed(a, errStray, now)
				continue
			}
			l.pending = append(l.pending, ev)
		}
		if n < len(l.late) {
			return // all taken: the rest are in l.pending
		}
	}
}

// closeQuiet closes the connections with nothing in progress (all of them
// with all) and reports whether none is left.
func (l *loopWorker) closeQuiet(all bool) bool {
	for _, c := range l.conns {
		if all || c.toApp && c.sender == nil || !c.toApp && c.del == nil && len(c.out) == 0 && !c.partial {
			l.drop(c)
		}
	}
	return len(l.conns) == 0
}

// accept takes the pending connections: one per round of events when
// other loops share the listening socket, so that a burst of connections
// spreads over the loops (the socket stays ready while any is pending).
func (l *loopWorker) accept(now time.Time) {
	for taken := 0; taken == 0 || len(l.workers) == 1; taken++ {
		fd, sa, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		switch err {
		case nil:
		case syscall.EAGAIN:
			return
		case syscall.ECONNABORTED, syscall.EINTR:
			continue
		default:
			// Out of descriptors or memory: as net/http, stop accepting
			// for a while (the listening socket stays ready, and would
			// wake the loop at once) and keep serving.
			l.acceptAgain = now.Add(100 * time.Millisecond)
			syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, l.lfd, nil)
			l.Handler.opts.Log.Warn("accept failed; retrying in 100ms", "error", err.Error())
			return
		}
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		a := accepted{fd, sockaddrString(sa)}
		if !l.give(a) {
			l.add(&lconn{fd: a.fd, remote: a.remote, first: true, since: now})
		}
	}
}

// give hands a to the loop with the fewest senders, when that is not w,
// and reports whether it did. The loop that wakes for a new connection is
// whichever waits, and the kernel may wake the same one for a whole
// burst; giving evens the connections out, as they are long-lived.
func (l *loopWorker) give(a accepted) bool {
	if len(l.workers) == 1 {
		return false
	}
	to := l
	for _, o := range l.workers {
		if o.senders.Load() < to.senders.Load() {
			to = o
		}
	}
	if to == l {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if to.wake < 0 { // it has stopped
		return false
	}
	to.inbox = append(to.inbox, a)
	to.senders.Add(1) // counted now, so that the next pick sees it
	one := uint64(1)
	syscall.Write(to.wake, (*[8]byte)(unsafe.Pointer(&one))[:])
	return true
}

// takeInbox adds the connections other loops gave w.
func (l *loopWorker) takeInbox(now time.Time) {
	l.mu.Lock()
	in := l.inbox
	l.inbox = nil
	l.mu.Unlock()
	for _, a := range in {
		l.senders.Add(-1) // add counts it again
		l.add(&lconn{fd: a.fd, remote: a.remote, first: true, since: now})
	}
}

func sockaddrString(sa syscall.Sockaddr) string {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	case *syscall.SockaddrInet6:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	}
	return ""
}

// add registers c for edge-triggered reads and writes.
func (l *loopWorker) add(c *lconn) bool {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | (syscall.EPOLLET & 0xffffffff), Fd: int32(c.fd)}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		syscall.Close(c.fd)
		return false
	}
	l.conns[c.fd] = c
	if !c.toApp {
		l.senders.Add(1)
	}
	return true
}

// forget removes c from w's connections.
func (l *loopWorker) forget(c *lconn) {
	delete(l.conns, c.fd)
	if !c.toApp {
		l.senders.Add(-1)
	}
}

// drop closes c. A sender's delivery in flight is settled as not
// acknowledged; the app connection of an exchange is closed with it.
func (l *loopWorker) drop(c *lconn) {
	if c.closed {
		return
	}
	c.closed = true
	l.forget(c)
	syscall.Close(c.fd)
	if c.toApp {
		if s := c.sender; s != nil {
			c.sender, s.app = nil, nil
			l.drop(s)
		}
		return
	}
	if a := c.app; a != nil {
		c.app, a.sender = nil, nil
		l.drop(a)
	}
	if c.del != nil {
		c.del.rec.outcome, c.del.rec.reason = OutcomeUpstreamFailed, ReasonUpstreamError
		c.del.rec.err = errors.New("connection closed during the exchange")
		l.Handler.end(c.del)
		c.del = nil
	}
}

// readable reads what the edge announced and acts on it: once, and again
// only when the read filled the buffer or the peer closed (hup), whose end
// of file must be read now: no other edge will announce it.
func (l *loopWorker) readable(c *lconn, hup bool, now time.Time) {
	c.hup = c.hup || hup
	c.full = false
	sized := false
	for {
		// A sender's buffer holds at most loopMaxRequest bytes: a
		// request that does not fit is handed over (and the rest left
		// in the socket), so that a connection costs the loop little
		// memory however much its sender sends.
		rb := l.rbuf
		// A buffer with room for a large answer (parseAnswer sizes one
		// for a body whose length is known) is read into directly, not
		// through rbuf: a 1 MiB answer is not copied once more.
		direct := c.toApp && cap(c.buf)-len(c.buf) >= maxPooledBuffer
		if direct {
			rb = c.buf[len(c.buf):cap(c.buf)]
			rb = rb[:min(len(rb), len(l.rbuf))]
		}
		if !c.toApp {
			room := loopMaxRequest - len(c.buf)
			if room <= 0 {
				c.full = true
				break
			}
			rb = rb[:min(room, len(rb))]
		}
		n, err := rawRead(c.fd, rb)
		if n > 0 {
			switch {
			case direct:
				c.buf = c.buf[:len(c.buf)+n]
			case c.buf == nil:
				c.buf = l.buffer()
				fallthrough
			default:
				c.buf = append(c.buf, rb[:n]...)
			}
		}
		if err == syscall.EAGAIN {
			break
		}
		if err == syscall.EINTR {
			continue
		}
		if n <= 0 {
			c.eof = true
			if err != nil {
				c.rerr = err
			}
			break
		}
		if n < len(rb) && !c.hup || len(c.buf) > maxResponseHeaderBytes+maxResponseBytes {
			break
		}
		if c.toApp && !direct && !sized && c.sender != nil {
			// A large answer arriving: parseAnswer sizes the buffer
			// for a body whose length its head gives, so that the
			// rest is read into it directly. (Once: a chunked body's
			// framing is walked on each parse.)
			sized = true
			l.parseAnswer(c)
		}
	}
	if c.toApp {
		l.appData(c, now)
		return
	}
	l.next(c, now)
}

// writable writes what is pending.
func (l *loopWorker) writable(c *lconn, now time.Time) {
	if c.toApp && c.connecting {
		c.connecting = false
		errno, err := syscall.GetsockoptInt(c.fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err == nil && errno != 0 {
			err = syscall.Errno(errno)
		}
		if err != nil {
			l.appFailed(c, err, now)
			return
		}
	}
	if c.answering != nil {
		return // written with the round's requests
	}
	if len(c.out) > 0 && l.flush(c, now) && !c.toApp && len(c.out) == 0 {
		l.next(c, now) // requests that arrived while the answer was written
	}
}

// flush writes c.out; it reports false when c was dropped.
func (l *loopWorker) flush(c *lconn, now time.Time) bool {
	for {
		if len(c.out) == 0 {
			if len(c.tail) == 0 {
				break
			}
			c.out, c.tail = c.tail, nil // the body, after its head
		}
		n, err := rawWrite(c.fd, c.out)
		if err == syscall.EAGAIN {
			return true
		}
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			if c.toApp {
				l.appFailed(c, err, now)
			} else {
				l.drop(c)
			}
			return false
		}
		c.out = c.out[n:]
	}
	c.out = nil
	if !c.toApp && c.closeAfter {
		l.drop(c)
		return false
	}
	return true
}

// senderData serves the next complete request in c's buffer, if no other
// is in progress on c.
func (l *loopWorker) senderData(c *lconn, now time.Time) {
	for !c.closed && c.del == nil && len(c.out) == 0 && len(c.buf) > 0 {
		if c.closeAfter {
			return
		}
		end := headEnd(c.buf)
		if end < 0 {
			l.incomplete(c, now, len(c.buf) >= loopMaxRequest)
			return
		}
		if c.det == nil {
			c.det = l.detached(c.remote)
		}
		req, ok := c.det.Parse(string(c.buf[:end]))
		if !ok || req.ContentLength > loopMaxRequest-int64(end) {
			l.handOff(c, l.Handler.metrics.handoffRequest)
			return
		}
		total := end + int(req.ContentLength)
		if len(c.buf) < total {
			l.incomplete(c, now, false)
			return
		}
		c.partial, c.headLen = false, total
		c.det.SetBody(c.buf[end:total])
		l.serveRequest(c, req, c.buf[end:total], now)
	}
}

// incomplete notes a request not all read: it is handed over at once when
// over, and otherwise after loopPatience (see scan).
func (l *loopWorker) incomplete(c *lconn, now time.Time, over bool) {
	if over || c.eof {
		l.handOff(c, l.Handler.metrics.handoffRequest)
		return
	}
	if !c.partial {
		c.partial, c.since = true, now
	}
}

// headEnd returns the length of the request head at the start of b, up to
// and including the empty line that ends it, found as the goroutine
// engine finds it (the first line end followed by CRLF or LF), so that
// both engines frame a request the same way; or -1 when the head is not all
// there or b does not start with a request line (Fallback then deals with
// it).
func headEnd(b []byte) int {
	if len(b) == 0 || b[0] == '\r' || b[0] == '\n' {
		return -1
	}
	end := -1
	if i := bytes.Index(b, []byte("\n\r\n")); i >= 0 {
		end = i + 3
	}
	if j := bytes.Index(b, []byte("\n\n")); j >= 0 && (end < 0 || j+2 < end) {
		end = j + 2
	}
	return end
}

// serveRequest runs the checks on c's request, whose body is in c.buf,
// and answers it, or starts its exchange with the app.
func (l *loopWorker) serveRequest(c *lconn, req *http.Request, body []byte, now time.Time) {
	h := l.Handler
	// The connection's own delivery: one request at a time is in
	// progress on it.
	c.dv = delivery{}
	d := &c.dv
	h.start(d, req)
	// The body stays where it is until the answer (answer moves the next
	// request's bytes over it only after end): c.buf grows only past it.
	d.held = body
	c.w = c.det.Writer(req, now)
	if l.closing.Load() {
		c.w.Header().Set("Connection", "close")
	}
	if !h.check(c.w, req, d) {
		l.answer(c, d, now)
		return
	}
	sent := h.beginForward(d, req, false)
	c.del = d
	l.req.Reset()
	if err := d.o.write(l.bw); err != nil {
		l.bw.Reset(&l.req)
		h.respond(c.w, d, nil, upstreamError(sent.Add(h.fwd.timeout), err))
		c.del = nil
		l.answer(c, d, now)
		return
	}
	l.exchange(c, l.req.Bytes(), sent, sent.Add(h.fwd.timeout), false, now)
	if l.req.Cap() > 64<<10 {
		l.req = bytes.Buffer{}
	}
}

// exchange sends request to the app for sender c, on a pooled connection
// or (with fresh, or none pooled) a new one.
func (l *loopWorker) exchange(c *lconn, request []byte, sent, deadline time.Time, fresh bool, now time.Time) {
	var a *lconn
	if !fresh {
		a = l.pooled(now)
	}
	if a == nil {
		var err error
		if a, err = l.dial(); err != nil {
			l.replyApp(c, nil, upstreamError(deadline, err), now)
			return
		}
	}
	a.sender, c.app = c, a
	// The request is kept (in a buffer of the connection's) until the
	// answer, to be sent again on a new connection if this one fails
	// before any answer.
	a.request = append(a.request[:0], request...)
	a.sent, a.deadline, a.gotBytes = sent, deadline, false
	a.out = a.request
	if !a.connecting {
		// Written after the other ready requests have been checked (see
		// run), so that requests that arrived together reach the app
		// together and wake it once, as nginx's do.
		l.toApp = append(l.toApp, a)
	}
}

// pooled returns the most recently used kept-alive app connection that is
// still fresh, closing those that are not.
func (l *loopWorker) pooled(now time.Time) *lconn {
	timeout := l.Handler.fwd.client.idleTimeout()
	for len(l.idle) > 0 {
		a := l.idle[len(l.idle)-1]
		l.idle = l.idle[:len(l.idle)-1]
		if a.closed {
			continue
		}
		if now.Sub(a.lastUsed) >= timeout {
			l.drop(a)
			continue
		}
		a.reused = true
		l.reusing = true
		return a
	}
	return nil
}

// dial starts a connection to the app.
func (l *loopWorker) dial() (*lconn, error) {
	fd, err := syscall.Socket(l.upFamily, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	a := &lconn{fd: fd, toApp: true}
	err = syscall.Connect(fd, l.upAddr)
	switch err {
	case nil:
	case syscall.EINPROGRESS:
		a.connecting = true
	default:
		syscall.Close(fd)
		return nil, err
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if !l.add(a) {
		return nil, errors.New("epoll_ctl failed")
	}
	return a, nil
}

// appData reads the app's answer, and answers the sender once it is all
// there.
func (l *loopWorker) appData(a *lconn, now time.Time) {
	c := a.sender
	if c == nil {
		l.drop(a) // an idle connection that the app closed or wrote to
		return
	}
	if len(a.buf) > 0 {
		a.gotBytes = true
	}
	ur, used, err := l.parseAnswer(a)
	switch {
	case errors.Is(err, errLargeAnswer):
		l.streamAnswer(a)
		return
	case errors.Is(err, errNeedMore):
		if len(a.buf) > maxResponseHeaderBytes+maxResponseBytes {
			// readable reads no more than this: an answer not whole by
			// now (a chunked one of small chunks, whose framing adds to
			// its data) is streamed, never left waiting for an edge that
			// will not come.
			l.streamAnswer(a)
		}
		return
	case err != nil:
		l.appFailed(a, err, now)
		return
	}
	// Kept only when the answer ended cleanly after the whole request
	// was written (an app may answer before reading all of it).
	keep := !a.hd.close && used == len(a.buf) && !a.eof && len(a.out) == 0
	a.sender, c.app = nil, nil
	a.out = nil
	if cap(a.request) > 64<<10 {
		a.request = nil
	}
	buf := a.buf // ur.body may be part of it
	a.buf = nil
	if keep && len(l.idle) < l.maxIdle && !l.closing.Load() {
		a.lastUsed = now
		a.reused = false
		l.idle = append(l.idle, a)
	} else {
		l.drop(a)
	}
	l.replyApp(c, ur, nil, now)
	a.ur.body = nil // sent: not kept, up to 1 MiB, with an idle connection
	l.release(&buf)
}

// appFailed ends an exchange that broke: it is sent again once on a new
// connection when a reused one failed before any answer, as the goroutine
// engine's does; otherwise the sender gets the status the failure maps to.
func (l *loopWorker) appFailed(a *lconn, err error, now time.Time) {
	c := a.sender
	a.sender = nil
	l.drop(a)
	if c == nil {
		return
	}
	c.app = nil
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	if a.reused && !a.gotBytes && now.Before(a.deadline) {
		if len(a.out) < len(a.request) { // some of it reached the app
			l.Handler.metrics.resends.Inc()
		}
		l.exchange(c, a.request, a.sent, a.deadline, true, now)
		return
	}
	l.replyApp(c, nil, upstreamError(a.deadline, err), now)
}

// parseAnswer parses the app's answer in a.buf: the final head, 1xx ones
// skipped, and the body held in full. It returns errNeedMore while the
// answer is incomplete.
func (l *loopWorker) parseAnswer(a *lconn) (ur *upstreamResponse, used int, err error) {
	l.src = needMore{b: a.buf, eof: a.eof, err: a.rerr}
	br := l.abr
	br.Reset(&l.src)
	hd := &a.hd
	if err := hd.readFinal(br); err != nil {
		if errors.Is(err, errNeedMore) && len(a.buf) > maxResponseHeaderBytes {
			return nil, 0, errResponseHeadersTooLarge
		}
		return nil, 0, err
	}
	headLen := len(a.buf) - len(l.src.b) - br.Buffered()
	if headLen > maxResponseHeaderBytes {
		return nil, 0, errResponseHeadersTooLarge
	}
	// Before holding the body (a copy of it), see whether it is all here,
	// without copying: the answer is parsed again on each read until it
	// is, and holding it each time made a 1 MB answer cost the loop about
	// ten times that in allocations, and quadratic time.
	rest := a.buf[headLen:]
	if err := bodyArrived(hd, rest, a.eof || a.rerr != nil); err != nil {
		if need := headLen + int(hd.length); errors.Is(err, errNeedMore) && hd.length > 0 && cap(a.buf) < need {
			// Room for the rest of a body whose length is known, in
			// one allocation rather than by doubling as it arrives.
			a.buf = append(make([]byte, 0, need), a.buf...)
		}
		return nil, 0, err
	}
	var body []byte
	if hd.length > 0 && int64(len(rest)) >= hd.length {
		// All here, and framed by its length: the body is the buffer's
		// own bytes, not a copy; the caller keeps a.buf until the
		// answer is rendered. (bodyArrived lets a shorter body through
		// once the connection has ended, for holdBody to refuse.)
		body = rest[:hd.length:hd.length]
		used = headLen + int(hd.length)
	} else {
		var complete bool
		_, body, complete, err = holdBody(br, hd)
		if err != nil {
			return nil, 0, err
		}
		if !complete || len(body) > maxResponseBytes {
			// (Complete at maxResponseBytes+1: streamed all the same, as
			// the goroutine engine streams it.)
			return nil, 0, errLargeAnswer
		}
		used = len(a.buf) - len(l.src.b) - br.Buffered()
	}
	// The answer is the connection's, as a Request is its sender's: it
	// is used up when replyApp has rendered the sender's answer.
	ur = &a.ur
	*ur = upstreamResponse{status: hd.status, body: body}
	hd.header(&ur.header, len(ur.body))
	return ur, used, nil
}

// bodyArrived reports, from rest (the bytes after the head) alone, an
// answer's body that has not all arrived: errNeedMore, or errLargeAnswer
// once it is known to be over maxResponseBytes. It returns nil when the
// body may be complete, or the connection has ended (settled), for
// holdBody to read and judge; for a chunked body it is errNeedMore exactly
// when the chunked reader would wait for more (see chunkedArrived).
func bodyArrived(hd *respHead, rest []byte, settled bool) error {
	var have int64
	switch {
	case hd.length == 0:
		return nil
	case hd.chunked:
		n, complete, bad := chunkedArrived(rest)
		if complete || bad {
			return nil
		}
		have = n
	case hd.length > 0:
		if hd.length > maxResponseBytes {
			return errLargeAnswer
		}
		if int64(len(rest)) >= hd.length {
			return nil
		}
		have = int64(len(rest))
	default: // up to the connection's end
		have = int64(len(rest))
	}
	switch {
	case have > maxResponseBytes:
		return errLargeAnswer
	case settled:
		return nil
	}
	return errNeedMore
}

// chunkedArrived walks the chunks in b without copying them: it returns
// the data bytes seen, whether the last chunk and the trailer's end are
// in b, and bad for what it does not read (the chunked reader then says
// what is wrong). It waits for more only where the goroutine engine's
// reader would: a line that ends in a bare LF or holds a CR, or chunk
// data not followed by CRLF, is bad at once (it waited, and the answer
// was a 504 at the timeout where the goroutine engine's is a 502 at
// once), and the trailer ends as readTrailer reads it, at a first CRLF or
// at "\r\n\r\n".
func chunkedArrived(b []byte) (n int64, complete, bad bool) {
	var excess int64
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return n, false, len(b) > 4096 // the reader's longest line
		}
		if i == 0 || bytes.IndexByte(b[:i], '\r') != i-1 { // CRLF, and no other CR
			return n, false, true
		}
		// What is not data, counted as the reader counts it (it refuses
		// more than 16 KiB past 16 bytes a chunk and twice its data).
		excess += int64(i) + 1
		line := bytes.TrimRight(b[:i], " \t\r")
		b = b[i+1:]
		if j := bytes.IndexByte(line, ';'); j >= 0 {
			line = line[:j] // (with what precedes ';': the reader refuses "5 ;x")
		}
		if len(line) == 0 || len(line) > 15 {
			return n, false, true
		}
		size, err := strconv.ParseInt(string(line), 16, 64)
		if err != nil || line[0] == '+' || line[0] == '-' { // hex digits only, as the reader
			return n, false, true
		}
		if excess = max(excess-16-2*size, 0); excess > 16<<10 {
			return n, false, true
		}
		if size == 0 { // the last chunk: then the trailer
			switch {
			case len(b) >= 2 && b[0] == '\r' && b[1] == '\n',
				bytes.Contains(b, []byte("\r\n\r\n")):
				return n, true, false
			}
			return n, false, len(b) > 8<<10 // past what the reader looks ahead
		}
		if int64(len(b)) < size+2 {
			if int64(len(b)) > size && b[size] != '\r' {
				return n, false, true
			}
			return n + min(int64(len(b)), size), false, false
		}
		if b[size] != '\r' || b[size+1] != '\n' {
			return n, false, true
		}
		n += size
		b = b[size+2:]
	}
}

// replyApp answers sender c from the app's answer ur or the failure perr.
func (l *loopWorker) replyApp(c *lconn, ur *upstreamResponse, perr *Error, now time.Time) {
	d := c.del
	c.del = nil
	// A large body goes out from the buffer it was read into (the
	// caller's until answer has written it), not through a copy.
	c.det.Refer(referBody)
	l.Handler.respond(c.w, d, ur, perr)
	l.answer(c, d, now)
}

// referBody is the size from which the body of an app's answer is written
// to the sender from where it was read rather than copied: larger than
// maxPooledBuffer, so that the buffer it is in is never reused before it
// has been written.
const referBody = 64 << 10

// answer ends d and writes c's answer, then serves the next request
// already read, if any.
func (l *loopWorker) answer(c *lconn, d *delivery, now time.Time) {
	l.served.Add(1)
	l.Handler.end(d)
	out, tail, keep := c.det.Finish()
	c.buf = c.buf[:copy(c.buf, c.buf[c.headLen:])]
	c.headLen = 0
	if len(c.buf) == 0 {
		l.release(&c.buf)
	}
	c.first, c.since = false, now
	c.closeAfter = !keep
	c.out, c.tail = out, tail
	c.writeBy = d.rec.start.Add(l.Fallback.WriteTimeout)
	if l.batch != nil && tail == nil && len(out) > 0 {
		c.answering = out // written with the round's requests (writeRound)
		l.toSender = append(l.toSender, c)
		return
	}
	if !l.flush(c, now) {
		return
	}
	l.answered(c, out, tail, now)
}

// answered follows the first write of c's answer, whose output was out
// and tail: it gives the Detached back, and serves the next request
// already read once the whole answer is written.
func (l *loopWorker) answered(c *lconn, out, tail []byte, now time.Time) {
	if len(c.out) > 0 && (len(c.tail) > 0 || tail == nil) && cap(out) <= h1.RetainedOut {
		c.out = append([]byte(nil), c.out...) // what is left of out, which is the Detached's
	}
	l.dets = append(l.dets, c.det)
	c.det, c.w = nil, nil
	if len(c.out) == 0 {
		l.next(c, now)
	}
}

// detached returns a Detached for a request from remote.
func (l *loopWorker) detached(remote string) *h1.Detached {
	if n := len(l.dets); n > 0 {
		d := l.dets[n-1]
		l.dets = l.dets[:n-1]
		d.Reset(remote)
		return d
	}
	return l.Fallback.Detach(remote)
}

// buffer returns an empty read buffer.
func (l *loopWorker) buffer() []byte {
	if n := len(l.bufs); n > 0 {
		b := l.bufs[n-1]
		l.bufs = l.bufs[:n-1]
		return b
	}
	return make([]byte, 0, 4<<10)
}

// maxPooledBuffer is the capacity of the largest read buffer release keeps
// for reuse.
const maxPooledBuffer = 16 << 10

// release returns *b to the free list, unless it grew large, and clears it.
func (l *loopWorker) release(b *[]byte) {
	if *b != nil && cap(*b) <= maxPooledBuffer {
		l.bufs = append(l.bufs, (*b)[:0])
	}
	*b = nil
}

// next serves the requests c's sender sent while the last one was
// answered, and closes c when its sender has left and nothing is left to
// answer.
func (l *loopWorker) next(c *lconn, now time.Time) {
	l.senderData(c, now)
	if !c.closed && c.full && !c.closeAfter && c.del == nil && len(c.out) == 0 {
		l.readable(c, false, now) // what is left in the socket, now that there is room
		return
	}
	if !c.closed && c.eof && c.del == nil && len(c.out) == 0 && len(c.buf) == 0 {
		l.drop(c)
	}
}

// handOff gives c, with what was read of it, to Fallback.
func (l *loopWorker) handOff(c *lconn, count prometheus.Counter) {
	count.Inc()
	syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, c.fd, nil)
	l.forget(c)
	c.closed = true
	f := os.NewFile(uintptr(c.fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil { // out of descriptors: the sender sees its connection close
		l.Handler.opts.Log.Warn("a connection could not be handed to the goroutine engine; closed", "error", err.Error())
		return
	}
	var began time.Time
	if c.partial {
		began = c.since
	}
	l.Fallback.Adopt(nc, c.remote, c.buf, began)
}

// streamAnswer hands an exchange whose answer is larger than
// maxResponseBytes to a goroutine, which streams it to the sender with the
// goroutine engine's code, answers, and closes both connections.
func (l *loopWorker) streamAnswer(a *lconn) {
	c := a.sender
	d := c.del
	c.del, c.app, a.sender = nil, nil, nil
	l.Handler.metrics.handoffAnswer.Inc()
	var conns [2]net.Conn
	var errs [2]error
	for i, x := range [2]*lconn{a, c} {
		syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, x.fd, nil)
		l.forget(x)
		x.closed = true
		f := os.NewFile(uintptr(x.fd), "")
		conns[i], errs[i] = net.FileConn(f)
		f.Close()
	}
	untrack := l.trackStream(conns)
	client := l.Handler.fwd.client
	go func() {
		defer untrack()
		app, sender := conns[0], conns[1]
		defer func() {
			if sender != nil {
				sender.Close()
			}
		}()
		var ur *upstreamResponse
		var perr *Error
		if app == nil || sender == nil {
			if app != nil {
				app.Close()
			}
			// (Out of descriptors: 503 overloaded, as when dialing.)
			perr = upstreamError(a.deadline, fmt.Errorf("the connection could not be handed over: %w", errors.Join(errs[:]...)))
		} else {
			app.SetReadDeadline(a.deadline)
			cc := &clientConn{conn: app}
			cc.read.r = io.MultiReader(bytes.NewReader(a.buf), app)
			cc.br = bufio.NewReaderSize(&cc.read, 8<<10)
			var err error
			if err = cc.readFinalHead(); err == nil {
				cc.head.close = true // not pooled: the pool's connections are the goroutine engine's
				ur, err = client.readBody(cc)
			}
			if err != nil {
				app.Close()
				perr = upstreamError(a.deadline, err)
			}
		}
		if sender != nil {
			sender.SetWriteDeadline(d.rec.start.Add(l.Fallback.WriteTimeout))
			c.det.Stream(sender)
		} else {
			c.det.Stream(io.Discard)
		}
		l.Handler.respond(c.w, d, ur, perr)
		// Ended, its dedupe claim settled, before the answer's last bytes
		// (all of a 502's) leave, as answer does and as the goroutine
		// engine does (its answer is flushed once ServeHTTP has ended it):
		// a sender that reads a 502 and retries at once is forwarded
		// again, not told that its delivery is still in flight (409). And
		// not after the linger, which is the connection's, not the
		// request's.
		l.Handler.end(d)
		if !d.rec.aborted {
			// (Aborted: the app's answer broke after its status was
			// sent, and the sender must not read it as complete.)
			c.det.Finish()
			if sender != nil {
				lingerClose(sender)
			}
		}
	}()
}

// trackStream records a streamed answer's connections, for Shutdown and
// Close, until the function it returns is called.
func (l *Loop) trackStream(conns [2]net.Conn) (untrack func()) {
	l.streamMu.Lock()
	defer l.streamMu.Unlock()
	l.streams.Add(1)
	if l.streamConns == nil {
		l.streamConns = make(map[net.Conn]struct{})
	}
	for _, nc := range conns {
		if nc != nil {
			l.streamConns[nc] = struct{}{}
		}
	}
	return func() {
		l.streamMu.Lock()
		for _, nc := range conns {
			delete(l.streamConns, nc)
		}
		l.streamMu.Unlock()
		l.streams.Done()
	}
}

// lingerTimeout bounds lingerClose's read; tests set lingerFor
// (nanoseconds) to make it longer.
const lingerTimeout = 500 * time.Millisecond

var lingerFor atomic.Int64

// lingerClose ends the sending side of nc and reads what the sender still
// sends (a pipelined request the loop had not read), for up to 500 ms, so
// that the close that follows does not reset the connection over unread
// bytes: a reset makes the sender's kernel drop the end of the answer it
// has not read yet.
func lingerClose(nc net.Conn) {
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	wait := lingerTimeout
	if n := lingerFor.Load(); n > 0 {
		wait = time.Duration(n)
	}
	nc.SetReadDeadline(time.Now().Add(wait))
	io.CopyN(io.Discard, nc, 256<<10)
}

// scan enforces deadlines: the header, idle and write timeouts of
// senders, the patience for incomplete requests, the exchange's deadline
// and the idle timeout of pooled app connections.
func (l *loopWorker) scan(now time.Time) {
	fb := l.Fallback
	appIdle := l.Handler.fwd.client.idleTimeout()
	for _, c := range l.conns {
		switch {
		case c.toApp && c.sender != nil:
			if !now.Before(c.deadline) {
				l.appFailed(c, context.DeadlineExceeded, now)
			}
		case c.toApp:
			if now.Sub(c.lastUsed) >= appIdle {
				l.drop(c)
			}
		case len(c.out) > 0:
			if c.answering != nil {
				break // written at the round's end, right after this scan
			}
			if fb.WriteTimeout > 0 && !now.Before(c.writeBy) {
				l.drop(c)
			}
		case c.del != nil:
		case c.partial:
			if now.Sub(c.since) >= loopPatience {
				l.handOff(c, l.Handler.metrics.handoffSlow)
			}
		default:
			wait := fb.IdleTimeout
			if c.first {
				wait = fb.ReadHeaderTimeout
			}
			if wait > 0 && now.Sub(c.since) >= wait {
				l.drop(c)
			}
		}
	}
}
