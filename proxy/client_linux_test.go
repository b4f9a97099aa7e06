package proxy

import (
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClientCutDuringDial: Cut ends a dial still in progress (a connection
// is in the set Cut reaches only once connected): to an app whose accept
// queue is full, it waited out the dialer's 2 s timeout, past the 0.5 s a
// drain that timed out waits for the requests it cut off.
func TestClientCutDuringDial(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil { // never accepted from
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	for range 3 { // fill the accept queue: the SYNs after are dropped
		if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
			defer c.Close()
		}
	}
	c := &Client{}
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", strings.NewReader("x"))
		_, err := c.RoundTrip(req)
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond) // the dial is under way
	c.Cut()
	cut := time.Now()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("the request went through an accept queue that was full")
		}
		if took := time.Since(cut); took > cutWait {
			t.Errorf("the dial in progress ended %v after Cut (%v), want within %v", took, err, cutWait)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dial in progress did not end")
	}
}
