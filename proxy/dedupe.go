package proxy

import (
	"container/list"
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

// dedupe remembers message ids by outcome: in flight, or acknowledged (for
// ttl). A failed delivery forgets the id so that the sender's retry is
// forwarded again. Acknowledged ids are evicted oldest first beyond max.
type dedupe struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*dedupeEntry
	acked   list.List // of string ids, oldest acknowledgement first
}

type dedupeEntry struct {
	expires time.Time     // zero while in flight
	elem    *list.Element // in acked, nil while in flight
}

func newDedupe(ttl time.Duration, max int, now func() time.Time) *dedupe {
	return &dedupe{ttl: ttl, max: max, now: now, entries: make(map[string]*dedupeEntry)}
}

// begin claims id for one delivery.
func (d *dedupe) begin(id string) claim {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	d.expire(now)
	if e, ok := d.entries[id]; ok {
		if e.elem == nil {
			return claimInFlight
		}
		if now.Before(e.expires) {
			return claimAcked
		}
		d.acked.Remove(e.elem)
	}
	d.entries[id] = &dedupeEntry{}
	return claimNew
}

// finish records the outcome of a delivery claimed with begin.
func (d *dedupe) finish(id string, acked bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[id]
	if !ok || e.elem != nil {
		return
	}
	if !acked {
		delete(d.entries, id)
		return
	}
	e.expires = d.now().Add(d.ttl)
	e.elem = d.acked.PushBack(id)
	for d.acked.Len() > d.max {
		d.evict(d.acked.Front())
	}
}

// expire drops acknowledged ids whose ttl has passed.
func (d *dedupe) expire(now time.Time) {
	for f := d.acked.Front(); f != nil; f = d.acked.Front() {
		if now.Before(d.entries[f.Value.(string)].expires) {
			return
		}
		d.evict(f)
	}
}

func (d *dedupe) evict(elem *list.Element) {
	delete(d.entries, elem.Value.(string))
	d.acked.Remove(elem)
}

// size returns the number of remembered ids, acknowledged and in flight.
func (d *dedupe) size() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.entries)
}
