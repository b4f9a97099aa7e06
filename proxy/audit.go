package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Outcomes, as written in audit records and span attributes.
const (
	OutcomeForwarded      = "forwarded"
	OutcomeRejected       = "rejected"
	OutcomeDuplicate      = "duplicate"
	OutcomeAcked          = "acked"
	OutcomeUpstreamFailed = "upstream_failed"
)

// record collects what one request did, for its audit line and span.
type record struct {
	start          time.Time
	mark           time.Duration // the last clock reading, as time since start (Handler.tick)
	remote         string
	traceID        trace.TraceID
	msgID          string
	eventType      string
	keyIndex       int
	outcome        string
	reason         string
	status         int
	upstreamStatus int
	bytes          int
	body           []byte
	err            error
	aborted        bool
}

// now is the time of rec's last clock reading.
func (rec *record) now() time.Time { return rec.start.Add(rec.mark) }

// finish writes the audit record and ends the server span.
func (h *Handler) finish(ctx context.Context, span trace.Span, rec *record) {
	dur := h.since(rec.start)
	end := rec.start.Add(dur)
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("msg_id", rec.msgID),
		slog.String("event_type", rec.eventType),
		slog.String("outcome", rec.outcome),
		slog.String("reason", rec.reason),
		slog.Int("status", rec.status),
		slog.Int("upstream_status", rec.upstreamStatus),
		slog.Int("bytes", rec.bytes),
		slog.Float64("duration_ms", float64(dur.Microseconds())/1000),
		slog.String("remote_addr", rec.remote),
	)
	if rec.traceID.IsValid() {
		attrs = append(attrs, slog.String("trace_id", rec.traceID.String()))
	}
	if rec.keyIndex >= 0 { // the signature verified, whatever came after
		attrs = append(attrs, slog.Int("key_index", rec.keyIndex))
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("error", rec.err.Error()))
	}
	if rec.body != nil {
		attrs = append(attrs, slog.String("body", string(rec.body)))
	}
	// The handler directly, as slog.Logger.LogAttrs does but without the
	// caller's program counter (runtime.Callers), which the audit record
	// does not show; postern's own handler without a slog.Record too.
	switch ah := h.opts.Audit.Handler(); {
	case !ah.Enabled(ctx, slog.LevelInfo):
	case h.auditJSON != nil:
		h.auditJSON.HandleAttrs(ctx, end, slog.LevelInfo, "webhook", attrs) // an audit write error has nowhere better to go
	default:
		r := slog.NewRecord(end, slog.LevelInfo, "webhook", 0)
		r.AddAttrs(attrs...)
		ah.Handle(ctx, r)
	}

	h.metrics.add(h.metrics.requests, rec.outcome, rec.reason)
	h.metrics.duration.Observe(dur.Seconds())

	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("postern.msg_id", spanText(rec.msgID)),
			attribute.String("postern.event_type", spanText(rec.eventType)),
			attribute.String("postern.outcome", rec.outcome),
			attribute.String("postern.reason", rec.reason),
			semconv.HTTPResponseStatusCode(rec.status),
			semconv.HTTPRequestBodySize(rec.bytes),
		)
		if rec.upstreamStatus != 0 {
			span.SetAttributes(attribute.Int("postern.upstream_status", rec.upstreamStatus))
		}
		if rec.keyIndex >= 0 {
			span.SetAttributes(attribute.Int("postern.key_index", rec.keyIndex))
		}
		if rec.status >= 500 {
			span.SetStatus(codes.Error, rec.reason)
		}
	}
	span.End()
}

// spanText is s as a span attribute may hold it: OTLP's protobuf strings
// must be UTF-8, and one invalid attribute fails the export of its whole
// batch (other senders' spans too). A sender's bytes are not trusted to
// be: what is not UTF-8 becomes U+FFFD.
func spanText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// serverAttributes are the semantic-convention attributes of the server span.
func serverAttributes(r *http.Request) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(r.Method),
		semconv.URLPath(spanText(r.URL.Path)),
		semconv.URLScheme("http"),
		semconv.NetworkProtocolVersion(fmt.Sprintf("%d.%d", r.ProtoMajor, r.ProtoMinor)),
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(spanText(ua)))
	}
	if host, port, err := net.SplitHostPort(r.Host); err == nil {
		attrs = append(attrs, semconv.ServerAddress(spanText(host)))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
	} else if r.Host != "" {
		attrs = append(attrs, semconv.ServerAddress(spanText(r.Host)))
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, semconv.ClientAddress(ip))
	}
	return attrs
}

// clientAttributes are the semantic-convention attributes of the forward span.
func clientAttributes(out *http.Request, ur *upstreamResponse, perr *Error) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(out.Method),
		semconv.URLFull(spanText(out.URL.String())),
		semconv.ServerAddress(spanText(out.URL.Hostname())),
	}
	if p, err := strconv.Atoi(out.URL.Port()); err == nil {
		attrs = append(attrs, semconv.ServerPort(p))
	}
	if ur != nil {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(ur.status))
	}
	if perr != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(perr.Reason))
	}
	return attrs
}
