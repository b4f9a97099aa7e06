//go:build linux && !race

package proxy

import (
	"syscall"
	"unsafe"
)

// rawRead and rawWrite are read(2) and write(2) on the event loop's
// non-blocking sockets, without the runtime's bookkeeping for calls that
// may block (these never do). With the race detector on, the syscall
// package's calls are used instead (loop_io_race.go): they tell the
// detector that what was written before a write happened before what the
// peer does after reading it.
func rawRead(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// ioReleased is a no-op without the race detector (see loop_io_race.go).
func ioReleased() {}
