package telemetry

import (
	"context"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name      string
		environ   []string
		exporting string
		wantErr   string
	}{
		{name: "nothing set: no exporter", exporting: ""},
		{name: "endpoint set: OTLP/HTTP", environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318"}, exporting: "otlp http/protobuf"},
		{name: "traces endpoint set", environ: []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces"}, exporting: "otlp http/protobuf"},
		{name: "grpc", environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}, exporting: "otlp grpc"},
		{name: "exporter none wins", environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER=none"}, exporting: ""},
		{name: "sdk disabled", environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", "OTEL_SDK_DISABLED=true"}, exporting: ""},
		{name: "unsupported exporter", environ: []string{"OTEL_TRACES_EXPORTER=zipkin"}, wantErr: "OTEL_TRACES_EXPORTER"},
		{name: "unsupported protocol", environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://x:1", "OTEL_EXPORTER_OTLP_PROTOCOL=http/json"}, wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "bad sampler", environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://x:1", "OTEL_TRACES_SAMPLER=sometimes"}, wantErr: "OTEL_TRACES_SAMPLER"},
		{name: "bad sampler arg", environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://x:1", "OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=2"}, wantErr: "OTEL_TRACES_SAMPLER_ARG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(context.Background(), tt.environ, "test")
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			if p.Exporting != tt.exporting {
				t.Errorf("exporting %q, want %q", p.Exporting, tt.exporting)
			}
			if p.Metrics == nil || p.Registry == nil {
				t.Error("the metrics registry or handler is nil")
			}
			if (p.TracerProvider != nil) != (tt.exporting != "") {
				t.Errorf("tracer provider %v with exporter %q: want one exactly when exporting", p.TracerProvider, tt.exporting)
			}
		})
	}
}
