package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/postern-dev/postern/proxy/h1"
	"github.com/postern-dev/postern/proxy/jsonlog"
	"github.com/postern-dev/postern/proxy/schema"
	"github.com/postern-dev/postern/proxy/signature"
	"github.com/postern-dev/postern/proxy/strictjson"
)

// Unknown-event policies.
const (
	UnknownForward = "forward"
	UnknownReject  = "reject"
	UnknownAck     = "ack"
)

// Options is everything the handler depends on. Zero values are filled with
// the documented defaults by New, except Upstream, Verifier and Schemas,
// which are required.
type Options struct {
	// Upstream is the application's base URL; the request path is appended.
	Upstream *url.URL
	// UpstreamTimeout bounds the app's whole answer (default 10s).
	UpstreamTimeout time.Duration
	// Client reaches the app (default: a new *Client).
	Client *Client
	// Verifier holds the signing keys; it may be updated while serving.
	Verifier *signature.Verifier
	// TimestampTolerance is the accepted clock difference in both directions (default 5m).
	TimestampTolerance time.Duration
	// MaxBodyBytes caps the request body (default 1 MiB).
	MaxBodyBytes int64
	// Schemas are the compiled event schemas.
	Schemas *schema.Set
	// EventType locates the event type in the body (default /eventType).
	EventType schema.Pointer
	// UnknownEvents is UnknownForward (default), UnknownReject or UnknownAck.
	UnknownEvents string
	// Dedupe enables duplicate suppression by message id.
	Dedupe bool
	// DedupeTTL is how long an acknowledged id is remembered (default 24h).
	DedupeTTL time.Duration
	// DedupeMaxEntries bounds the remembered ids (default 100000).
	DedupeMaxEntries int
	// Audit receives one record per request; it should not filter by level.
	Audit *slog.Logger
	// AuditBody adds the raw body to audit records.
	AuditBody bool
	// Log receives operational messages (default: discarded).
	Log *slog.Logger
	// Tracer creates the request's spans. When nil, no spans are made and
	// the sender's traceparent and tracestate reach the app unchanged.
	Tracer trace.Tracer
	// Metrics registers postern's metrics, to be served in the Prometheus
	// text format (default: they are kept but not registered anywhere).
	Metrics prometheus.Registerer
	// Propagator reads and writes trace context headers (default: W3C trace context).
	Propagator propagation.TextMapPropagator
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Handler is the webhook handler. Create it with New.
type Handler struct {
	opts     Options
	fwd      forwarder
	budget   bodyBudget
	dedupe   *dedupe // nil when off
	metrics  *metrics
	draining atomic.Bool
	// monotonic is true when opts.Now is time.Now: durations are then
	// read from the monotonic clock alone (one clock read, not two).
	monotonic bool
	// auditJSON is opts.Audit's handler when it is postern's own, which
	// takes the record's attributes without an slog.Record.
	auditJSON *jsonlog.Handler
}

var _ http.Handler = (*Handler)(nil)

// New returns the webhook handler for opts.
func New(opts Options) (*Handler, error) {
	if opts.Upstream == nil || opts.Verifier == nil || opts.Schemas == nil {
		return nil, errors.New("proxy: Upstream, Verifier and Schemas are required")
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = 10 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &Client{}
	}
	if opts.TimestampTolerance <= 0 {
		opts.TimestampTolerance = 5 * time.Minute
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.EventType.String() == "" {
		opts.EventType, _ = schema.ParsePointer("/eventType")
	}
	if opts.UnknownEvents == "" {
		opts.UnknownEvents = UnknownForward
	}
	if opts.DedupeTTL <= 0 {
		opts.DedupeTTL = 24 * time.Hour
	}
	if opts.DedupeMaxEntries <= 0 {
		opts.DedupeMaxEntries = 100000
	}
	if opts.Audit == nil {
		opts.Audit = slog.New(slog.DiscardHandler)
	}
	auditJSON, _ := opts.Audit.Handler().(*jsonlog.Handler)
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Propagator == nil {
		opts.Propagator = propagation.TraceContext{}
	}
	monotonic := opts.Now == nil
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{
		opts:      opts,
		monotonic: monotonic,
		auditJSON: auditJSON,
		fwd:       forwarder{target: opts.Upstream, client: opts.Client, timeout: opts.UpstreamTimeout},
	}
	h.budget.max = max(minBodyBudget, 4*min(opts.MaxBodyBytes, math.MaxInt64/4)) // (4x a cap past 2^61 would wrap)
	if opts.Dedupe {
		h.dedupe = newDedupe(opts.DedupeTTL, opts.DedupeMaxEntries)
	}
	var err error
	if h.metrics, err = newMetrics(opts.Metrics, h.dedupe, opts.Now); err != nil {
		return nil, fmt.Errorf("proxy: metrics: %w", err)
	}
	h.fwd.resends = h.metrics.resends
	return h, nil
}

// since returns the time elapsed since t, a time from opts.Now.
func (h *Handler) since(t time.Time) time.Duration {
	if h.monotonic {
		return time.Since(t)
	}
	return h.opts.Now().Sub(t)
}

// tick reads the clock for rec: it returns the time since the request
// began and keeps it as rec's mark, for later steps that need the time but
// not a new reading (a reading costs tens of nanoseconds, and a request
// made about twenty).
func (h *Handler) tick(rec *record) time.Duration {
	rec.mark = h.since(rec.start)
	return rec.mark
}

// Drain makes the handler answer 503 shutting_down from now on; call it when
// SIGTERM arrives, before shutting the server down.
func (h *Handler) Drain() { h.draining.Store(true) }

// delivery is one request on its way through the handler: what the
// checks before the exchange with the app leave for the steps after it.
// Serving a request is start, then check; when check says to forward,
// the exchange (forwarder.send, or the event loop's) and respond; then end.
type delivery struct {
	ctx      context.Context
	span     trace.Span
	rec      record
	reserved int64 // body bytes reserved from the budget
	// held, when not nil, is the whole body, already in memory where the
	// caller keeps it unchanged until end (the event loop's connection
	// buffer): it is checked and forwarded in place, not read again.
	held     []byte
	claimed  bool // a dedupe claim is held under key
	key      idKey
	acked    bool // the app (or postern, for an acknowledged unknown type) took it
	released bool
	// The forward step's, set by beginForward.
	o      outbound
	fctx   context.Context // the forward span's
	fspan  trace.Span
	fstart time.Duration
}

// ServeHTTP handles one webhook delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var dv delivery // on the stack: nothing keeps it past ServeHTTP
	d := &dv
	h.start(d, r)
	defer h.release(d)
	if h.check(w, r, d) {
		sent := h.beginForward(d, r, true)
		ur, perr := h.fwd.send(d.fctx, &d.o, sent)
		h.respond(w, d, ur, perr)
	}
	h.end(d)
	if d.rec.aborted {
		// The app's response broke after its status was sent: cut the
		// connection so the sender cannot read it as a complete answer.
		panic(http.ErrAbortHandler)
	}
}

// start begins serving r into d, a zero delivery: the clock, the server
// span, the record.
func (h *Handler) start(d *delivery, r *http.Request) {
	start := h.opts.Now()
	if t, ok := h1.Arrived(r); ok && h.monotonic {
		start = t // began in the event loop, handed over as slow
	}
	ctx := r.Context()
	if h.opts.Tracer != nil {
		ctx = h.opts.Propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, span := h.startSpan(ctx, r.Method, trace.SpanKindServer)
	if span.IsRecording() {
		span.SetAttributes(serverAttributes(r)...)
	}
	h.metrics.inFlight.Add(1)
	d.ctx, d.span = ctx, span
	traceID := span.SpanContext().TraceID()
	if h.opts.Tracer == nil {
		traceID = senderTraceID(r.Header)
	}
	d.rec = record{start: start, remote: r.RemoteAddr, traceID: traceID, keyIndex: -1}
}

// senderTraceID is the trace id of the sender's traceparent (with tracing
// off, the app receives that traceparent unchanged unless the sender's
// Connection header names it): the zero id unless there is exactly one,
// well formed, as W3C Trace Context's propagator reads it.
func senderTraceID(h http.Header) trace.TraceID {
	if len(h["Traceparent"]) != 1 {
		return trace.TraceID{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h))
	return trace.SpanContextFromContext(ctx).TraceID()
}

// release gives back what d holds: its dedupe claim, settled as acked or
// not, and its body's budget. It runs once, from end or, if the handler
// panicked, from ServeHTTP's defer.
func (h *Handler) release(d *delivery) {
	if d.released {
		return
	}
	d.released = true
	if d.claimed {
		h.dedupe.finish(d.key, d.acked, d.rec.now())
	}
	h.budget.release(d.reserved)
}

// end finishes d: its claim and budget released, its audit record
// written, its span ended.
func (h *Handler) end(d *delivery) {
	h.release(d)
	h.finish(d.ctx, d.span, &d.rec)
	h.metrics.inFlight.Add(-1)
}

// namedID is the message id r's headers name, for the audit record of a
// request turned away before its signature is checked: empty unless the
// signature headers are well formed (nothing is verified).
func namedID(r *http.Request) string {
	if hdr, err := signature.Extract(r.Header); err == nil {
		return hdr.ID
	}
	return ""
}

// check runs the checks in the order of the status contract. It answers
// on w and returns false when the request is refused or answered without
// the app; it returns true when d is to be forwarded.
func (h *Handler) check(w http.ResponseWriter, r *http.Request, d *delivery) (forward bool) {
	rec := &d.rec
	if h.draining.Load() {
		rec.msgID = namedID(r)
		w.Header().Set("Connection", "close")
		h.reject(w, rec, &Error{Status: http.StatusServiceUnavailable, Reason: ReasonShuttingDown,
			Detail: "postern is shutting down; retry shortly", RetryAfter: retryAfterDraining})
		return false
	}
	if r.Method != http.MethodPost {
		rec.msgID = namedID(r)
		h.reject(w, rec, &Error{Status: http.StatusMethodNotAllowed, Reason: ReasonMethodNotAllowed,
			Detail: "webhooks are delivered with POST"})
		return false
	}
	body, reserved, perr := h.readBody(w, r, d.held)
	d.reserved = reserved
	rec.bytes = len(body)
	if perr != nil {
		rec.msgID = namedID(r)
		h.reject(w, rec, perr)
		return false
	}
	if h.opts.AuditBody {
		rec.body = body
	}

	ctx := d.ctx
	hdr, keyIndex, perr := h.verify(ctx, r.Header, body, rec)
	rec.msgID, rec.keyIndex = hdr.ID, keyIndex
	if perr != nil {
		h.reject(w, rec, perr)
		return false
	}

	if h.dedupe != nil {
		_, dspan := h.startSpan(ctx, "dedupe", trace.SpanKindInternal)
		claim, key := h.dedupe.begin(hdr.ID, rec.now())
		dspan.End()
		switch claim {
		case claimAcked:
			h.metrics.add(h.metrics.dedupeHits, "acked", "")
			rec.outcome, rec.status = OutcomeDuplicate, http.StatusOK
			writeJSON(w, `{"duplicate":true}`)
			return false
		case claimInFlight:
			h.metrics.add(h.metrics.dedupeHits, "in_flight", "")
			rec.outcome = OutcomeDuplicate
			h.reject(w, rec, &Error{Status: http.StatusConflict, Reason: ReasonDeliveryInFlight,
				Detail: "a delivery of this message is in progress", RetryAfter: retryAfterInFlight})
			return false
		}
		d.claimed, d.key = true, key
	}

	eventType, known, perr := h.validate(ctx, body, rec)
	rec.eventType = eventType
	if perr != nil {
		h.reject(w, rec, perr)
		return false
	}
	if !known {
		switch h.opts.UnknownEvents {
		case UnknownReject:
			h.reject(w, rec, &Error{Status: http.StatusUnprocessableEntity, Reason: ReasonUnknownEventType,
				Detail: fmt.Sprintf("no schema for event type %q", eventType)})
			return false
		case UnknownAck:
			rec.outcome, rec.status, rec.reason = OutcomeAcked, http.StatusOK, ReasonUnknownEventType
			writeJSON(w, `{"acknowledged":true,"forwarded":false}`)
			d.acked = true
			return false
		}
	}
	d.o = outbound{f: &h.fwd, in: r, body: body, tracing: h.opts.Tracer != nil,
		verified: verifiedHeaders{names: hdr.Names, id: hdr.ID, timestamp: hdr.Timestamp,
			signature: hdr.Signature, eventType: eventType}}
	return true
}

// respond answers with the app's response ur, or with perr when the
// exchange failed.
func (h *Handler) respond(w http.ResponseWriter, d *delivery, ur *upstreamResponse, perr *Error) {
	rec := &d.rec
	ur, perr = h.endForward(d, ur, perr)
	if perr != nil {
		rec.outcome = OutcomeUpstreamFailed
		if ur != nil {
			rec.upstreamStatus = ur.status
		}
		if errors.Is(perr.Err, errCut) {
			// The drain timed out, and the sender's connection is already
			// closed: nothing is answered, as in the event loop's record.
			// (Aborted: were it still open, it is closed, never answered
			// with the 200 an empty response would be.)
			rec.reason, rec.err, rec.aborted = perr.Reason, perr.Err, true
			return
		}
		h.reject(w, rec, perr)
		return
	}
	rec.outcome, rec.status, rec.upstreamStatus = OutcomeForwarded, ur.status, ur.status
	appErr, senderErr := writeResponse(w, ur)
	if appErr != nil {
		rec.outcome, rec.reason, rec.err, rec.aborted = OutcomeUpstreamFailed, ReasonUpstreamError, appErr, true
		return
	}
	if senderErr != nil {
		// The app took the webhook; the sender, gone, retries and is
		// answered as a duplicate.
		rec.err, rec.aborted = senderErr, true
	}
	d.acked = ur.status >= 200 && ur.status < 300
}

// readBody reads the body under the size cap. The caller releases reserved
// from the budget when done with the body.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, held []byte) (body []byte, reserved int64, perr *Error) {
	if r.ContentLength > h.opts.MaxBodyBytes {
		w.Header().Set("Connection", "close")
		return nil, 0, h.tooLarge()
	}
	if held != nil {
		// Already in memory: counted against the budget as a body read
		// here would be, not copied.
		if !h.budget.reserve(int64(len(held))) {
			w.Header().Set("Connection", "close")
			return nil, 0, h.overloaded()
		}
		return held, int64(len(held)), nil
	}
	src := r.Body
	if r.ContentLength < 0 {
		// Chunked: only the cap bounds it. A body with a Content-Length
		// ends there, which is checked above.
		src = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	}
	body, reserved, err := h.budget.readBody(src, r.ContentLength)
	if errors.Is(err, errBudget) {
		w.Header().Set("Connection", "close")
		return nil, reserved, h.overloaded()
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return body, reserved, h.tooLarge()
		}
		return body, reserved, &Error{Status: http.StatusBadRequest, Reason: ReasonBodyReadFailed,
			Detail: "the request body could not be read", Err: err}
	}
	return body, reserved, nil
}

// overloaded is the answer to a body the budget has no room for.
func (h *Handler) overloaded() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Reason: ReasonOverloaded,
		Detail: "too many large bodies in flight; retry shortly", RetryAfter: retryAfterUnavailable}
}

// tooLarge is the answer to a body over MaxBodyBytes.
func (h *Handler) tooLarge() *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Reason: ReasonBodyTooLarge,
		Detail: fmt.Sprintf("the body exceeds %d bytes", h.opts.MaxBodyBytes)}
}

// verify checks the signature headers, the timestamp window (at rec.start,
// when the request began) and the HMAC, and returns the headers and the
// index of the key that matched.
func (h *Handler) verify(ctx context.Context, header http.Header, body []byte, rec *record) (signature.Headers, int, *Error) {
	ctx, span := h.startSpan(ctx, "verify", trace.SpanKindInternal)
	arrived := rec.start
	start := h.tick(rec)
	defer func() {
		h.metrics.verify.Observe((h.tick(rec) - start).Seconds())
		span.End()
	}()
	hdr, err := signature.Extract(header)
	if err != nil {
		return hdr, -1, verifyError(err)
	}
	if err := signature.CheckTimestamp(hdr.Time(), arrived, h.opts.TimestampTolerance); err != nil {
		return hdr, -1, verifyError(err)
	}
	keyIndex, err := h.opts.Verifier.Verify(body, hdr)
	if err != nil {
		return hdr, -1, verifyError(err)
	}
	// Only a signed timestamp says anything about the sender's clock: a
	// forged one would move the histogram's sum at will.
	h.metrics.skew.Observe(arrived.Sub(hdr.Time()).Seconds())
	h.metrics.add(h.metrics.keyMatches, strconv.Itoa(keyIndex), "")
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("postern.key_index", keyIndex))
	}
	return hdr, keyIndex, nil
}

// verifyError maps a signature sentinel to its status and reason.
func verifyError(err error) *Error {
	e := &Error{Status: http.StatusUnauthorized, Err: err}
	switch {
	case errors.Is(err, signature.ErrDuplicateHeader):
		e.Status, e.Reason, e.Detail = http.StatusBadRequest, ReasonMalformedHeaders, "a signature header was sent more than once"
	case errors.Is(err, signature.ErrMissingHeaders):
		e.Status, e.Reason, e.Detail = http.StatusBadRequest, ReasonMissingHeaders,
			"expected svix-id, svix-timestamp and svix-signature (or webhook-id, webhook-timestamp and webhook-signature)"
	case errors.Is(err, signature.ErrMalformedHeaders):
		e.Status, e.Reason, e.Detail = http.StatusBadRequest, ReasonMalformedHeaders,
			"the id must be printable, the timestamp all digits, the signature space-separated version,value tokens"
	case errors.Is(err, signature.ErrTimestampTooOld):
		e.Reason, e.Detail = ReasonTimestampTooOld, "the timestamp is older than the tolerance"
	case errors.Is(err, signature.ErrTimestampTooNew):
		e.Reason, e.Detail = ReasonTimestampTooNew, "the timestamp is newer than the tolerance"
	default:
		e.Reason, e.Detail = ReasonSignatureMismatch, "no signature matches a configured key"
	}
	return e
}

// validate parses the body as strict JSON, finds its event type and checks
// its schema. known is false when the event type has no schema.
func (h *Handler) validate(ctx context.Context, body []byte, rec *record) (eventType string, known bool, perr *Error) {
	ctx, span := h.startSpan(ctx, "validate", trace.SpanKindInternal)
	start := h.tick(rec)
	defer func() {
		h.metrics.validate.Observe((h.tick(rec) - start).Seconds())
		span.End()
	}()
	// The document's strings are slices of body, which nothing writes to
	// while the delivery lasts; the body may be the event loop's buffer,
	// reused after it, so eventType, which outlives it (a metric label, a
	// span attribute exported later), is made a string of its own.
	doc := docs.Get().(*strictjson.Doc)
	defer putDoc(doc)
	if err := doc.ParseString(unsafe.String(unsafe.SliceData(body), len(body))); err != nil {
		return "", false, &Error{Status: http.StatusBadRequest, Reason: ReasonInvalidJSON,
			Detail: "the body is not strict JSON (RFC 8259 and I-JSON RFC 7493): " + err.Error(), Err: err}
	}
	eventType, err := h.opts.EventType.EventType(doc)
	if err != nil {
		return "", false, &Error{Status: http.StatusBadRequest, Reason: ReasonMissingEventType,
			Detail: "no non-empty string without control characters or surrounding spaces at " + h.opts.EventType.String() + " in a JSON object body", Err: err}
	}
	eventType, known, err = h.opts.Schemas.Validate(eventType, doc)
	if err != nil {
		h.metrics.add(h.metrics.violations, eventType, "")
		return eventType, known, &Error{Status: http.StatusUnprocessableEntity, Reason: ReasonSchemaViolation,
			Detail: err.Error(), Err: err}
	}
	return eventType, known, nil
}

// docs holds parsed documents for reuse: a Doc's node list is the only
// memory parsing a body needs.
var docs = sync.Pool{New: func() any { return new(strictjson.Doc) }}

// maxPooledNodes bounds the node list a pooled Doc keeps (48 bytes each), so
// that one large body does not pin its nodes for the life of the process.
const maxPooledNodes = 1024

func putDoc(d *strictjson.Doc) {
	d.Reset()
	if cap(d.Nodes) <= maxPooledNodes {
		docs.Put(d)
	}
}

// beginForward opens the forward span and completes d's outbound request
// for the app; it returns the time the exchange starts, from which its
// deadline runs. With yield, it first lets the other ready goroutines run.
func (h *Handler) beginForward(d *delivery, r *http.Request, yield bool) (sent time.Time) {
	// Let the other requests that are ready (arrived with this one, or
	// being verified) catch up first, so that requests that arrive
	// together reach the app together, as an event loop such as nginx's
	// forwards them. Otherwise postern's one processor sends them one at a
	// time, a verification apart, and an app that goes idle in between is
	// woken for each one, which costs it CPU (bench/run --profile shows the
	// app's wake-ups per request). When nothing else is ready this returns
	// at once. (An event loop has nothing to yield to: it forwards what
	// arrived together before it waits again.)
	if yield {
		runtime.Gosched()
	}
	ctx := d.ctx
	if d.o.tracing {
		// The delivery is not cancelled when the sender hangs up: the app
		// finishes it, and the sender's retry is then answered as a
		// duplicate. (Without a span, nothing here watches ctx: the
		// exchange has its own deadline and dials without cancellation.)
		ctx = context.WithoutCancel(ctx)
	}
	ctx, d.fspan = h.startSpan(ctx, "forward", trace.SpanKindClient)
	d.fctx = ctx
	d.fstart = h.tick(&d.rec)
	d.o.prepare()
	if d.o.tracing {
		d.o.extra = &carrier{o: d.o}
		h.opts.Propagator.Inject(ctx, d.o.extra)
	}
	sent = d.rec.now()
	if !h.monotonic {
		sent = time.Now() // the exchange's deadline is on the real clock
	}
	return sent
}

// endForward closes the forward span and maps the app's answer to the
// status contract.
func (h *Handler) endForward(d *delivery, ur *upstreamResponse, perr *Error) (*upstreamResponse, *Error) {
	h.metrics.forward.Observe((h.tick(&d.rec) - d.fstart).Seconds())
	if span := d.fspan; span.IsRecording() {
		span.SetAttributes(clientAttributes(h.fwd.spanRequest(d.o.in), ur, perr)...)
		switch {
		case perr != nil:
			span.SetStatus(codes.Error, perr.Reason)
		case ur.status >= 400:
			// A client span's error, by OpenTelemetry's HTTP conventions.
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(ur.status)))
			span.SetStatus(codes.Error, "")
		}
	}
	d.fspan.End()
	if perr != nil {
		return nil, perr
	}
	h.metrics.add(h.metrics.upstream, statusClass(ur.status), "")
	if ur.status == http.StatusGone {
		if ur.rest != nil {
			ur.rest.Close()
		}
		return ur, &Error{Status: http.StatusBadGateway, Reason: ReasonUpstreamGone,
			Detail: "the application answered 410; postern does not pass it on because it would make the sender disable this endpoint"}
	}
	return ur, nil
}

// startSpan starts a span, or returns a non-recording one without touching
// the context when tracing is off.
func (h *Handler) startSpan(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if h.opts.Tracer == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	return h.opts.Tracer.Start(ctx, name, trace.WithSpanKind(kind))
}

// reject answers with e and notes it in the record.
func (h *Handler) reject(w http.ResponseWriter, rec *record, e *Error) {
	if rec.outcome == "" {
		rec.outcome = OutcomeRejected
	}
	rec.status, rec.reason, rec.err = e.Status, e.Reason, e.Err
	writeProblem(w, e)
}
