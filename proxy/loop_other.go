//go:build !linux

package proxy

import (
	"context"
	"errors"
	"net"

	"github.com/postern-dev/postern/proxy/h1"
)

// Loop is the event-loop listener, which exists on Linux only; elsewhere
// LoopSupported is false and Serve fails.
type Loop struct {
	Handler  *Handler
	Fallback *h1.Server
	Workers  int
}

// LoopSupported reports whether the event loop can serve h: never here.
func LoopSupported(h *Handler) bool { return false }

// Serve closes ln and fails: there is no event loop here.
func (l *Loop) Serve(ln net.Listener) error { return l.start(ln) }

func (l *Loop) start(ln net.Listener) error {
	ln.Close()
	return errors.New("proxy: the event loop needs Linux")
}

func (l *Loop) wait() error { return nil }

// Shutdown shuts Fallback down.
func (l *Loop) Shutdown(ctx context.Context) error { return l.Fallback.Shutdown(ctx) }

// Close closes Fallback.
func (l *Loop) Close() error { return l.Fallback.Close() }
