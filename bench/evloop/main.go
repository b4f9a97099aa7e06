//go:build linux

// Command evloop is the benchmark's floor for a proxy written in Go: one
// epoll loop on one locked thread, with no goroutine per connection and no
// netpoller, that forwards each request to the upstream over kept-alive
// connections and relays the answer. It checks nothing, rewrites no header
// and keeps no timeout; it frames messages by Content-Length only (a 204
// or 304 answer has no body) and answers 400 to anything else, and a write
// that does not go out whole fails its request. It shows what Go costs
// when the runtime's scheduler is out of the way, beside postern's HTTP
// engine (the engine row of ENGINE=1 bench/run): it was the prototype of
// postern's event loop (proxy.Loop), which does all that this one leaves
// out.
//
//	evloop -listen 127.0.0.1:18082 -upstream http://127.0.0.1:18080
//	evloop -checks -secret whsec_... -audit FILE -listen ... -upstream ...
//	evloop -uring -listen ... -upstream ...
//	evloop -aio -listen ... -upstream ...
//
// With -checks it also runs postern's checks on each request, with
// postern's own packages (see checker in checks.go): what they would cost
// on an event loop (the evchecks row). With -uring it writes through
// io_uring (see uring.go): what batching a round's system calls would save
// (the evuring row). With -aio it batches them with Linux AIO's io_submit
// (see aio.go), as postern's loop now does.
//
// It reads once per readiness edge (again only when the read filled its
// buffer), as nginx does, and uses raw system calls for reads and writes,
// which never block here: the only call that waits is epoll_wait.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

// conn is a client's connection or one to the upstream.
type conn struct {
	fd     int
	client bool
	buf    []byte // bytes read and not yet consumed
	peer   *conn  // the other side of the request in flight, if any
	closed bool

	// With -checks, a client's address and its request in flight.
	remote           string
	start            time.Time
	msgID, eventType string
	bytes            int
}

// The loop's state; only the loop's thread touches it.
var (
	conns  = map[int]*conn{}
	idle   []*conn // kept-alive upstream connections, most recent last
	epfd   int
	upAddr syscall.SockaddrInet4
	rbuf   = make([]byte, 64<<10)
	ck     *checker // with -checks
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18082", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:18080", "the app's base URL (http, IPv4)")
	checks := flag.Bool("checks", false, "run postern's checks on each request (see checker)")
	secret := flag.String("secret", "", "with -checks: the signing secret (whsec_...)")
	audit := flag.String("audit", os.DevNull, "with -checks: where the audit records go")
	useUring := flag.Bool("uring", false, "write through io_uring, a round's writes with one system call (see uring.go)")
	useAIO := flag.Bool("aio", false, "write through Linux AIO, a round's writes with one io_submit (see aio.go)")
	probe := flag.Bool("probe", false, "with -uring: only check that io_uring can be set up, and exit")
	flag.Parse()
	if *checks {
		ck = newChecker(*secret, *audit)
	}
	runtime.LockOSThread()
	if *useUring {
		var err error
		if ring, err = newUring(); err != nil {
			check(fmt.Errorf("io_uring: %w", err))
		}
		if *probe {
			return
		}
	}
	if *useAIO {
		var err error
		if aioQ, err = newAIO(); err != nil {
			check(fmt.Errorf("aio: %w", err))
		}
	}
	target, err := url.Parse(*upstream)
	check(err)
	ua, err := net.ResolveTCPAddr("tcp4", target.Host)
	check(err)
	upAddr.Port = ua.Port
	copy(upAddr.Addr[:], ua.IP.To4())
	la, err := net.ResolveTCPAddr("tcp4", *listen)
	check(err)
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	check(err)
	check(syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1))
	var sa syscall.SockaddrInet4
	sa.Port = la.Port
	copy(sa.Addr[:], la.IP.To4())
	check(syscall.Bind(lfd, &sa))
	check(syscall.Listen(lfd, 1024))
	epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	check(err)
	check(syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, lfd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(lfd)}))
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		check(err)
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				accept(lfd)
				continue
			}
			c := conns[fd]
			if c == nil || c.closed {
				continue
			}
			readable(c)
		}
		if ring != nil {
			ring.flush()
		}
		if aioQ != nil {
			aioQ.flush()
		}
	}
}

// accept takes every pending connection.
func accept(lfd int) {
	for {
		nfd, sa, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		syscall.SetsockoptInt(nfd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		c := &conn{fd: nfd, client: true}
		if a, ok := sa.(*syscall.SockaddrInet4); ok && ck != nil {
			c.remote = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
		}
		add(c)
	}
}

// add registers c for edge-triggered reads.
func add(c *conn) {
	conns[c.fd] = c
	check(syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, c.fd,
		&syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | (syscall.EPOLLET & 0xffffffff), Fd: int32(c.fd)}))
}

// closeConn closes c and the other side of its request in flight.
func closeConn(c *conn) {
	if c.closed {
		return
	}
	c.closed = true
	delete(conns, c.fd)
	if ring != nil && len(ring.queued) > 0 {
		ring.toClose = append(ring.toClose, c.fd)
	} else if aioQ != nil && len(aioQ.queued) > 0 {
		aioQ.toClose = append(aioQ.toClose, c.fd)
	} else {
		syscall.Close(c.fd)
	}
	if c.peer != nil {
		p := c.peer
		c.peer, p.peer = nil, nil
		closeConn(p)
	}
}

// readable reads what the edge announced: once, and again only when the
// read filled the buffer.
func readable(c *conn) {
	for {
		n, err := rawRead(c.fd, rbuf)
		if n > 0 {
			c.buf = append(c.buf, rbuf[:n]...)
		}
		if err == syscall.EAGAIN {
			break
		}
		if n <= 0 {
			closeConn(c)
			return
		}
		if n < len(rbuf) {
			break
		}
	}
	if c.client {
		clientData(c)
	} else {
		upstreamData(c)
	}
}

// message returns the length of the complete message at the start of b,
// or 0 when it is not all there yet; -1 when it cannot be framed.
func message(b []byte, response bool) int {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return 0
	}
	head := b[:end+2]
	length := 0
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		if bytes.EqualFold(name, []byte("Content-Length")) {
			v, err := strconv.Atoi(string(bytes.TrimSpace(value)))
			if err != nil {
				return -1
			}
			length = v
		}
		if bytes.EqualFold(name, []byte("Transfer-Encoding")) {
			return -1
		}
	}
	if response && (bytes.HasPrefix(b, []byte("HTTP/1.1 204 ")) || bytes.HasPrefix(b, []byte("HTTP/1.1 304 "))) {
		length = 0
	}
	if len(b) < end+4+length {
		return 0
	}
	return end + 4 + length
}

// clientData sends the client's next complete request, if one is buffered
// and none is in flight.
func clientData(c *conn) {
	if c.peer != nil || len(c.buf) == 0 {
		return // one request at a time
	}
	n := message(c.buf, false)
	if n < 0 {
		reply(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		closeConn(c)
		return
	}
	if n == 0 {
		return
	}
	req := c.buf[:n]
	if ck != nil {
		c.start, c.bytes = time.Now(), n
		var status int
		req, status, c.msgID, c.eventType = ck.request(c.buf[:n], c.start, c.remote)
		if status != 0 {
			reply(c, "HTTP/1.1 "+strconv.Itoa(status)+" "+http.StatusText(status)+"\r\nContent-Length: 0\r\n\r\n")
			ck.done(c, status, 0)
			consume(c, n)
			clientData(c)
			return
		}
	}
	u := upstreamConn()
	if u == nil {
		reply(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		consume(c, n)
		return
	}
	c.peer, u.peer = u, c
	if !send(u, req) {
		closeConn(u)
		return
	}
	consume(c, n)
}

// consume drops the first n buffered bytes of c, a message dealt with.
func consume(c *conn, n int) { c.buf = c.buf[:copy(c.buf, c.buf[n:])] }

// upstreamData relays a complete answer to its client and keeps the
// upstream connection.
func upstreamData(u *conn) {
	c := u.peer
	if c == nil {
		closeConn(u) // an answer nobody asked for
		return
	}
	n := message(u.buf, true)
	if n < 0 {
		closeConn(u)
		return
	}
	if n == 0 {
		return
	}
	ok := send(c, u.buf[:n])
	if ck != nil && n >= 12 {
		status, _ := strconv.Atoi(string(u.buf[9:12])) // "HTTP/1.1 204 ..."
		ck.done(c, status, status)
	}
	consume(u, n)
	c.peer, u.peer = nil, nil
	idle = append(idle, u)
	if !ok {
		closeConn(c)
		return
	}
	clientData(c) // a pipelined request
}

// upstreamConn returns a kept-alive upstream connection or a new one, or
// nil when the upstream cannot be reached.
func upstreamConn() *conn {
	for len(idle) > 0 {
		u := idle[len(idle)-1]
		idle = idle[:len(idle)-1]
		if !u.closed {
			return u
		}
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	// A blocking connect, then non-blocking use: on loopback it returns
	// at once.
	if err := syscall.Connect(fd, &upAddr); err != nil {
		syscall.Close(fd)
		return nil
	}
	syscall.SetNonblock(fd, true)
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	u := &conn{fd: fd}
	add(u)
	return u
}

// reply writes a fixed answer of the proxy's own.
func reply(c *conn, s string) { send(c, []byte(s)) }

// send writes b to c in one write, and reports whether it all went out: the
// benchmark's messages are small and the socket buffers empty, so a short
// write fails the request rather than wait for the socket (a floor, not a
// proxy). With -uring the write is queued for the round's end, and one
// that fails there closes c then.
func send(c *conn, b []byte) bool {
	if ring != nil {
		ring.send(c, b)
		return true
	}
	if aioQ != nil {
		aioQ.send(c, b)
		return true
	}
	return writeDirect(c.fd, b)
}

// writeDirect is one write(2) of b.
func writeDirect(fd int, b []byte) bool {
	n, err := rawWrite(fd, b)
	return err == nil && n == len(b)
}

// rawRead and rawWrite are read(2) and write(2) on non-blocking sockets,
// without telling the runtime: they never block.
func rawRead(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(ptr(b)), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(ptr(b)), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "evloop:", err)
		os.Exit(1)
	}
}

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }
