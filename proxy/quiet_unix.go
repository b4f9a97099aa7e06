//go:build unix

package proxy

import (
	"crypto/tls"
	"net"
	"syscall"
)

// peeker tells whether an idle connection is quiet with one non-blocking
// MSG_PEEK. It is made once per connection, at dial, so that the check
// allocates nothing.
type peeker struct {
	raw  syscall.RawConn // nil when SyscallConn failed: never quiet
	recv func(fd uintptr) bool
	idle bool
	buf  [1]byte
}

// newPeeker returns a peeker for conn, or nil when conn has no descriptor
// to peek at (then every connection counts as quiet).
func newPeeker(conn net.Conn) *peeker {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	p := &peeker{}
	p.recv = p.peek
	if raw, err := sc.SyscallConn(); err == nil {
		p.raw = raw
	}
	return p
}

func (p *peeker) peek(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	p.idle = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
	return true // never wait for readiness
}

// quiet reports whether the connection has nothing to read and is still
// open.
func (p *peeker) quiet() bool {
	if p == nil {
		return true
	}
	if p.raw == nil {
		return false
	}
	p.idle = false
	err := p.raw.Read(p.recv)
	return err == nil && p.idle
}
