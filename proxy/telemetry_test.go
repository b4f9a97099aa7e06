package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// spanTree renders the recorded spans as "parent > child" lines with kinds.
func spanTree(spans []sdktrace.ReadOnlySpan) []string {
	names := map[trace.SpanID]string{}
	for _, s := range spans {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	var out []string
	for _, s := range spans {
		parent := names[s.Parent().SpanID()]
		if parent == "" {
			parent = "-"
		}
		out = append(out, parent+" > "+s.Name()+" ("+s.SpanKind().String()+")")
	}
	return out
}

func attrsOf(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func TestSpans(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	rg := newRig(t, nil, func(o *Options) { o.Tracer = tp.Tracer("test") })

	rg.post(t, "/hook", signed(testKey, "msg_t1", testNow, validBody), validBody)
	rg.post(t, "/hook", signed(otherKey, "msg_t2", testNow, validBody), validBody)
	rg.post(t, "/hook", signed(testKey, "msg_t1", testNow, validBody), validBody)

	// Spans end child first; group them by trace, in request order.
	var traces [][]sdktrace.ReadOnlySpan
	index := map[trace.TraceID]int{}
	for _, s := range sr.Ended() {
		id := s.SpanContext().TraceID()
		if _, ok := index[id]; !ok {
			index[id] = len(traces)
			traces = append(traces, nil)
		}
		traces[index[id]] = append(traces[index[id]], s)
	}
	if len(traces) != 3 {
		t.Fatalf("got %d traces, want 3", len(traces))
	}
	wantTrees := [][]string{
		{"POST > verify (internal)", "POST > dedupe (internal)", "POST > validate (internal)", "POST > forward (client)", "- > POST (server)"},
		{"POST > verify (internal)", "- > POST (server)"},
		{"POST > verify (internal)", "POST > dedupe (internal)", "- > POST (server)"},
	}
	wantAttrs := []map[string]string{
		{"postern.outcome": "forwarded", "postern.reason": "", "postern.msg_id": "msg_t1", "postern.event_type": "REFERRAL_CREATED",
			"postern.key_index": "0", "postern.upstream_status": "204", "http.response.status_code": "204", "http.request.method": "POST", "url.path": "/hook"},
		{"postern.outcome": "rejected", "postern.reason": "signature_mismatch", "postern.msg_id": "msg_t2", "http.response.status_code": "401"},
		{"postern.outcome": "duplicate", "postern.msg_id": "msg_t1", "http.response.status_code": "200", "postern.key_index": "0"},
	}
	for i, spans := range traces {
		if diff := cmp.Diff(wantTrees[i], spanTree(spans)); diff != "" {
			t.Errorf("request %d span tree (-want +got):\n%s", i, diff)
		}
		server := attrsOf(spans[len(spans)-1])
		for k, want := range wantAttrs[i] {
			if server[k] != want {
				t.Errorf("request %d: server span %s = %q, want %q", i, k, server[k], want)
			}
		}
	}

	// The app received the forward span's context in traceparent.
	fwd := traces[0][3]
	tp0 := rg.app.requests()[0].Header.Get("Traceparent")
	want := "00-" + fwd.SpanContext().TraceID().String() + "-" + fwd.SpanContext().SpanID().String() + "-01"
	if tp0 != want {
		t.Errorf("app traceparent %q, want the forward span's %q", tp0, want)
	}
	if got := attrsOf(fwd)["http.response.status_code"]; got != "204" {
		t.Errorf("forward span status code %q, want 204", got)
	}
}

// gather reads reg's metrics as "name{label=value,...}" to the value of a
// counter or gauge, and to the count of a histogram (under its name); a
// histogram's count in buckets above bound goes under "name>bound".
func gather(t *testing.T, reg *prometheus.Registry, above map[string]float64) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var parts []string
			for _, lp := range m.GetLabel() {
				parts = append(parts, lp.GetName()+"="+lp.GetValue())
			}
			name := mf.GetName()
			if len(parts) > 0 {
				name += "{" + strings.Join(parts, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				got[name] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				got[name] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				got[name] = float64(h.GetSampleCount())
				if bound, ok := above[name]; ok {
					below := uint64(0)
					for _, b := range h.GetBucket() {
						if b.GetUpperBound() <= bound {
							below = b.GetCumulativeCount()
						}
					}
					got[name+">"+strconv.FormatFloat(bound, 'g', -1, 64)] = float64(h.GetSampleCount() - below)
				}
			}
		}
	}
	return got
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	rg := newRig(t, nil, func(o *Options) { o.Metrics = reg })
	bad := strings.Replace(validBody, `"CREATED"}`, `"FAILED"}`, 1)

	rg.post(t, "/", signed(testKey, "msg_m1", testNow, validBody), validBody)             // forwarded
	rg.post(t, "/", signed(testKey, "msg_m1", testNow, validBody), validBody)             // duplicate
	rg.post(t, "/", signed(otherKey, "msg_m2", testNow, validBody), validBody)            // mismatch
	rg.post(t, "/", signed(otherKey, "msg_m3", testNow, validBody), validBody)            // mismatch
	rg.post(t, "/", signed(testKey, "msg_m4", testNow, bad), bad)                         // schema violation
	rg.do(t, http.MethodGet, "/", nil, "")                                                // method
	rg.post(t, "/", signed(testKey, "msg_m5", testNow.Add(-60e9), validBody), validBody)  // skew 60s, forwarded
	rg.post(t, "/", signed(otherKey, "msg_m6", testNow.Add(-50e9), validBody), validBody) // forged: no skew

	got := gather(t, reg, map[string]float64{"postern_timestamp_skew_seconds": 30})
	want := map[string]float64{
		"postern_requests_total{outcome=forwarded,reason=}":                  2,
		"postern_requests_total{outcome=duplicate,reason=}":                  1,
		"postern_requests_total{outcome=rejected,reason=signature_mismatch}": 3,
		"postern_requests_total{outcome=rejected,reason=schema_violation}":   1,
		"postern_requests_total{outcome=rejected,reason=method_not_allowed}": 1,
		"postern_upstream_responses_total{class=2xx}":                        2,
		"postern_key_matches_total{key_index=0}":                             4,
		"postern_schema_violations_total{event_type=REFERRAL_CREATED}":       1,
		"postern_dedupe_hits_total{kind=acked}":                              1,
		"postern_requests_in_flight":                                         0,
		"postern_dedupe_entries":                                             2,
		"postern_request_duration_seconds":                                   8,
		"postern_verify_duration_seconds":                                    7,
		"postern_validate_duration_seconds":                                  3,
		"postern_forward_duration_seconds":                                   2,
		"postern_timestamp_skew_seconds":                                     4,
		"postern_timestamp_skew_seconds>30":                                  1,
		"postern_upstream_resends_total":                                     0,
		"postern_loop_handoffs_total{kind=request}":                          0,
		"postern_loop_handoffs_total{kind=slow}":                             0,
		"postern_loop_handoffs_total{kind=large_answer}":                     0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

// TestForwardSpanError: an app's 4xx or 5xx marks the forward (client)
// span as an error, as OpenTelemetry's HTTP conventions ask; a 2xx does not.
func TestForwardSpanError(t *testing.T) {
	for _, status := range []int{204, 404, 503} {
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		rg := newRig(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }, func(o *Options) { o.Tracer = tp.Tracer("test") })
		rg.post(t, "/hook", signed(testKey, "msg_fse", testNow, validBody), validBody)
		var fwd sdktrace.ReadOnlySpan
		for _, s := range sr.Ended() {
			if s.Name() == "forward" {
				fwd = s
			}
		}
		if fwd == nil {
			t.Fatalf("app status %d: no forward span", status)
		}
		wantErr := status >= 400
		if got := fwd.Status().Code == codes.Error; got != wantErr {
			t.Errorf("app status %d: forward span status %v, want error=%v", status, fwd.Status(), wantErr)
		}
	}
}

// TestRefusalsCounted: requests the HTTP server refuses before the handler
// sees them are in postern_requests_total too.
func TestRefusalsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	rg := newRig(t, nil, func(o *Options) { o.Metrics = reg })
	sendRaw(t, rg.proxy.URL, "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}")
	sendRaw(t, rg.proxy.URL, "POST /hook HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("b", MaxHeaderBytes)+"\r\n\r\n")
	sendRaw(t, rg.proxy.URL, "POST /hook HTTP/2.0\r\nHost: x\r\n\r\n")
	got := gather(t, reg, nil)
	for k, want := range map[string]float64{
		"postern_requests_total{outcome=rejected,reason=malformed_request}": 2,
		"postern_requests_total{outcome=rejected,reason=headers_too_large}": 1,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}

// TestInFlightGauge: postern_requests_in_flight counts the request the app
// is holding, and drops back when it answers.
func TestInFlightGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	held, release := make(chan struct{}), make(chan struct{})
	rg := newRig(t, func(w http.ResponseWriter, r *http.Request) {
		close(held)
		<-release
		w.WriteHeader(http.StatusNoContent)
	}, func(o *Options) { o.Metrics = reg })
	inFlight := func() float64 {
		v, ok := gather(t, reg, nil)["postern_requests_in_flight"]
		if !ok {
			t.Fatal("no postern_requests_in_flight")
		}
		return v
	}
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, rg.proxy.URL+"/", strings.NewReader(validBody))
		req.Header = signed(testKey, "msg_if", testNow, validBody)
		resp, err := rg.proxy.Client().Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-held
	if got := inFlight(); got != 1 {
		t.Errorf("in flight while the app holds the request = %v, want 1", got)
	}
	close(release)
	if status := <-done; status != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", status)
	}
	if got := inFlight(); got != 0 {
		t.Errorf("in flight after the answer = %v, want 0", got)
	}
}

func TestStatusClass(t *testing.T) {
	for status, want := range map[int]string{99: "other", 100: "1xx", 204: "2xx", 302: "3xx", 410: "4xx", 599: "5xx", 600: "other"} {
		if got := statusClass(status); got != want {
			t.Errorf("statusClass(%d) = %q, want %q", status, got, want)
		}
	}
}
