package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Providers are the telemetry providers of one postern process.
type Providers struct {
	// TracerProvider exports spans; nil when no exporter is configured.
	TracerProvider trace.TracerProvider
	// Registry holds the metrics: postern's own (register them here), Go
	// runtime and process collectors, and target_info.
	Registry *prometheus.Registry
	// Metrics serves the metrics in Prometheus text format.
	Metrics http.Handler
	// Exporting names the trace exporter in use ("" when none).
	Exporting string

	shutdown []func(context.Context) error
}

// New builds the providers from the OTEL_* variables in environ:
// OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER (otlp or none; when unset, otlp
// if an OTLP endpoint is set), OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT,
// OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL (http/protobuf or grpc),
// OTEL_SERVICE_NAME (default postern), OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG. The exporters read their other standard
// variables (headers, timeout, certificates, batching) themselves.
func New(ctx context.Context, environ []string, version string) (*Providers, error) {
	env := toMap(environ)
	if err := check(env); err != nil {
		return nil, err
	}
	service := env["OTEL_SERVICE_NAME"]
	if service == "" {
		service = "postern"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(service), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	p := &Providers{}

	exp, name, err := traceExporter(ctx, env)
	if err != nil {
		return nil, err
	}
	if exp != nil {
		sampler, err := sampler(env)
		if err != nil {
			return nil, err
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
		p.TracerProvider, p.Exporting = tp, name
		p.shutdown = append(p.shutdown, tp.Shutdown)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := reg.Register(targetInfo(res)); err != nil {
		return nil, fmt.Errorf("target_info from the OpenTelemetry resource (OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	p.Registry = reg
	p.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return p, nil
}

// Shutdown flushes and stops the providers; spans of the last requests are
// exported before it returns.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range p.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// check refuses the malformed values that the SDK and the exporters would
// only log about (or take as false) and run on without.
func check(env map[string]string) error {
	switch v := env["OTEL_SDK_DISABLED"]; {
	case v == "", strings.EqualFold(v, "true"), strings.EqualFold(v, "false"):
	default:
		return fmt.Errorf("OTEL_SDK_DISABLED: %q is not a boolean (use true or false)", v)
	}
	for _, name := range [...]string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		v := env[name]
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil {
			return fmt.Errorf("%s: not a valid URL", name) // not echoed: it may hold credentials
		}
		if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("%s: %q is not an http:// or https:// URL with a host", name, u.Redacted())
		}
	}
	// As the SDK reads it: key=value pairs, comma-separated, values
	// percent-encoded; it drops a malformed pair with only a log line.
	if attrs := env["OTEL_RESOURCE_ATTRIBUTES"]; strings.TrimSpace(attrs) != "" {
		for i, pair := range strings.Split(attrs, ",") {
			k, v, ok := strings.Cut(pair, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: item %d is not key=value", i+1)
			}
			if _, err := url.PathUnescape(strings.TrimSpace(v)); err != nil {
				return fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: the value of %s is not percent-encoded", strings.TrimSpace(k))
			}
		}
	}
	return nil
}

// traceExporter returns the configured span exporter, or nil.
func traceExporter(ctx context.Context, env map[string]string) (sdktrace.SpanExporter, string, error) {
	if strings.EqualFold(env["OTEL_SDK_DISABLED"], "true") {
		return nil, "", nil
	}
	endpoint, signalEndpoint := env["OTEL_EXPORTER_OTLP_ENDPOINT"], env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
	switch exporter := strings.TrimSpace(env["OTEL_TRACES_EXPORTER"]); exporter {
	case "none":
		return nil, "", nil
	case "":
		if endpoint == "" && signalEndpoint == "" {
			return nil, "", nil
		}
	case "otlp":
	default:
		return nil, "", fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (use otlp or none)", exporter)
	}
	protocol := env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]
	if protocol == "" {
		protocol = env["OTEL_EXPORTER_OTLP_PROTOCOL"]
	}
	switch protocol {
	case "", "http/protobuf":
		var opts []otlptracehttp.Option
		switch {
		case signalEndpoint != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(signalEndpoint))
		case endpoint != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("OTLP/HTTP trace exporter: %w", err)
		}
		return exp, "otlp http/protobuf", nil
	case "grpc":
		var opts []otlptracegrpc.Option
		if e := firstNonEmpty(signalEndpoint, endpoint); e != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(e))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("OTLP/gRPC trace exporter: %w", err)
		}
		return exp, "otlp grpc", nil
	}
	return nil, "", fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported (use http/protobuf or grpc)", protocol)
}

// targetInfo is the target_info gauge of the OpenTelemetry specification's
// Prometheus compatibility: the resource's attributes (service name and
// version, SDK, OTEL_RESOURCE_ATTRIBUTES) as labels of a constant 1, for
// joining with postern's metrics.
func targetInfo(res *resource.Resource) prometheus.Collector {
	labels := prometheus.Labels{}
	for _, kv := range res.Attributes() {
		if kv.Key != "" {
			labels[promName(string(kv.Key))] = kv.Value.Emit()
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "target_info", Help: "Target metadata", ConstLabels: labels})
	g.Set(1)
	return g
}

// promName makes an attribute key a Prometheus label name: each character
// other than a letter, digit or underscore becomes an underscore, a leading
// digit gets one in front, and a name the result would start with two
// underscores (reserved) gets "key" in front, as OpenTelemetry's exporter
// does.
func promName(key string) string {
	b := []byte(key)
	for i, c := range b {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) > 0 && '0' <= b[0] && b[0] <= '9' {
		b = append([]byte{'_'}, b...)
	}
	if len(b) >= 2 && b[0] == '_' && b[1] == '_' {
		b = append([]byte("key"), b...)
	}
	return string(b)
}

// sampler reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
func sampler(env map[string]string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if arg := env["OTEL_TRACES_SAMPLER_ARG"]; arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: %q is not a ratio between 0 and 1", arg)
		}
		ratio = r
	}
	switch s := env["OTEL_TRACES_SAMPLER"]; s {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_SAMPLER: %q is not supported", s)
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func toMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
