package proxy

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/postern-dev/postern/proxy/h1"
)

// Server timeouts. A sender gives up after 15s, so reading the request
// (ReadTimeout) plus the app's answer (the upstream timeout, at most 10s by
// default) must fit inside that.
const (
	ReadHeaderTimeout = 3 * time.Second
	ReadTimeout       = 4 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 64 << 10
)

// NewListener returns the HTTP/1.1 server of the webhook listener, with
// postern's timeouts and header limit, answering requests it cannot read
// with a problem body (reason malformed_request or headers_too_large).
func NewListener(h http.Handler, upstreamTimeout time.Duration, errLog *log.Logger) *h1.Server {
	errorBody := requestErrorBody
	if ph, ok := h.(*Handler); ok {
		// Refused before the handler sees them (no audit record: there
		// is no message to name), but counted with every other request.
		errorBody = func(status int, detail string) (string, []byte) {
			ph.metrics.add(ph.metrics.requests, OutcomeRejected, refusalReason(status))
			return requestErrorBody(status, detail)
		}
	}
	return &h1.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      ReadTimeout + upstreamTimeout + time.Second,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          errLog,
		ErrorBody:         errorBody,
	}
}

// listener is an HTTP engine serving the webhook listener: the goroutine
// engine (*h1.Server) or the event loop (*Loop).
type listener interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// startServing has srv serve ln and returns the function that serves
// until srv stops. A Loop's loops are running when startServing returns,
// before the caller says it listens; other listeners start serving when
// the function runs.
func startServing(srv listener, ln net.Listener) (serve func() error, err error) {
	if l, ok := srv.(*Loop); ok {
		if err := l.start(ln); err != nil {
			return nil, err
		}
		return l.wait, nil
	}
	return func() error { return srv.Serve(ln) }, nil
}

// Engines, the values of Server.Engine.
const (
	EngineLoop      = "loop"
	EngineGoroutine = "goroutine"
)

// Server runs the webhook listener and the admin listener, and drains on
// shutdown.
type Server struct {
	// Handler is the webhook handler.
	Handler *Handler
	// Admin serves /healthz, /readyz and /metrics.
	Admin http.Handler
	// ListenAddr and AdminAddr are host:port to listen on.
	ListenAddr, AdminAddr string
	// UpstreamTimeout sizes the write timeout.
	UpstreamTimeout time.Duration
	// ShutdownTimeout bounds the drain after ctx ends.
	ShutdownTimeout time.Duration
	// DrainGrace is how long new requests are answered 503 shutting_down
	// before the listener closes (at most half of ShutdownTimeout).
	DrainGrace time.Duration
	// Engine is EngineLoop (the default, where LoopSupported) or
	// EngineGoroutine.
	Engine string
	// Log receives lifecycle messages.
	Log *slog.Logger
	// OnListen, if set, is called with the bound addresses once both
	// listeners are open.
	OnListen func(listen, admin net.Addr)
}

// Run listens and serves until ctx ends, then stops accepting, answers
// requests that still arrive with 503 shutting_down, and waits up to
// ShutdownTimeout for requests in flight. It returns nil after a clean drain.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.ListenAddr)
	if err != nil {
		return fmt.Errorf("POSTERN_LISTEN_ADDR: %w", err)
	}
	aln, err := net.Listen("tcp", s.AdminAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("POSTERN_ADMIN_ADDR: %w", err)
	}
	errLog := slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn)
	fallback := NewListener(s.Handler, s.UpstreamTimeout, errLog)
	var main listener = fallback
	engine := EngineGoroutine
	switch {
	case s.Engine == EngineGoroutine:
	case LoopSupported(s.Handler):
		main, engine = &Loop{Handler: s.Handler, Fallback: fallback}, EngineLoop
	default:
		s.Log.Info("the event loop serves only a plain-HTTP app on loopback, on Linux; using the goroutine engine")
	}
	admin := &http.Server{
		Handler:           s.Admin,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          errLog,
	}
	errc := make(chan error, 2)
	serve, err := startServing(main, ln)
	if err != nil {
		aln.Close()
		return err
	}
	go func() { errc <- serve() }()
	go func() { errc <- admin.Serve(aln) }()
	s.Log.Info("serving", "listen_addr", ln.Addr().String(), "admin_addr", aln.Addr().String(), "engine", engine)
	if s.OnListen != nil {
		s.OnListen(ln.Addr(), aln.Addr())
	}

	select {
	case err := <-errc:
		main.Close()
		admin.Close()
		return err
	case <-ctx.Done():
	}
	// Drain: for DrainGrace (bounded by half the shutdown timeout) keep
	// accepting and answer every new request 503 shutting_down with
	// Connection: close, so senders on kept-alive connections get an answer
	// rather than a closed socket, while /readyz fails and the load balancer
	// stops sending. Then stop accepting, wait for requests in flight, and
	// close the admin listener last, so metrics of the drain can be scraped.
	s.Log.Info("draining", "grace", s.drainGrace().String(), "timeout", s.ShutdownTimeout.String())
	s.Handler.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	select {
	case <-time.After(s.drainGrace()):
	case err := <-errc:
		main.Close()
		admin.Close()
		return err
	}
	err = main.Shutdown(sctx)
	admin.Shutdown(sctx)
	admin.Close()
	if errors.Is(err, context.DeadlineExceeded) && s.Handler.metrics.inFlight.Load() == 0 {
		// Only the shutting down itself outlasted a timeout too short for
		// it (a millisecond): nothing was in flight.
		main.Close()
		err = nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		main.Close()
		s.Handler.cut(cutWait)
		s.Log.Error("drain timed out with requests still in flight; their senders' connections are closed", "timeout", s.ShutdownTimeout.String())
		return errors.New("drain timed out with requests still in flight")
	}
	s.Log.Info("stopped")
	return err
}

// cutWait bounds the wait, after the drain timed out, for the requests cut
// off to end and write their audit records. It fits in the whole second
// the chart's terminationGracePeriodSeconds keeps beyond the drain and the
// trace flush.
const cutWait = 500 * time.Millisecond

// cut ends the exchanges with the app still in progress when the drain
// timed out (the event loop's own end with its Close; the goroutine
// engine's handlers would wait for the app past postern's exit) and waits
// up to wait for the requests in flight to end.
func (h *Handler) cut(wait time.Duration) {
	h.fwd.client.Cut()
	for end := time.Now().Add(wait); h.metrics.inFlight.Load() > 0 && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Server) drainGrace() time.Duration {
	return min(s.DrainGrace, s.ShutdownTimeout/2)
}
