//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/postern-dev/postern/proxy/jsonlog"
	"github.com/postern-dev/postern/proxy/schema"
	"github.com/postern-dev/postern/proxy/signature"
	"github.com/postern-dev/postern/proxy/strictjson"
	"github.com/prometheus/client_golang/prometheus"
)

// checker runs, with -checks, the checks postern runs on each request, with
// postern's own packages, on the loop's thread: the signature headers, the
// timestamp window and the HMAC, strict JSON, the event type and the
// schema, three duration histograms and a counter, the forwarded request's
// headers (hop-by-hop ones dropped, X-Forwarded-For and the Postern-* ones
// added) and an audit record written in batches. It has no dedupe store
// (postern's is not exported), and an answer is relayed as the app sent
// it. A refused request gets its status with no body and is not forwarded.
// It measures what postern's checks would cost on an event loop, beside
// the engine that runs them in a goroutine per connection.
type checker struct {
	verifier  *signature.Verifier
	schemas   *schema.Set
	eventType schema.Pointer
	doc       strictjson.Doc
	header    http.Header
	values    []string          // the slab header's values are slices of
	names     map[string]string // canonical forms of names that are not
	out       []byte            // the request being written to the app

	verify, validate, forward prometheus.Histogram
	// requests_total{outcome}, looked up once per outcome as postern's
	// labelled counters are.
	forwarded, rejected prometheus.Counter

	audit     *jsonlog.Handler
	auditBuf  *bufio.Writer
	lastFlush time.Time
	attrs     []slog.Attr
}

func newChecker(secret, auditPath string) *checker {
	keys, err := signature.ParseSecrets([]string{secret})
	check(err)
	set, err := schema.Builtin()
	check(err)
	ptr, err := schema.ParsePointer("/eventType")
	check(err)
	f, err := os.Create(auditPath)
	check(err)
	reg := prometheus.NewRegistry()
	hist := func(name string) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Buckets: prometheus.DefBuckets})
		reg.MustRegister(h)
		return h
	}
	ck := &checker{
		verifier: signature.NewVerifier(keys), schemas: set, eventType: ptr,
		header: make(http.Header, 16), names: make(map[string]string),
		verify: hist("verify_seconds"), validate: hist("validate_seconds"), forward: hist("forward_seconds"),
		auditBuf: bufio.NewWriterSize(f, 64<<10),
		attrs:    make([]slog.Attr, 0, 12),
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total"}, []string{"outcome", "reason"})
	reg.MustRegister(requests)
	ck.forwarded, ck.rejected = requests.WithLabelValues("forwarded", ""), requests.WithLabelValues("rejected", "")
	ck.audit = jsonlog.New(ck.auditBuf, nil)
	return ck
}

// canonical returns the canonical form of the header name k; the forms of
// names that are not canonical are kept, so that each is made once.
func (ck *checker) canonical(k string) string {
	if c, ok := ck.names[k]; ok {
		return c
	}
	c := textproto.CanonicalMIMEHeaderKey(k)
	if c != k && len(ck.names) < 64 {
		ck.names[strings.Clone(k)] = c
	}
	return c
}

// hopHeaders are not forwarded.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// request checks the complete request req (head and body) that arrived at
// start from remote, and returns what to write to the app, or the status
// to answer with instead.
func (ck *checker) request(req []byte, start time.Time, remote string) (out []byte, status int, msgID, eventType string) {
	end := bytes.Index(req, []byte("\r\n\r\n"))
	body := req[end+4:]
	// One copy of the head, as postern's engine makes: names and values
	// are slices of it, and the values share one reused slab.
	line, fields, _ := strings.Cut(string(req[:end]), "\r\n")
	clear(ck.header)
	vals := ck.values[:0]
	for f := range strings.SplitSeq(fields, "\r\n") {
		name, value, ok := strings.Cut(f, ":")
		if !ok {
			return nil, http.StatusBadRequest, "", ""
		}
		k := ck.canonical(name)
		vals = append(vals, strings.TrimSpace(value))
		v := vals[len(vals)-1:]
		if prev, ok := ck.header[k]; ok {
			v = append(prev[:len(prev):len(prev)], v[0])
		}
		ck.header[k] = v[:len(v):len(v)]
	}
	ck.values = vals

	hdr, err := signature.Extract(ck.header)
	if err != nil {
		return nil, http.StatusBadRequest, "", ""
	}
	msgID = hdr.ID
	if signature.CheckTimestamp(hdr.Time(), start, 5*time.Minute) != nil {
		return nil, http.StatusUnauthorized, msgID, ""
	}
	if _, err := ck.verifier.Verify(body, hdr); err != nil {
		return nil, http.StatusUnauthorized, msgID, ""
	}
	t1 := time.Now()
	ck.verify.Observe(t1.Sub(start).Seconds())

	if err := ck.doc.ParseString(unsafe.String(unsafe.SliceData(body), len(body))); err != nil {
		return nil, http.StatusBadRequest, msgID, ""
	}
	eventType, err = ck.eventType.EventType(&ck.doc)
	if err != nil {
		return nil, http.StatusBadRequest, msgID, ""
	}
	var known bool
	if eventType, known, err = ck.schemas.Validate(eventType, &ck.doc); !known || err != nil {
		return nil, http.StatusUnprocessableEntity, msgID, eventType
	}
	ck.validate.Observe(time.Since(t1).Seconds())

	o := append(ck.out[:0], line...)
	o = append(o, "\r\n"...)
	for k, vs := range ck.header {
		if hopHeaders[k] || k == "Content-Length" || k == "X-Forwarded-For" {
			continue
		}
		for _, v := range vs {
			o = append(o, k...)
			o = append(o, ": "...)
			o = append(o, v...)
			o = append(o, "\r\n"...)
		}
	}
	host := remote[:max(strings.LastIndexByte(remote, ':'), 0)]
	o = append(o, "X-Forwarded-For: "...)
	o = append(o, host...)
	o = append(o, "\r\nPostern-Verified: true\r\nPostern-Event-Type: "...)
	o = append(o, eventType...)
	o = append(o, "\r\nPostern-Message-Id: "...)
	o = append(o, hdr.ID...)
	o = append(o, "\r\nContent-Length: "...)
	o = strconv.AppendInt(o, int64(len(body)), 10)
	o = append(o, "\r\n\r\n"...)
	o = append(o, body...)
	ck.out = o
	return o, 0, msgID, eventType
}

// done counts and audits c's request, which ended with status (and the
// app's status, 0 when it was not forwarded).
func (ck *checker) done(c *conn, status, upstream int) {
	now := time.Now()
	outcome, counter := "forwarded", ck.forwarded
	if upstream == 0 {
		outcome, counter = "rejected", ck.rejected
	} else {
		ck.forward.Observe(now.Sub(c.start).Seconds())
	}
	counter.Inc()
	ck.attrs = append(ck.attrs[:0],
		slog.String("msg_id", c.msgID),
		slog.String("event_type", c.eventType),
		slog.String("outcome", outcome),
		slog.String("reason", ""),
		slog.Int("status", status),
		slog.Int("upstream_status", upstream),
		slog.Int("bytes", c.bytes),
		slog.Float64("duration_ms", float64(now.Sub(c.start).Microseconds())/1000),
		slog.String("remote_addr", c.remote),
	)
	ck.audit.HandleAttrs(context.Background(), now, slog.LevelInfo, "webhook", ck.attrs)
	if now.Sub(ck.lastFlush) >= 100*time.Millisecond {
		ck.auditBuf.Flush()
		ck.lastFlush = now
	}
}
