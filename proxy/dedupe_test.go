package proxy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestDedupeByOutcome(t *testing.T) {
	t.Run("acknowledged id is answered 200 without forwarding", func(t *testing.T) {
		rg := newRig(t, nil, nil)
		first := rg.post(t, "/", signed(testKey, "msg_dup", testNow, validBody), validBody)
		// The sender's retry carries the same id with a fresh timestamp.
		again := rg.post(t, "/", signed(testKey, "msg_dup", testNow.Add(time.Minute), validBody), validBody)
		if first.Status != 204 || again.Status != 200 || again.Body != `{"duplicate":true}` {
			t.Errorf("got %d then %d %q, want 204 then 200 {\"duplicate\":true}", first.Status, again.Status, again.Body)
		}
		if n := len(rg.app.requests()); n != 1 {
			t.Errorf("app received %d requests, want 1", n)
		}
	})
	t.Run("failed delivery is forwarded again", func(t *testing.T) {
		var mu sync.Mutex
		fail := true
		rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				fail = false
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusOK)
		}, nil)
		first := rg.post(t, "/", signed(testKey, "msg_retry", testNow, validBody), validBody)
		again := rg.post(t, "/", signed(testKey, "msg_retry", testNow, validBody), validBody)
		if first.Status != 500 || again.Status != 200 || again.Body == `{"duplicate":true}` {
			t.Errorf("got %d then %d %q, want 500 then the app's 200", first.Status, again.Status, again.Body)
		}
		if n := len(rg.app.requests()); n != 2 {
			t.Errorf("app received %d requests, want 2", n)
		}
	})
	t.Run("rejected body does not poison the id", func(t *testing.T) {
		rg := newRig(t, nil, nil)
		bad := `{"eventType":"REFERRAL_CREATED"}`
		first := rg.post(t, "/", signed(testKey, "msg_x", testNow, bad), bad)
		again := rg.post(t, "/", signed(testKey, "msg_x", testNow, validBody), validBody)
		if first.Status != 422 || again.Status != 204 {
			t.Errorf("got %d then %d, want 422 then 204", first.Status, again.Status)
		}
	})
	t.Run("id in flight is answered 409 with Retry-After", func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(entered) })
			<-release
			w.WriteHeader(http.StatusOK)
		}, nil)
		done := make(chan answer)
		go func() { done <- rg.post(t, "/", signed(testKey, "msg_slow", testNow, validBody), validBody) }()
		<-entered
		second := rg.post(t, "/", signed(testKey, "msg_slow", testNow, validBody), validBody)
		close(release)
		first := <-done
		if second.Status != 409 || second.Reason != ReasonDeliveryInFlight || second.RetryAfter == "" {
			t.Errorf("second: got %d %q Retry-After %q, want 409 %s with Retry-After", second.Status, second.Reason, second.RetryAfter, ReasonDeliveryInFlight)
		}
		if first.Status != 200 {
			t.Errorf("first: got %d, want 200", first.Status)
		}
		if n := len(rg.app.requests()); n != 1 {
			t.Errorf("app received %d requests, want 1", n)
		}
	})
	t.Run("off forwards every delivery", func(t *testing.T) {
		rg := newRig(t, nil, func(o *Options) { o.Dedupe = false })
		rg.post(t, "/", signed(testKey, "msg_dup", testNow, validBody), validBody)
		rg.post(t, "/", signed(testKey, "msg_dup", testNow, validBody), validBody)
		if n := len(rg.app.requests()); n != 2 {
			t.Errorf("app received %d requests, want 2", n)
		}
	})
}

// beginAt and finishAt claim and finish by id, for tests.
func (d *dedupe) beginAt(id string, now time.Time) claim {
	c, _ := d.begin(id, now)
	return c
}

func (d *dedupe) finishAt(id string, acked bool, now time.Time) { d.finish(d.key(id), acked, now) }

func TestDedupeBounds(t *testing.T) {
	now := testNow
	d := newDedupe(time.Hour, 3)
	for i := range 5 {
		id := fmt.Sprint("msg_", i)
		if c := d.beginAt(id, now); c != claimNew {
			t.Fatalf("begin(%s) = %v, want claimNew", id, c)
		}
		d.finishAt(id, true, now)
	}
	if got := d.size(now); got != 3 {
		t.Errorf("size %d after 5 acks with max 3, want 3", got)
	}
	if c := d.beginAt("msg_0", now); c != claimNew {
		t.Errorf("oldest id: got %v, want claimNew (evicted)", c)
	}
	if c := d.beginAt("msg_4", now); c != claimAcked {
		t.Errorf("newest id: got %v, want claimAcked", c)
	}
	now = now.Add(time.Hour)
	if c := d.beginAt("msg_4", now); c != claimNew {
		t.Errorf("after ttl: got %v, want claimNew", c)
	}
	if got := d.size(now); got != 2 {
		t.Errorf("size %d after expiry (msg_0 and msg_4 in flight), want 2", got)
	}
}

// TestDedupeAcksOutOfOrder: an acknowledgement whose time is earlier than
// the one before it (its caller read the clock first) is remembered at
// least its ttl, and both are forgotten once both ttls have passed.
func TestDedupeAcksOutOfOrder(t *testing.T) {
	d := newDedupe(time.Hour, 10)
	for _, id := range []string{"msg_late", "msg_early"} {
		if c := d.beginAt(id, testNow); c != claimNew {
			t.Fatalf("begin(%s) = %v, want claimNew", id, c)
		}
	}
	d.finishAt("msg_late", true, testNow.Add(10*time.Second))
	d.finishAt("msg_early", true, testNow)
	at := testNow.Add(time.Hour - time.Second)
	if d.beginAt("msg_early", at) != claimAcked || d.beginAt("msg_late", at) != claimAcked {
		t.Errorf("an id was forgotten before its ttl")
	}
	at = testNow.Add(time.Hour + 10*time.Second)
	if d.beginAt("msg_early", at) != claimNew || d.beginAt("msg_late", at) != claimNew {
		t.Errorf("an id was remembered after both ttls passed")
	}
}

// TestDedupeMemory holds the claim that 100,000 remembered ids cost about
// 3.4 MiB, also after the store has turned over: it keeps 128-bit hashes,
// not the ids.
func TestDedupeMemory(t *testing.T) {
	const max = 100000
	ids := make([]string, 2*max) // fill the store, then turn it over once
	for i := range ids {
		ids[i] = fmt.Sprintf("msg_%026d", i) // as long as a Svix id
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := newDedupe(time.Hour, max)
	now := time.Now()
	for _, id := range ids {
		d.beginAt(id, now)
		d.finishAt(id, true, now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perID := float64(after.HeapAlloc-before.HeapAlloc) / max
	t.Logf("%.0f bytes per remembered id", perID)
	if perID > 40 {
		t.Errorf("%.0f bytes per remembered id, want at most 40", perID)
	}
	if d.beginAt(ids[len(ids)-1], now) != claimAcked || d.beginAt(ids[0], now) != claimNew || d.size(now) != max+1 {
		t.Errorf("store lost ids: size %d", d.size(now))
	}
	runtime.KeepAlive(ids)
}

// dedupeModel is the store's contract written plainly: a FIFO of
// acknowledged ids with their expiry, and a set in flight.
type dedupeModel struct {
	max      int
	acked    []ackedModel
	inFlight map[string]bool
}

type ackedModel struct {
	id      string
	expires time.Time
}

func (m *dedupeModel) begin(id string, now time.Time) claim {
	for len(m.acked) > 0 && !m.acked[0].expires.After(now) {
		m.acked = m.acked[1:]
	}
	if m.inFlight[id] {
		return claimInFlight
	}
	for _, a := range m.acked {
		if a.id == id {
			return claimAcked
		}
	}
	m.inFlight[id] = true
	return claimNew
}

func (m *dedupeModel) finish(id string, acked bool, now, expires time.Time) {
	if !m.inFlight[id] {
		return
	}
	delete(m.inFlight, id)
	if acked {
		if len(m.acked) == m.max {
			m.acked = m.acked[1:]
		}
		m.acked = append(m.acked, ackedModel{id, expires})
	}
}

// checkDedupe runs the operations ops encodes against the store and the
// model, and fails at the first answer or size they disagree on. Small
// bounds make a small index, where probe runs collide and wrap around.
func checkDedupe(t *testing.T, max uint8, ops []byte) {
	const ttl = time.Minute
	now := testNow
	m := int(max%40) + 1
	d := newDedupe(ttl, m)
	model := &dedupeModel{max: m, inFlight: map[string]bool{}}
	for i, op := range ops {
		id := fmt.Sprint("msg_", op%64)
		switch op >> 6 {
		case 0, 1:
			got, want := d.beginAt(id, now), model.begin(id, now)
			if got != want {
				t.Fatalf("op %d: begin(%s) = %v, model says %v", i, id, got, want)
			}
		case 2:
			acked := op&1 == 0
			d.finishAt(id, acked, now)
			model.finish(id, acked, now, now.Add(ttl))
		case 3:
			now = now.Add(time.Duration(op%64) * time.Second)
		}
		// Expiry is lazy in both: compare after a begin of an id
		// nobody uses, which runs it.
		d.beginAt("msg_probe", now)
		model.begin("msg_probe", now)
		d.finishAt("msg_probe", false, now)
		model.finish("msg_probe", false, now, now)
		if got, want := d.size(now), len(model.acked)+len(model.inFlight); got != want {
			t.Fatalf("op %d: size %d, model has %d", i, got, want)
		}
	}
}

// TestDedupeModel: long random runs against the model, for bounds from 1
// to 40 ids.
func TestDedupeModel(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 0))
		ops := make([]byte, 2000)
		for i := range ops {
			ops[i] = byte(r.Uint32())
		}
		checkDedupe(t, uint8(seed), ops)
	}
}

func FuzzDedupe(f *testing.F) {
	f.Add(uint8(2), []byte{0, 128, 1, 129, 2, 130, 0, 1, 2, 255})
	f.Fuzz(checkDedupe)
}

// TestDedupeSizeExpires: the store's size (the postern_dedupe_entries
// gauge) leaves out ids whose ttl has passed, with no delivery since.
func TestDedupeSizeExpires(t *testing.T) {
	d := newDedupe(time.Minute, 10)
	d.beginAt("msg_a", testNow)
	d.finishAt("msg_a", true, testNow)
	if got := d.size(testNow); got != 1 {
		t.Errorf("size %d right after the ack, want 1", got)
	}
	if got := d.size(testNow.Add(2 * time.Minute)); got != 0 {
		t.Errorf("size %d past the ttl, want 0", got)
	}
}

// TestDedupeHugeTTL: a ttl whose expiry is past what nanoseconds since 1970
// hold (Go's largest duration, which POSTERN_DEDUPE_TTL accepts) remembers
// an id instead of forgetting it at once.
func TestDedupeHugeTTL(t *testing.T) {
	d := newDedupe(time.Duration(math.MaxInt64), 10)
	d.beginAt("msg_a", testNow)
	d.finishAt("msg_a", true, testNow)
	if c := d.beginAt("msg_a", testNow.Add(time.Hour)); c != claimAcked {
		t.Errorf("an hour after the ack: got %v, want claimAcked", c)
	}
}
