// Package telemetry builds postern's OpenTelemetry providers from the
// standard OTEL_* variables: a tracer provider with an OTLP exporter (HTTP
// or gRPC) when one is configured and a no-op one otherwise, and a meter
// provider whose metrics are served in Prometheus text format.
package telemetry
