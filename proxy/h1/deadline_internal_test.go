package h1

import (
	"net"
	"testing"
	"time"
)

// deadlineConn records the deadlines set on it.
type deadlineConn struct {
	net.Conn
	reads, writes []time.Time
}

func (d *deadlineConn) SetReadDeadline(t time.Time) error { d.reads = append(d.reads, t); return nil }
func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.writes = append(d.writes, t)
	return nil
}

// TestLazyDeadlines: a deadline asked for again and again, a little later
// each time (as on a busy kept-alive connection), is set about once per
// slack, and the deadline in force is never before the one asked for nor
// more than slack after it.
func TestLazyDeadlines(t *testing.T) {
	dc := &deadlineConn{}
	c := &conn{nc: dc}
	const timeout = 8 * time.Second
	base := time.Now()
	const step = 10 * time.Millisecond
	const n = 1000 // 10 s of requests, every 10 ms
	for i := range n {
		at := base.Add(time.Duration(i)*step + timeout)
		c.readBy(at, slack(timeout))
		c.writeBy(at, slack(timeout))
		for _, got := range []time.Time{dc.reads[len(dc.reads)-1], dc.writes[len(dc.writes)-1]} {
			if got.Before(at) || got.After(at.Add(slack(timeout))) {
				t.Fatalf("request %d: deadline in force %v after the asked %v, want within [0, %v]", i, got.Sub(at), at, slack(timeout))
			}
		}
	}
	// 10 s of requests with a 1 s slack: about ten updates, not a thousand.
	if len(dc.reads) > 12 || len(dc.writes) > 12 {
		t.Errorf("%d read and %d write deadline updates for %d requests, want about 10", len(dc.reads), len(dc.writes), n)
	}

	// An earlier deadline (a shorter timeout) is set at once, exactly when
	// asked without slack; clearing sets none, once.
	early := base.Add(time.Second)
	c.readBy(early, 0)
	if got := dc.reads[len(dc.reads)-1]; !got.Equal(early) {
		t.Errorf("earlier deadline: in force %v, want %v", got, early)
	}
	before := len(dc.reads)
	c.readBy(time.Time{}, 0)
	c.readBy(time.Time{}, 0)
	if len(dc.reads) != before+1 || !dc.reads[before].IsZero() {
		t.Errorf("clearing twice: updates %v, want one zero deadline", dc.reads[before:])
	}
	c.readBy(early, 0)
	if len(dc.reads) != before+2 || !dc.reads[before+1].Equal(early) {
		t.Errorf("after clearing, a deadline was not set: %v", dc.reads[before:])
	}
}
