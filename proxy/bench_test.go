package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postern-dev/postern/proxy/schema"
	"github.com/postern-dev/postern/proxy/strictjson"
)

// benchBody is a 1 KiB REFERRAL_CREATED event.
var benchBody = func() string {
	pad := strings.Repeat("x", 1024-len(validBody)-len(`,"note":""`))
	return strings.Replace(validBody, `"status":"CREATED"}`, `"status":"CREATED","note":"`+pad+`"}`, 1)
}()

// BenchmarkHandler is the whole request path in process: verify, dedupe
// (distinct ids), strict JSON, schema, forward to a real upstream on
// loopback, audit log to io.Discard.
func BenchmarkHandler(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer upstream.Close()
	rg := newRig(b, nil, func(o *Options) {
		o.Upstream.Host = strings.TrimPrefix(upstream.URL, "http://")
		o.Now = time.Now
	})
	body := []byte(benchBody)
	now := time.Now()
	headers := make([]http.Header, b.N)
	for i := range headers {
		headers[i] = signed(testKey, "msg_"+strconv.Itoa(i), now, benchBody)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
		req.Header = headers[i]
		rr := httptest.NewRecorder()
		rg.handler.ServeHTTP(rr, req)
		if rr.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", rr.Code, rr.Body)
		}
	}
}

// BenchmarkValidate is strict JSON parsing, event type lookup and schema
// validation of a 1 KiB body.
func BenchmarkValidate(b *testing.B) {
	set, _ := schema.Builtin()
	ptr, _ := schema.ParsePointer("/eventType")
	var doc strictjson.Doc
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		if err := doc.ParseString(benchBody); err != nil {
			b.Fatal(err)
		}
		et, err := ptr.EventType(&doc)
		if err != nil {
			b.Fatal(err)
		}
		if _, known, err := set.Validate(et, &doc); !known || err != nil {
			b.Fatal(known, err)
		}
	}
}

// BenchmarkDedupe is one claim and one acknowledgement of a new id, with the
// store at its bound so every acknowledgement evicts the oldest.
func BenchmarkDedupe(b *testing.B) {
	d := newDedupe(time.Hour, 10000)
	now := time.Now()
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprint("msg_", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, k := d.begin(ids[i], now)
		if c != claimNew {
			b.Fatal("not new")
		}
		d.finish(k, true, now)
	}
}

// BenchmarkForwarders compares ways of sending one 1 KiB POST to an app on
// loopback and reading its 204: postern's Client, a tuned http.Transport,
// and httputil.ReverseProxy with Rewrite and a buffer pool (the baseline).
func BenchmarkForwarders(b *testing.B) {
	target := noContentApp(b)
	body := []byte(benchBody)
	tuned := &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 4 * time.Second, DisableCompression: true}
	defer tuned.CloseIdleConnections()
	client := &Client{}
	defer client.CloseIdleConnections()
	roundTrip := func(rt http.RoundTripper) func(b *testing.B) {
		return func(b *testing.B) { postInParallel(b, rt, target.String()+"/hook", body, nil) }
	}
	b.Run("Client", roundTrip(client))
	b.Run("Transport", roundTrip(tuned))
	b.Run("ReverseProxy", func(b *testing.B) {
		rp := &httputil.ReverseProxy{
			Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
			Transport:  tuned,
			BufferPool: bufferPool{},
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
				rr := httptest.NewRecorder()
				rp.ServeHTTP(rr, req)
				if rr.Code != http.StatusNoContent {
					b.Fatalf("status %d", rr.Code)
				}
			}
		})
	})
}

type bufferPool struct{}

var pool = sync.Pool{New: func() any { return make([]byte, 32<<10) }}

func (bufferPool) Get() []byte  { return pool.Get().([]byte) }
func (bufferPool) Put(b []byte) { pool.Put(b) }

// BenchmarkListeners compares the webhook listener's server (NewListener,
// proxy/h1) with net/http's Server configured the same way, each serving a
// handler that reads the 1 KiB body and answers 204, reached over loopback
// by postern's Client from parallel goroutines.
func BenchmarkListeners(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	body := []byte(benchBody)
	serve := func(b *testing.B, serve func(net.Listener) error, stop func()) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go serve(ln)
		defer stop()
		client := &Client{}
		defer client.CloseIdleConnections()
		b.SetBytes(int64(len(body)))
		postInParallel(b, client, "http://"+ln.Addr().String()+"/hook", body, nil)
	}
	b.Run("h1", func(b *testing.B) {
		srv := NewListener(handler, 10*time.Second, nil)
		serve(b, srv.Serve, func() { srv.Close() })
	})
	b.Run("net-http", func(b *testing.B) {
		srv := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: ReadHeaderTimeout,
			ReadTimeout:       ReadTimeout,
			WriteTimeout:      ReadTimeout + 11*time.Second,
			IdleTimeout:       IdleTimeout,
			MaxHeaderBytes:    MaxHeaderBytes,
		}
		serve(b, srv.Serve, func() { srv.Close() })
	})
}

// postInParallel POSTs body to target through rt from parallel goroutines
// and fails unless every answer is 204. Each request's header is header(),
// or only a Content-Type when header is nil.
func postInParallel(b *testing.B, rt http.RoundTripper, target string, body []byte, header func() http.Header) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
			if header != nil {
				req.Header = header()
			} else {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

// BenchmarkExchange is the handler's forwarding step alone, as
// BenchmarkForwarders measures its alternatives: the request to the app
// written straight from the sender's (outbound), the app's 204 read by
// respHead, from parallel goroutines over loopback.
func BenchmarkExchange(b *testing.B) {
	target := noContentApp(b)
	fw := &forwarder{target: target, client: &Client{}, timeout: 10 * time.Second}
	defer fw.client.CloseIdleConnections()
	body := []byte(benchBody)
	sig := signed(testKey, "msg_bench", time.Now(), benchBody)
	v := verifiedHeaders{names: [3]string{"Svix-Id", "Svix-Timestamp", "Svix-Signature"}, id: sig.Get("Svix-Id"),
		timestamp: sig.Get("Svix-Timestamp"), signature: sig.Get("Svix-Signature"), eventType: "REFERRAL_CREATED"}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.RunParallel(func(pb *testing.PB) {
		in := httptest.NewRequest(http.MethodPost, "/hook", nil)
		in.Header = sig // only read
		for pb.Next() {
			o := outbound{f: fw, in: in, body: body, verified: v}
			o.prepare()
			ur, perr := fw.send(in.Context(), &o, time.Now())
			if perr != nil || ur.status != http.StatusNoContent {
				b.Fatalf("got %v %v, want 204", ur, perr)
			}
		}
	})
}

// noContentApp starts an app on loopback that reads each body and answers
// 204, for the life of the test or benchmark, and returns its URL.
func noContentApp(tb testing.TB) *url.URL {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	return target
}

// BenchmarkOutboundWrite: writing the request to the app (request line,
// the sender's headers by the forwarding rules, postern's, the body) into a
// buffer, without the network.
func BenchmarkOutboundWrite(b *testing.B) {
	target := noContentApp(b)
	fw := &forwarder{target: target, client: &Client{}, timeout: 10 * time.Second}
	body := []byte(benchBody)
	sig := signed(testKey, "msg_bench", time.Now(), benchBody)
	sig.Set("User-Agent", "Svix-Webhooks/1.44")
	v := verifiedHeaders{names: [3]string{"Svix-Id", "Svix-Timestamp", "Svix-Signature"}, id: sig.Get("Svix-Id"),
		timestamp: sig.Get("Svix-Timestamp"), signature: sig.Get("Svix-Signature"), eventType: "REFERRAL_CREATED"}
	in := httptest.NewRequest(http.MethodPost, "/hook", nil)
	in.Header = sig
	w := bufio.NewWriterSize(io.Discard, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		o := outbound{f: fw, in: in, body: body, verified: v}
		o.prepare()
		if err := o.write(w); err != nil {
			b.Fatal(err)
		}
	}
}

// discardWriter is a ResponseWriter that keeps its header map across
// requests, cleared each time, as proxy/h1's does.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkWriteResponse passes the app's answer on: the Go app's 204
// (only Date) and a 200 with a few headers.
func BenchmarkWriteResponse(b *testing.B) {
	for _, bm := range []struct{ name, head string }{
		{"204", "HTTP/1.1 204 No Content\r\nDate: Thu, 03 Dec 2026 00:00:00 GMT\r\n\r\n"},
		{"200", "HTTP/1.1 200 OK\r\nDate: Thu, 03 Dec 2026 00:00:00 GMT\r\nContent-Type: application/json\r\nX-Request-Id: abc\r\nContent-Length: 2\r\n\r\n"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			var hd respHead
			if err := hd.read(bufio.NewReader(strings.NewReader(bm.head))); err != nil {
				b.Fatal(err)
			}
			ur := &upstreamResponse{status: hd.status}
			hd.header(&ur.header, 0)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				if err, _ := writeResponse(w, ur); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSyscall is the unit for the syscall counts per request that
// bench/run reports: what one system call that does no work (getppid)
// costs on this machine, entry and exit alone. On a virtual machine it can
// be far more than on bare metal.
func BenchmarkSyscall(b *testing.B) {
	for b.Loop() {
		syscall.Getppid()
	}
}
