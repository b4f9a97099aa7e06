package proxy

import (
	"syscall"
	"unsafe"
)

// batch writes to many sockets with one system call: Linux AIO's
// io_submit(2) takes a write for each, and for a socket the kernel runs
// the write at once, inside the call, as write(2) would (non-blocking, so
// a full socket answers EAGAIN); io_getevents(2) then returns the results.
// The event loop sends a round's requests to the app and its answers to
// senders this way: two system calls a round instead of one a write, each
// of which costs a microsecond or more here (bench/HISTORY.md, the
// fifteenth round). Unlike io_uring, these calls are allowed by the
// RuntimeDefault seccomp profile of containerd and Docker. Where they are
// not (io_setup fails), the loop writes each with write(2).
type batch struct {
	ctx    uintptr
	iocbs  []iocb
	ptrs   []uintptr // what io_submit takes: the iocbs' addresses
	events []ioEvent
	conns  []*lconn // the connection of each iocb
	// unbatched counts the writes io_submit did not take, which went out
	// with write(2) instead (for tests: none should).
	unbatched int
}

// batchSize bounds the writes of one io_submit; a round with more makes
// several.
const batchSize = 256

// iocb is the kernel's struct iocb (linux/aio_abi.h), for the
// little-endian 64-bit platforms postern is built for.
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

const iocbCmdPwrite = 1

// useBatch turns batched writes off for tests of the loop's plain writes.
var useBatch = true

// newBatch sets up an AIO context, or returns nil when the system refuses
// one (a seccomp profile without io_setup, the system's aio-max-nr
// reached).
func newBatch() *batch {
	if !useBatch {
		return nil
	}
	b := &batch{
		iocbs:  make([]iocb, batchSize),
		ptrs:   make([]uintptr, batchSize),
		events: make([]ioEvent, batchSize),
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_IO_SETUP, batchSize, uintptr(unsafe.Pointer(&b.ctx)), 0); e != 0 {
		return nil
	}
	// All three calls must be allowed: a profile that let io_submit
	// through but refused io_getevents would leave written requests
	// without their results. Asking for no event with no wait answers 0.
	var zero syscall.Timespec
	if _, _, e := syscall.RawSyscall6(syscall.SYS_IO_GETEVENTS, b.ctx, 0, 0, 0, uintptr(unsafe.Pointer(&zero)), 0); e != 0 {
		b.close()
		return nil
	}
	for i := range b.iocbs {
		b.ptrs[i] = uintptr(unsafe.Pointer(&b.iocbs[i]))
	}
	return b
}

// full reports whether the batch takes no more writes until it runs.
func (b *batch) full() bool { return len(b.conns) == len(b.iocbs) }

// add queues a write of c.out to c; the batch must not be full.
func (b *batch) add(c *lconn) {
	i := len(b.conns)
	b.iocbs[i] = iocb{
		data:   uint64(i),
		opcode: iocbCmdPwrite,
		fildes: uint32(c.fd),
		buf:    uint64(uintptr(unsafe.Pointer(unsafe.SliceData(c.out)))),
		nbytes: uint64(len(c.out)),
	}
	b.conns = append(b.conns, c)
	c.queued = true
}

// run submits the queued writes and calls done for each with what write(2)
// would have returned: the bytes written, or the error. The connections'
// out must not change until run returns; none of them may be closed
// between add and run.
func (b *batch) run(done func(c *lconn, n int, err error)) {
	n := len(b.conns)
	if n == 0 {
		return
	}
	ioReleased()
	for _, c := range b.conns {
		c.queued = false
	}
	submitted := 0
	for submitted < n {
		r, _, e := syscall.RawSyscall(syscall.SYS_IO_SUBMIT, b.ctx, uintptr(n-submitted), uintptr(unsafe.Pointer(&b.ptrs[submitted])))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 || r == 0 {
			// Not taken (EAGAIN: no room for events, which cannot
			// happen with one batch at a time; anything else is a
			// broken context): the rest go out with write(2).
			for _, c := range b.conns[submitted:] {
				b.unbatched++
				if c.closed { // by an earlier one's done
					done(c, -1, syscall.EBADF)
					continue
				}
				m, err := rawWrite(c.fd, c.out)
				done(c, m, err)
			}
			break
		}
		submitted += int(r)
	}
	for reaped := 0; reaped < submitted; {
		r, _, e := syscall.RawSyscall6(syscall.SYS_IO_GETEVENTS, b.ctx, uintptr(submitted-reaped), uintptr(len(b.events)), uintptr(unsafe.Pointer(&b.events[0])), 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			panic("io_getevents: " + e.Error()) // a socket's write completes within io_submit
		}
		for _, ev := range b.events[:r] {
			c := b.conns[ev.data]
			if ev.res < 0 {
				done(c, -1, syscall.Errno(-ev.res))
			} else {
				done(c, int(ev.res), nil)
			}
		}
		reaped += int(r)
	}
	clear(b.conns)
	b.conns = b.conns[:0]
}

// close releases the AIO context.
func (b *batch) close() {
	syscall.RawSyscall(syscall.SYS_IO_DESTROY, b.ctx, 0, 0)
}
