// Command goproxy is the benchmark's bare Go reverse proxy: what a user
// would write in front of their app instead of postern, with the standard
// library only and the usual tuning, and nothing else: no signature check,
// no JSON or schema validation, no dedupe, no access log, no metrics.
//
//	goproxy -listen 127.0.0.1:18081 -upstream http://127.0.0.1:18080
//
// httputil.ReverseProxy with Rewrite + SetURL (not the deprecated
// Director), a clone of http.DefaultTransport tuned for one local upstream
// (up to 512 idle keep-alive connections, 4 s idle timeout, no proxy from
// the environment, no transparent gzip), a BufferPool so that copying a
// response body does not allocate 32 KiB each time, and a net/http server
// with timeouts. Like nginx's proxy_pass it sets no X-Forwarded-* headers.
// Errors reaching the upstream are answered 502 and logged to stderr
// (ReverseProxy's default); nothing is logged per request.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"
)

// bufferPool implements httputil.BufferPool with 32 KiB buffers, the size
// ReverseProxy would otherwise allocate per response it copies.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any {
		b := make([]byte, 32<<10)
		return &b
	}}}
}

func (bp *bufferPool) Get() []byte { return *bp.p.Get().(*[]byte) }

func (bp *bufferPool) Put(b []byte) {
	if cap(b) < 32<<10 {
		return
	}
	b = b[:32<<10]
	bp.p.Put(&b)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:18080", "the app's base URL")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil || target.Scheme == "" || target.Host == "" {
		fmt.Fprintf(os.Stderr, "goproxy: -upstream must be an absolute URL, got %q\n", *upstream)
		os.Exit(2)
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // no HTTP_PROXY from the environment for a local app
	tr.MaxIdleConns = 512
	tr.MaxIdleConnsPerHost = 512 // the default, 2, would redial under load
	tr.IdleConnTimeout = 4 * time.Second
	tr.DisableCompression = true // pass bodies through as they are

	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
		},
		Transport:  tr,
		BufferPool: newBufferPool(),
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goproxy:", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler:           rp,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	fmt.Println("goproxy listening on", ln.Addr(), "forwarding to", target)
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "goproxy:", err)
		os.Exit(1)
	}
}
