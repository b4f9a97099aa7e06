//go:build linux && race

package proxy

import "syscall"

// rawRead and rawWrite: see loop_io.go.
func rawRead(fd int, b []byte) (int, error)  { return syscall.Read(fd, b) }
func rawWrite(fd int, b []byte) (int, error) { return syscall.Write(fd, b) }

// ioReleased tells the race detector, as syscall.Write does before each
// write, that what was written to memory so far happens before what a
// peer does after reading from any socket: batched writes bypass
// syscall.Write. A write of nothing to a descriptor that is not open
// carries that annotation and does nothing else.
func ioReleased() { syscall.Write(-1, nil) }
