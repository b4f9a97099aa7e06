//go:build linux

package main

import (
	"errors"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// With -uring, evloop writes through io_uring: the writes a round of events
// makes (requests to the upstream, answers to clients) are queued, copied
// into an arena, and sent together with one io_uring_enter at the round's
// end, where each would otherwise cost a write(2). Reads stay read(2). It
// measures what batching the system calls of a round would save a loop on
// this machine, where a system call that does no work costs about 1 µs.
//
// A queued write that fails, or goes out short, closes its connection when
// the round's writes complete; a connection closed during the round keeps
// its descriptor until then, so that no queued write reaches a new
// connection given the same number.

// The io_uring ABI (include/uapi/linux/io_uring.h), as far as evloop uses it.
const (
	sysIOUringSetup = 425
	sysIOUringEnter = 426

	ioringOffSQRing = 0
	ioringOffSQEs   = 0x10000000

	ioringFeatSingleMmap = 1 << 0
	ioringEnterGetEvents = 1 << 0
	ioringOpSend         = 26

	msgDontwait = 0x40
	msgNosignal = 0x4000
)

type ioSQRingOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type ioCQRingOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type ioUringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  ioSQRingOffsets
	cqOff                                                                  ioCQRingOffsets
}

type ioUringSQE struct {
	opcode, flags uint8
	ioprio        uint16
	fd            int32
	off, addr     uint64
	len, opFlags  uint32
	userData      uint64
	bufIndex      uint16
	personality   uint16
	spliceFDIn    int32
	addr3, pad    uint64
}

type ioUringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// uring is one ring and the round's queued writes.
type uring struct {
	fd                     int
	sqHead, sqTail, sqMask *uint32
	sqArray                []uint32
	sqes                   []ioUringSQE
	cqHead, cqTail, cqMask *uint32
	cqes                   []ioUringCQE

	staged
}

var ring *uring // with -uring

const (
	uringEntries = 256
	uringArena   = 4 << 20
)

func newUring() (*uring, error) {
	var p ioUringParams
	fd, _, e := syscall.Syscall(sysIOUringSetup, uringEntries, uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, e
	}
	if p.features&ioringFeatSingleMmap == 0 {
		syscall.Close(int(fd))
		return nil, errors.New("io_uring without IORING_FEAT_SINGLE_MMAP")
	}
	size := max(int(p.sqOff.array)+int(p.sqEntries)*4, int(p.cqOff.cqes)+int(p.cqEntries)*int(unsafe.Sizeof(ioUringCQE{})))
	rings, err := syscall.Mmap(int(fd), ioringOffSQRing, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		syscall.Close(int(fd))
		return nil, err
	}
	sqes, err := syscall.Mmap(int(fd), ioringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(ioUringSQE{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		syscall.Close(int(fd))
		return nil, err
	}
	at := func(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&rings[off])) }
	r := &uring{
		fd:     int(fd),
		sqHead: at(p.sqOff.head), sqTail: at(p.sqOff.tail), sqMask: at(p.sqOff.ringMask),
		sqArray: unsafe.Slice((*uint32)(unsafe.Pointer(&rings[p.sqOff.array])), p.sqEntries),
		sqes:    unsafe.Slice((*ioUringSQE)(unsafe.Pointer(&sqes[0])), p.sqEntries),
		cqHead:  at(p.cqOff.head), cqTail: at(p.cqOff.tail), cqMask: at(p.cqOff.ringMask),
		cqes:   unsafe.Slice((*ioUringCQE)(unsafe.Pointer(&rings[p.cqOff.cqes])), p.cqEntries),
		staged: staged{arena: make([]byte, uringArena)},
	}
	return r, nil
}

// send queues b for c, flushing first when the ring or the arena is full.
func (r *uring) send(c *conn, b []byte) {
	if !r.room(b, len(r.sqes)) {
		r.flush()
	}
	buf, i := r.stage(c, b)
	if buf == nil {
		return
	}
	tail := *r.sqTail
	j := tail & *r.sqMask
	r.sqes[j] = ioUringSQE{
		opcode:   ioringOpSend,
		fd:       int32(c.fd),
		addr:     uint64(uintptr(unsafe.Pointer(&buf[0]))),
		len:      uint32(len(buf)),
		opFlags:  msgDontwait | msgNosignal,
		userData: uint64(i),
	}
	r.sqArray[j] = j
	atomic.StoreUint32(r.sqTail, tail+1)
}

// flush submits the queued writes with one io_uring_enter, waits for them
// all (on loopback they complete inline), and closes the connections of
// those that failed.
func (r *uring) flush() {
	n := len(r.queued)
	if n == 0 {
		return
	}
	submit, done := n, 0
	for done < n {
		_, _, e := syscall.Syscall6(sysIOUringEnter, uintptr(r.fd), uintptr(submit), uintptr(n-done), ioringEnterGetEvents, 0, 0)
		if e != 0 && e != syscall.EINTR {
			check(e)
		}
		if e == 0 {
			submit = 0
		}
		head, tail := *r.cqHead, atomic.LoadUint32(r.cqTail)
		for ; head != tail; head++ {
			cq := r.cqes[head&*r.cqMask]
			r.done(int(cq.userData), int64(cq.res))
			done++
		}
		atomic.StoreUint32(r.cqHead, head)
	}
	r.reset()
}
