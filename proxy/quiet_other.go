//go:build !unix

package proxy

import "net"

// peeker cannot peek on this platform; a stale connection is caught by the
// resend on a new connection instead.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return nil }

func (*peeker) quiet() bool { return true }
