// Command upstream is the benchmark's stand-in for the application behind
// postern: it answers every POST with 204 No Content on kept-alive
// connections (or, with -answer-bytes, 200 with a body that long, for
// bench/answers), and GET /stats with counters the benchmark checks.
//
//	upstream -addr 127.0.0.1:18080 [-track-ids] [-answer-bytes N]
//
// Counters: posts (all POSTs), verified (POSTs carrying Postern-Verified:
// true), forged (POSTs whose svix-id or webhook-id starts with "forged_":
// the load check signs nothing with that prefix correctly, so any such
// delivery is a forgery that got through), and, with -track-ids,
// dup_ids (a message id delivered by postern more than once; requests
// reaching it directly or through nginx carry no Postern-Verified header
// and are not tracked).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type stats struct {
	posts, verified, forged, dupIDs atomic.Int64

	trackIDs bool
	answer   []byte // the body of every answer to a POST; none: 204
	mu       sync.Mutex
	seen     map[string]struct{}
}

func (s *stats) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		io.Copy(io.Discard, r.Body)
		s.posts.Add(1)
		verified := r.Header.Get("Postern-Verified") == "true"
		if verified {
			s.verified.Add(1)
		}
		id := r.Header.Get("Svix-Id")
		if id == "" {
			id = r.Header.Get("Webhook-Id")
		}
		if strings.HasPrefix(id, "forged_") {
			s.forged.Add(1)
		}
		if s.trackIDs && verified && id != "" {
			s.mu.Lock()
			if _, dup := s.seen[id]; dup {
				s.dupIDs.Add(1)
			}
			s.seen[id] = struct{}{}
			s.mu.Unlock()
		}
		if len(s.answer) == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(s.answer)))
		w.Write(s.answer)
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/stats" {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int64{
			"posts":    s.posts.Load(),
			"verified": s.verified.Load(),
			"forged":   s.forged.Load(),
			"dup_ids":  s.dupIDs.Load(),
		})
		return
	}
	w.Header().Set("Allow", "POST")
	w.WriteHeader(http.StatusMethodNotAllowed)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	trackIDs := flag.Bool("track-ids", false, "remember message ids and count ids delivered twice (costs CPU and memory; for the load check)")
	answerBytes := flag.Int("answer-bytes", 0, "answer each POST with 200 and a body of this many bytes (0: 204 with none)")
	flag.Parse()
	if *answerBytes < 0 {
		fmt.Fprintln(os.Stderr, "upstream: -answer-bytes must not be negative")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
	s := &stats{trackIDs: *trackIDs, seen: make(map[string]struct{}), answer: bytes.Repeat([]byte("a"), *answerBytes)}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	fmt.Println("upstream listening on", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}
