package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// receiver is an OTLP trace receiver on loopback that keeps the spans it gets.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string][]string // trace id -> "span id name kind" entries
}

func (rc *receiver) add(req *collectortrace.ExportTraceServiceRequest) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				id := hex.EncodeToString(s.TraceId)
				rc.spans[id] = append(rc.spans[id], hex.EncodeToString(s.SpanId)+" "+s.Name+" "+service)
			}
		}
	}
}

func (rc *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	rc.add(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	rc.add(&req)
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// TestTraceExport checks, for OTLP over HTTP/protobuf and gRPC, that the
// trace id the app received in traceparent is the one exported, and that
// the spans of the last request are flushed on shutdown, also when a
// request before it, in the same batch, carried bytes that are not UTF-8
// (which OTLP's protobuf refuses, failing the whole batch).
func TestTraceExport(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			rc := &receiver{spans: map[string][]string{}}
			var endpoint string
			if protocol == "grpc" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				srv := grpc.NewServer()
				collectortrace.RegisterTraceServiceServer(srv, rc)
				go srv.Serve(ln)
				defer srv.Stop()
				endpoint = "http://" + ln.Addr().String()
			} else {
				srv := httptest.NewServer(rc)
				defer srv.Close()
				endpoint = srv.URL
			}
			var mu sync.Mutex
			var traceparent string
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				traceparent = r.Header.Get("Traceparent")
				mu.Unlock()
			}))
			defer app.Close()
			p := start(t, testEnv(app.URL,
				"OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint,
				"OTEL_EXPORTER_OTLP_PROTOCOL="+protocol,
				"OTEL_SERVICE_NAME=postern-test",
			))
			conn, err := net.Dial("tcp", p.listen)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, "GET /%FF\xfe HTTP/1.1\r\nHost: x\r\nUser-Agent: \xff\r\nConnection: close\r\n\r\n")
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.ReadAll(conn) // the 405
			conn.Close()
			if status := p.postSigned(t); status != 200 {
				t.Fatalf("status %d, want 200", status)
			}
			p.cancel() // SIGTERM: the batch exporter must flush before run returns
			if err := <-p.done; err != nil {
				t.Fatalf("run: %v", err)
			}

			mu.Lock()
			parts := strings.Split(traceparent, "-")
			mu.Unlock()
			if len(parts) != 4 {
				t.Fatalf("app got traceparent %q", traceparent)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			spans := rc.spans[parts[1]]
			if len(spans) != 5 {
				t.Fatalf("exported spans of trace %s: %q, want 5 (POST, verify, dedupe, validate, forward); all traces: %v", parts[1], spans, rc.spans)
			}
			want := parts[2] + " forward postern-test"
			found := false
			for _, s := range spans {
				found = found || s == want
			}
			if !found {
				t.Errorf("exported spans %q lack %q (the forward span named in traceparent)", spans, want)
			}
			records := p.audit()
			if len(records) != 2 {
				t.Fatalf("%d audit records, want 2 (the 405, the webhook)", len(records))
			}
			if r := records[1]; r["trace_id"] != parts[1] {
				t.Errorf("webhook's audit trace_id %v, want %s", r["trace_id"], parts[1])
			}
			if len(rc.spans) != 2 {
				t.Errorf("exported traces %v, want 2 (the 405's, the webhook's)", rc.spans)
			}
		})
	}
}

// TestTelemetryErrorsLogged: an export the collector refuses is reported
// in postern's JSON log, not as the SDK's plain line on stderr.
func TestTelemetryErrorsLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there: every export fails
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer app.Close()
	p := start(t, testEnv(app.URL,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_TIMEOUT=200",
		"OTEL_BSP_SCHEDULE_DELAY=50",
	))
	p.postSigned(t)
	deadline := time.Now().Add(20 * time.Second) // the exporter retries for about 5 s
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, m := range p.lines {
			if m["msg"] == "telemetry error" && m["level"] == "WARN" && m["error"] != "" {
				p.mu.Unlock()
				return
			}
		}
		p.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("no \"telemetry error\" line in the JSON log after a failed export")
}

// TestTelemetryFlushFailureExit: a collector that takes connections and
// never answers makes the last flush of spans fail at exit; that is logged,
// and a clean drain still exits 0 (exit 1 means the drain timed out).
func TestTelemetryFlushFailureExit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn // accepted, never read nor answered
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer app.Close()
	p := start(t, testEnv(app.URL,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+ln.Addr().String(),
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_BSP_SCHEDULE_DELAY=600000", // spans wait for the flush at exit
	))
	if status := p.postSigned(t); status != http.StatusOK {
		t.Fatalf("got %d, want the app's 200", status)
	}
	p.cancel()
	p.wait(t, 20*time.Second)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.lines {
		if m["msg"] == "telemetry error" && strings.Contains(fmt.Sprint(m["error"]), "flushing traces at exit") {
			return
		}
	}
	t.Error("no \"telemetry error\" line about the flush at exit in the JSON log")
}
