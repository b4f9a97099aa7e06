//go:build linux

package main

import "syscall"

// staged is what -uring and -aio share: the writes a round of events
// queued, copied into an arena that never grows, so that the addresses
// handed to the kernel hold until the round's end, and the descriptors of
// connections closed meanwhile, closed only then, so that no queued write
// reaches a new connection given the same number.
type staged struct {
	queued  []queuedWrite
	arena   []byte
	used    int
	toClose []int
}

type queuedWrite struct {
	c *conn
	n int
}

// room reports whether b fits in the arena beside what is staged, and one
// more write in a batch of capacity.
func (s *staged) room(b []byte, capacity int) bool {
	return len(s.queued) < capacity && s.used+len(b) <= len(s.arena)
}

// stage copies b, to be written to c, into the arena and returns the copy
// and its index; a write larger than the whole arena goes out at once
// instead, and stage returns nil.
func (s *staged) stage(c *conn, b []byte) ([]byte, int) {
	if len(b) > len(s.arena) {
		if !writeDirect(c.fd, b) {
			closeConn(c)
		}
		return nil, 0
	}
	buf := s.arena[s.used : s.used+len(b)]
	copy(buf, b)
	s.used += len(b)
	s.queued = append(s.queued, queuedWrite{c, len(b)})
	return buf, len(s.queued) - 1
}

// done takes the result of the write at index i: one that failed or went
// out short closes its connection.
func (s *staged) done(i int, res int64) {
	if q := s.queued[i]; res != int64(q.n) {
		closeConn(q.c)
	}
}

// reset empties the stage once every write has completed, and closes the
// descriptors that waited for that.
func (s *staged) reset() {
	s.queued = s.queued[:0]
	s.used = 0
	for _, fd := range s.toClose {
		syscall.Close(fd)
	}
	s.toClose = s.toClose[:0]
}
