package telemetry

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
)

// benchBuckets are postern's duration buckets, in seconds.
var benchBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// BenchmarkRecord: one histogram recording and one labelled counter
// addition, as postern makes several of per request: with the Prometheus
// collectors postern uses, and, for comparison, through the OpenTelemetry
// metrics SDK (which postern used before) with exemplars off and with the
// SDK's default trace-based exemplar filter.
func BenchmarkRecord(b *testing.B) {
	b.Run("prometheus", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: benchBuckets})
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c"}, []string{"class"})
		reg.MustRegister(h, cv)
		c := cv.WithLabelValues("2xx")
		b.ReportAllocs()
		for b.Loop() {
			h.Observe(0.0003)
			c.Inc()
		}
	})
	for _, bm := range []struct {
		name   string
		filter exemplar.Filter
	}{{"otel-sdk", exemplar.AlwaysOffFilter}, {"otel-sdk-exemplars", exemplar.TraceBasedFilter}} {
		b.Run(bm.name, func(b *testing.B) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()),
				sdkmetric.WithExemplarFilter(bm.filter))
			defer mp.Shutdown(context.Background())
			m := mp.Meter("bench")
			h, _ := m.Float64Histogram("h", metric.WithExplicitBucketBoundaries(benchBuckets...))
			c, _ := m.Int64Counter("c")
			o := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("class", "2xx")))}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				h.Record(ctx, 0.0003)
				c.Add(ctx, 1, o...)
			}
		})
	}
}
