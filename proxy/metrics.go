package proxy

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Histogram boundaries: durations in seconds, and the skew between the
// webhook's timestamp and postern's clock in seconds (positive: the
// timestamp is in the past).
var (
	durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	skewBuckets     = []float64{-300, -120, -60, -30, -10, -5, -1, 0, 1, 5, 10, 30, 60, 120, 300}
)

// metrics are postern's instruments. Attribute sets are built once per
// distinct value and cached, so recording does not allocate on the hot path.
type metrics struct {
	requests   metric.Int64Counter
	upstream   metric.Int64Counter
	duration   metric.Float64Histogram
	verify     metric.Float64Histogram
	validate   metric.Float64Histogram
	forward    metric.Float64Histogram
	inFlight   atomic.Int64 // observed at collection, not recorded per request
	keyMatches metric.Int64Counter
	skew       metric.Float64Histogram
	dedupeHits metric.Int64Counter
	violations metric.Int64Counter

	mu    sync.RWMutex
	cache map[[4]string][]metric.AddOption
}

func newMetrics(m metric.Meter, d *dedupe) (*metrics, error) {
	if m == nil {
		m = noop.NewMeterProvider().Meter("postern")
	}
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	hist := func(name, desc string, buckets []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithDescription(desc), metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return h
	}
	x := &metrics{
		requests:   counter("postern_requests", "Webhook requests by outcome and reason."),
		upstream:   counter("postern_upstream_responses", "App responses by status class."),
		duration:   hist("postern_request_duration", "Whole request duration.", durationBuckets),
		verify:     hist("postern_verify_duration", "Signature verification duration.", durationBuckets),
		validate:   hist("postern_validate_duration", "Strict JSON and schema validation duration.", durationBuckets),
		forward:    hist("postern_forward_duration", "Forwarding duration, until the app's response is read.", durationBuckets),
		keyMatches: counter("postern_key_matches", "Verified requests by the index of the key that matched (retire a key once its count stops growing)."),
		skew:       hist("postern_timestamp_skew", "postern's clock minus the webhook timestamp, for requests with well-formed headers.", skewBuckets),
		dedupeHits: counter("postern_dedupe_hits", "Deliveries answered from the dedupe store, by kind (acked, in_flight)."),
		violations: counter("postern_schema_violations", "Schema violations by event type."),
		cache:      make(map[[4]string][]metric.AddOption),
	}
	var err error
	_, err = m.Int64ObservableUpDownCounter("postern_requests_in_flight",
		metric.WithDescription("Webhook requests being handled."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(x.inFlight.Load())
			return nil
		}))
	errs = append(errs, err)
	if d != nil {
		_, err = m.Int64ObservableGauge("postern_dedupe_entries",
			metric.WithDescription("Message ids remembered by the dedupe store."),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				o.Observe(int64(d.size()))
				return nil
			}))
		errs = append(errs, err)
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return x, nil
}

// options returns the cached attribute set for up to two key/value pairs
// (pass "" for unused ones) as a one-element slice, to pass to Add with ...
// so that neither the set nor the variadic argument allocates on a hit.
func (x *metrics) options(k1, v1, k2, v2 string) []metric.AddOption {
	key := [4]string{k1, v1, k2, v2}
	x.mu.RLock()
	o, ok := x.cache[key]
	x.mu.RUnlock()
	if ok {
		return o
	}
	a := []attribute.KeyValue{attribute.String(k1, v1)}
	if k2 != "" {
		a = append(a, attribute.String(k2, v2))
	}
	o = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(a...))}
	x.mu.Lock()
	x.cache[key] = o
	x.mu.Unlock()
	return o
}

// statusClass returns "2xx" for 204 and so on.
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return classes[status/100-1]
}

var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}
