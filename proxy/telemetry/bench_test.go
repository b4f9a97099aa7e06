package telemetry

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
)

// BenchmarkRecord: one histogram recording and one counter addition, as
// postern makes several of per request, through the meter provider New
// builds, and through one with the SDK's default (trace-based) exemplar
// filter.
func BenchmarkRecord(b *testing.B) {
	p, err := New(context.Background(), nil, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	def := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()),
		sdkmetric.WithExemplarFilter(exemplar.TraceBasedFilter))
	defer def.Shutdown(context.Background())
	off := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()),
		sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
	for _, bm := range []struct {
		name string
		mp   metric.MeterProvider
	}{{"postern", p.MeterProvider}, {"exemplars", def}, {"off", off}} {
		b.Run(bm.name, func(b *testing.B) {
			m := bm.mp.Meter("bench")
			h, _ := m.Float64Histogram("h", metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1))
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
