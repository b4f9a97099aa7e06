package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Histogram boundaries: durations in seconds, and the skew between the
// webhook's timestamp and postern's clock in seconds (positive: the
// timestamp is in the past).
var (
	durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	skewBuckets     = []float64{-300, -120, -60, -30, -10, -5, -1, 0, 1, 5, 10, 30, 60, 120, 300}
)

// metrics are postern's instruments: Prometheus collectors, served in the
// Prometheus text format on the admin listener. A recording is a few
// atomic operations, about a sixth of what the OpenTelemetry metrics SDK
// takes for the same (BenchmarkRecord in proxy/telemetry), and the
// per-request cost matters in a sidecar. The labelled counters are looked
// up once per distinct label value and cached, so that recording does not
// allocate.
type metrics struct {
	requests   *prometheus.CounterVec
	upstream   *prometheus.CounterVec
	duration   prometheus.Histogram
	verify     prometheus.Histogram
	validate   prometheus.Histogram
	forward    prometheus.Histogram
	inFlight   atomic.Int64 // observed at collection, not recorded per request
	keyMatches *prometheus.CounterVec
	skew       prometheus.Histogram
	dedupeHits *prometheus.CounterVec
	violations *prometheus.CounterVec
	resends    prometheus.Counter
	// The event loop's handovers to the goroutine engine, by kind.
	handoffs                                   *prometheus.CounterVec
	handoffRequest, handoffSlow, handoffAnswer prometheus.Counter

	mu    sync.RWMutex
	cache map[counterKey]prometheus.Counter
}

// counterKey names one labelled counter: its vector and up to two label
// values.
type counterKey struct {
	vec    *prometheus.CounterVec
	v1, v2 string
}

// newMetrics makes the instruments and registers them with reg; with a nil
// reg they record but nothing serves them.
func newMetrics(reg prometheus.Registerer, d *dedupe, now func() time.Time) (*metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	hist := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	}
	x := &metrics{
		requests:   counter("postern_requests_total", "Webhook requests by outcome and reason.", "outcome", "reason"),
		upstream:   counter("postern_upstream_responses_total", "App responses by status class.", "class"),
		duration:   hist("postern_request_duration_seconds", "Whole request duration.", durationBuckets),
		verify:     hist("postern_verify_duration_seconds", "Signature verification duration.", durationBuckets),
		validate:   hist("postern_validate_duration_seconds", "Strict JSON and schema validation duration.", durationBuckets),
		forward:    hist("postern_forward_duration_seconds", "Forwarding duration, until the app's response is read.", durationBuckets),
		keyMatches: counter("postern_key_matches_total", "Verified requests by the index of the key that matched (retire a key once its count stops growing).", "key_index"),
		skew:       hist("postern_timestamp_skew_seconds", "postern's clock minus the webhook timestamp, for requests whose signature verified.", skewBuckets),
		dedupeHits: counter("postern_dedupe_hits_total", "Deliveries answered from the dedupe store, by kind (acked, in_flight).", "kind"),
		violations: counter("postern_schema_violations_total", "Schema violations by event type.", "event_type"),
		resends: prometheus.NewCounter(prometheus.CounterOpts{Name: "postern_upstream_resends_total",
			Help: "Requests written to the app again, on a new connection, because the reused one they were written to failed before any answer."}),
		handoffs: counter("postern_loop_handoffs_total", "Connections the event loop handed to the goroutine engine, by kind: "+
			"request (chunked, over 16 KiB, Expect, malformed), slow (incomplete after 100 ms), large_answer (the app's answer over 1 MiB).", "kind"),
		cache: make(map[counterKey]prometheus.Counter),
	}
	x.handoffRequest = x.handoffs.WithLabelValues("request")
	x.handoffSlow = x.handoffs.WithLabelValues("slow")
	x.handoffAnswer = x.handoffs.WithLabelValues("large_answer")
	if reg == nil {
		return x, nil
	}
	cs := []prometheus.Collector{x.requests, x.upstream, x.duration, x.verify, x.validate, x.forward,
		x.keyMatches, x.skew, x.dedupeHits, x.violations, x.resends, x.handoffs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "postern_requests_in_flight", Help: "Webhook requests being handled."},
			func() float64 { return float64(x.inFlight.Load()) }),
	}
	if d != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "postern_dedupe_entries", Help: "Message ids remembered by the dedupe store."},
			func() float64 { return float64(d.size(now())) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// add adds one to the counter of vec with the label values v1 and (when
// vec has two labels) v2.
func (x *metrics) add(vec *prometheus.CounterVec, v1, v2 string) {
	key := counterKey{vec, v1, v2}
	x.mu.RLock()
	c, ok := x.cache[key]
	x.mu.RUnlock()
	if !ok {
		if vec == x.requests {
			c = vec.WithLabelValues(v1, v2)
		} else {
			c = vec.WithLabelValues(v1)
		}
		x.mu.Lock()
		x.cache[key] = c
		x.mu.Unlock()
	}
	c.Inc()
}

// statusClass returns "2xx" for 204 and so on.
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return classes[status/100-1]
}

var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}
