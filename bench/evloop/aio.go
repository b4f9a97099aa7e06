//go:build linux

package main

import (
	"syscall"
	"unsafe"
)

// With -aio, evloop batches a round's writes as -uring does, but sends them
// with Linux AIO: one io_submit(2) takes a write to each socket, and for a
// socket the kernel runs the write at once, inside the call, so N writes to
// N sockets cost one system call, and one io_getevents(2) for their
// results, instead of N write(2)s. Unlike io_uring's, these calls are in
// the default seccomp profiles of Docker and containerd (RuntimeDefault),
// so a pod could use them. It measures what that batching saves.

const (
	aioEntries    = 256
	iocbCmdPwrite = 1
)

// iocb is the kernel's struct iocb (little-endian layout).
type iocb struct {
	data      uint64
	key       uint32
	rwFlags   int32
	opcode    uint16
	reqprio   int16
	fildes    uint32
	buf       uint64
	nbytes    uint64
	offset    int64
	reserved2 uint64
	flags     uint32
	resfd     uint32
}

// ioEvent is the kernel's struct io_event.
type ioEvent struct {
	data, obj uint64
	res, res2 int64
}

type aio struct {
	ctx    uintptr
	iocbs  []iocb
	ptrs   []uintptr // io_submit takes an array of pointers to iocbs
	events []ioEvent
	staged
}

var aioQ *aio // with -aio

func newAIO() (*aio, error) {
	a := &aio{
		iocbs:  make([]iocb, aioEntries),
		ptrs:   make([]uintptr, aioEntries),
		events: make([]ioEvent, aioEntries),
		staged: staged{arena: make([]byte, uringArena)},
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IO_SETUP, aioEntries, uintptr(unsafe.Pointer(&a.ctx)), 0); e != 0 {
		return nil, e
	}
	for i := range a.iocbs {
		a.ptrs[i] = uintptr(unsafe.Pointer(&a.iocbs[i]))
	}
	return a, nil
}

// send queues b for c, flushing first when the queue or the arena is full.
func (a *aio) send(c *conn, b []byte) {
	if !a.room(b, len(a.iocbs)) {
		a.flush()
	}
	buf, i := a.stage(c, b)
	if buf == nil {
		return
	}
	a.iocbs[i] = iocb{
		data:   uint64(i),
		opcode: iocbCmdPwrite,
		fildes: uint32(c.fd),
		buf:    uint64(uintptr(unsafe.Pointer(&buf[0]))),
		nbytes: uint64(len(buf)),
	}
}

// flush submits the queued writes with one io_submit, reaps their results
// with one io_getevents (a socket's write completes within io_submit), and
// closes the connections of those that failed or went out short.
func (a *aio) flush() {
	n := len(a.queued)
	if n == 0 {
		return
	}
	for sent := 0; sent < n; {
		r, _, e := syscall.RawSyscall(syscall.SYS_IO_SUBMIT, a.ctx, uintptr(n-sent), uintptr(unsafe.Pointer(&a.ptrs[sent])))
		if e != 0 && e != syscall.EINTR && e != syscall.EAGAIN {
			check(e)
		}
		if e == 0 {
			sent += int(r)
		}
	}
	for done := 0; done < n; {
		r, _, e := syscall.RawSyscall6(syscall.SYS_IO_GETEVENTS, a.ctx, uintptr(n-done), uintptr(len(a.events)), uintptr(unsafe.Pointer(&a.events[0])), 0, 0)
		if e != 0 && e != syscall.EINTR {
			check(e)
		}
		for _, ev := range a.events[:r] {
			a.done(int(ev.data), ev.res)
		}
		done += int(r)
	}
	a.reset()
}
