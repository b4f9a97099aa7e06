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
// id keeps an entry small and without pointers: 100,000 acknowledged ids
// cost about 3.4 MiB (a 24-byte ring entry and two 4-byte index slots
// each) that the garbage collector never scans. Only verified ids are
// stored, and the hash is seeded per process, so a collision (a false
// duplicate) needs about 2^64 ids.
type idKey [2]uint64

// ackedID is one acknowledged id in the ring, oldest first. An id is in
// the ring at most once: it can be acknowledged again only after begin
// found it gone from the index, that is after its entry left the ring.
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
	seeds [2]maphash.Seed

	mu       sync.Mutex
	inFlight map[idKey]struct{}
	ring     []ackedID // a circular buffer of acknowledgements, oldest first
	head     int       // index of the oldest entry
	n        int       // entries in ring
	// index finds the acknowledged ids in ring: open addressing with linear
	// probing, a power of two of slots at most half full, each holding a
	// ring position plus one (0: empty). Removal shifts the following
	// entries back, so there are no tombstones and the index never needs
	// rebuilding as ids come and go.
	index []uint32
}

// maxDedupeTTL bounds the ttl: an expiry past the year 2262 would wrap
// around in nanoseconds to a time long gone, so that every id would be
// forgotten at once. A century is as good as forever here.
const maxDedupeTTL = 100 * 365 * 24 * time.Hour

func newDedupe(ttl time.Duration, max int) *dedupe {
	return &dedupe{
		ttl: min(ttl, maxDedupeTTL), max: max,
		seeds:    [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		inFlight: make(map[idKey]struct{}),
	}
}

func (d *dedupe) key(id string) idKey {
	return idKey{maphash.String(d.seeds[0], id), maphash.String(d.seeds[1], id)}
}

// begin claims id for one delivery at now, and returns the key to pass to
// finish. (The caller passes the time it has already read: a clock read
// costs about as much as the claim.)
func (d *dedupe) begin(id string, now time.Time) (claim, idKey) {
	k := d.key(id)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now.UnixNano())
	if _, ok := d.inFlight[k]; ok {
		return claimInFlight, k
	}
	if _, ok := d.find(k); ok {
		return claimAcked, k
	}
	d.inFlight[k] = struct{}{}
	return claimNew, k
}

// finish records the outcome, at now, of the delivery claimed with begin
// as k.
func (d *dedupe) finish(k idKey, acked bool, now time.Time) {
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
	pos := (d.head + d.n) % len(d.ring)
	d.ring[pos] = ackedID{key: k, expires: now.Add(d.ttl).UnixNano()}
	d.n++
	d.insert(pos)
}

// expire drops acknowledged ids whose ttl has passed. They leave from the
// ring's head, in the order they were acknowledged: the times callers pass
// are about in that order, and an id acknowledged with an earlier time
// than the one ahead of it leaves with that one, late but never early.
func (d *dedupe) expire(now int64) {
	for d.n > 0 && d.ring[d.head].expires <= now {
		d.pop()
	}
}

// pop removes the oldest ring entry and its id.
func (d *dedupe) pop() {
	d.remove(d.ring[d.head].key)
	d.head = (d.head + 1) % len(d.ring)
	d.n--
}

// home is k's first slot in the index; the key is already a keyed hash.
func (d *dedupe) home(k idKey) int { return int(k[0] & uint64(len(d.index)-1)) }

// find returns the index slot of k.
func (d *dedupe) find(k idKey) (slot int, ok bool) {
	if len(d.index) == 0 {
		return 0, false
	}
	mask := len(d.index) - 1
	for i := d.home(k); d.index[i] != 0; i = (i + 1) & mask {
		if d.ring[d.index[i]-1].key == k {
			return i, true
		}
	}
	return 0, false
}

// insert indexes the ring entry at pos.
func (d *dedupe) insert(pos int) {
	mask := len(d.index) - 1
	i := d.home(d.ring[pos].key)
	for d.index[i] != 0 {
		i = (i + 1) & mask
	}
	d.index[i] = uint32(pos) + 1
}

// remove takes k out of the index, moving back each following entry of the
// probe run that may fill the hole (one whose home slot is not cyclically
// within the hole and its own slot).
func (d *dedupe) remove(k idKey) {
	hole, ok := d.find(k)
	if !ok {
		return
	}
	mask := len(d.index) - 1
	for j := (hole + 1) & mask; d.index[j] != 0; j = (j + 1) & mask {
		h := d.home(d.ring[d.index[j]-1].key)
		stays := hole < h && h <= j
		if j < hole { // the run wrapped around the end
			stays = hole < h || h <= j
		}
		if !stays {
			d.index[hole] = d.index[j]
			hole = j
		}
	}
	d.index[hole] = 0
}

// grow makes the ring larger (doubling, up to max) and indexes it again:
// positions change as the entries move to the front.
func (d *dedupe) grow() {
	size := min(max(2*len(d.ring), 1024), d.max)
	ring := make([]ackedID, size)
	for i := range d.n {
		ring[i] = d.ring[(d.head+i)%len(d.ring)]
	}
	d.ring, d.head = ring, 0
	slots := 1
	for slots < 2*size {
		slots *= 2
	}
	d.index = make([]uint32, slots)
	for i := range d.n {
		d.insert(i)
	}
}

// size returns the number of ids remembered at now, acknowledged and in
// flight.
func (d *dedupe) size(now time.Time) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now.UnixNano())
	return d.n + len(d.inFlight)
}
