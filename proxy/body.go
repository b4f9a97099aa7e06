package proxy

import (
	"errors"
	"io"
	"sync/atomic"
)

// initialBodyBuffer is the most memory a request's body gets before its
// bytes arrive.
const initialBodyBuffer = 16 << 10

// minBodyBudget is the least memory all bodies being read may hold together.
const minBodyBudget = 16 << 20

// errBudget is returned when all bodies together would exceed the budget.
var errBudget = errors.New("body memory budget exhausted")

// bodyBudget bounds the memory held by request bodies across all requests,
// so that a thousand clients announcing maximal bodies cannot make postern
// hold a thousand maximal buffers.
type bodyBudget struct {
	max  int64
	used atomic.Int64
}

func (b *bodyBudget) reserve(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) release(n int64) { b.used.Add(-n) }

// readBody reads r to the end into a buffer that grows with what actually
// arrives, reserving each growth from the budget. It returns the body and
// the bytes reserved, which the caller releases when done with the body.
// Framing ends the body at Content-Length; a shorter one is
// io.ErrUnexpectedEOF.
func (b *bodyBudget) readBody(r io.Reader, contentLength int64) (body []byte, reserved int64, err error) {
	size := int64(initialBodyBuffer)
	if contentLength >= 0 && contentLength < size {
		size = contentLength + 1 // +1 to see EOF without growing
	}
	if !b.reserve(size) {
		return nil, 0, errBudget
	}
	reserved = size
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			grow := int64(cap(buf))
			if contentLength >= 0 && int64(cap(buf))+grow > contentLength+1 {
				grow = contentLength + 1 - int64(cap(buf))
			}
			if grow < 512 {
				grow = 512
			}
			if !b.reserve(grow) {
				return buf, reserved, errBudget
			}
			reserved += grow
			next := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(next, buf)
			buf = next
		}
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return buf, reserved, rerr
		}
	}
	if contentLength >= 0 && int64(len(buf)) != contentLength {
		return buf, reserved, io.ErrUnexpectedEOF
	}
	return buf, reserved, nil
}
