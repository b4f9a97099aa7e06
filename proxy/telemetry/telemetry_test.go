package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
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
		{name: "SDK_DISABLED not a boolean", environ: []string{"OTEL_SDK_DISABLED=maybe"}, wantErr: "OTEL_SDK_DISABLED"},
		{name: "SDK_DISABLED FALSE", environ: []string{"OTEL_SDK_DISABLED=FALSE"}},
		{name: "endpoint not a URL", environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=:::"}, wantErr: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "endpoint without scheme", environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318"}, wantErr: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "traces endpoint without host", environ: []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http:///v1/traces"}, wantErr: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{name: "endpoint set while disabled is still checked", environ: []string{"OTEL_SDK_DISABLED=true", "OTEL_EXPORTER_OTLP_ENDPOINT=ftp://x"}, wantErr: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "resource attribute without value", environ: []string{"OTEL_RESOURCE_ATTRIBUTES=novalue"}, wantErr: "OTEL_RESOURCE_ATTRIBUTES"},
		{name: "resource attributes with an empty item", environ: []string{"OTEL_RESOURCE_ATTRIBUTES=a=b,"}, wantErr: "OTEL_RESOURCE_ATTRIBUTES"},
		{name: "resource attribute badly escaped", environ: []string{"OTEL_RESOURCE_ATTRIBUTES=a=%zz"}, wantErr: "OTEL_RESOURCE_ATTRIBUTES"},
		{name: "resource attributes", environ: []string{"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod, team=web%20hooks"}},
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

func TestPromName(t *testing.T) {
	for key, want := range map[string]string{
		"service.name":  "service_name",
		"k8s.pod-name":  "k8s_pod_name",
		"already_fine":  "already_fine",
		"9lives":        "_9lives",
		"..hidden":      "key__hidden",
		"__reserved":    "key__reserved",
		"ünïcode.chars": "key__n__code_chars", // an underscore for each byte of a multi-byte character
	} {
		if got := promName(key); got != want {
			t.Errorf("promName(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestTargetInfo: /metrics carries target_info with the OpenTelemetry
// resource's attributes as labels, their keys made label names.
func TestTargetInfo(t *testing.T) {
	p, err := New(context.Background(), []string{"OTEL_SERVICE_NAME=billing-hooks"}, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	rec := httptest.NewRecorder()
	p.Metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var line string
	for l := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(l, "target_info{") {
			line = strings.TrimSpace(l)
		}
	}
	for _, want := range []string{`service_name="billing-hooks"`, `service_version="1.2.3"`, `telemetry_sdk_language="go"`} {
		if !strings.Contains(line, want) {
			t.Errorf("target_info line %q lacks %s", line, want)
		}
	}
	if !strings.HasSuffix(line, "} 1") {
		t.Errorf("target_info line %q: want the value 1", line)
	}
}
