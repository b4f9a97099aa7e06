package proxy

import (
	"hash/maphash"
	"sync"
	"time"
)

// claim is what the dedupe store says about a message id.
type claim int

const (
	// claimNew: the id is now in flight for this request.
	claimNew claim = iota
	// claimAcked: an earlier delivery was acknowledged by the app.
	claimAcked
	// claimInFlight: another request with this id is being delivered.
	claimInFlight
)

// idKey is a 128-bit keyed hash of a message id. Storing it instead of the
// id keeps an entry small (about 50 bytes measured) and without pointers, so 100,000 ids
// cost about 5 MiB that the garbage collector never scans. Only verified
// ids are stored, and the hash is seeded per process, so a collision (a
// false duplicate) needs about 2^64 ids.
type idKey [2]uint64

// ackedID is one acknowledged id in the ring, oldest first. An id is in
// the ring at most once: it can be acknowledged again only after begin
// found it gone from acked, that is after its entry left the ring.
type ackedID struct {
	key     idKey
	expires int64 // unix nanoseconds
}

// dedupe remembers message ids by outcome: in flight, or acknowledged (for
// ttl). A failed delivery forgets the id so that the sender's retry is
// forwarded again. Acknowledged ids are evicted oldest first beyond max.
type dedupe struct {
	ttl   time.Duration
	max   int
	now   func() time.Time
	seeds [2]maphash.Seed

	mu       sync.Mutex
	inFlight map[idKey]struct{}
	acked    map[idKey]struct{}
	ring     []ackedID // a circular buffer of acknowledgements, oldest first
	head     int       // index of the oldest entry
	n        int       // entries in ring
	popped   int       // entries popped since acked was last rebuilt
}

func newDedupe(ttl time.Duration, max int, now func() time.Time) *dedupe {
	return &dedupe{
		ttl: ttl, max: max, now: now,
		seeds:    [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		inFlight: make(map[idKey]struct{}),
		acked:    make(map[idKey]struct{}),
	}
}

func (d *dedupe) key(id string) idKey {
	return idKey{maphash.String(d.seeds[0], id), maphash.String(d.seeds[1], id)}
}

// begin claims id for one delivery.
func (d *dedupe) begin(id string) claim {
	k := d.key(id)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(d.now().UnixNano())
	if _, ok := d.inFlight[k]; ok {
		return claimInFlight
	}
	if _, ok := d.acked[k]; ok {
		return claimAcked
	}
	d.inFlight[k] = struct{}{}
	return claimNew
}

// finish records the outcome of a delivery claimed with begin.
func (d *dedupe) finish(id string, acked bool) {
	k := d.key(id)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.inFlight[k]; !ok {
		return
	}
	delete(d.inFlight, k)
	if !acked {
		return
	}
	if d.n == d.max {
		d.pop()
	}
	if d.n == len(d.ring) { // grow until max, then the ring is full
		d.grow()
	}
	d.ring[(d.head+d.n)%len(d.ring)] = ackedID{key: k, expires: d.now().Add(d.ttl).UnixNano()}
	d.n++
	d.acked[k] = struct{}{}
}

// expire drops acknowledged ids whose ttl has passed; acknowledgements
// enter the ring in time order, so they leave from its head.
func (d *dedupe) expire(now int64) {
	for d.n > 0 && d.ring[d.head].expires <= now {
		d.pop()
	}
}

// pop removes the oldest ring entry and its id. Once the store has turned
// over, the map is rebuilt: deletions leave tombstones that would otherwise
// make it grow (from about 60 to about 95 bytes per id).
func (d *dedupe) pop() {
	delete(d.acked, d.ring[d.head].key)
	if d.popped++; d.popped >= d.max {
		defer d.rebuild()
	}
	d.head = (d.head + 1) % len(d.ring)
	d.n--
}

func (d *dedupe) rebuild() {
	acked := make(map[idKey]struct{}, d.n)
	for i := range d.n {
		acked[d.ring[(d.head+i)%len(d.ring)].key] = struct{}{}
	}
	d.acked, d.popped = acked, 0
}

func (d *dedupe) grow() {
	size := min(max(2*len(d.ring), 1024), d.max)
	ring := make([]ackedID, size)
	for i := range d.n {
		ring[i] = d.ring[(d.head+i)%len(d.ring)]
	}
	d.ring, d.head = ring, 0
}

// size returns the number of remembered ids, acknowledged and in flight.
func (d *dedupe) size() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.acked) + len(d.inFlight)
}
