// Command webhookcheck drives a running postern from the outside, as .ci/deploy
// does with the container image: it plays the app on loopback, waits until
// postern is ready, then sends a webhook signed by `postern sign` and a few
// forgeries, and checks what the sender got and what the app received.
//
//	webhookcheck -ports
//	    prints three free loopback ports (listener, admin, app)
//	webhookcheck -proxy URL -admin URL -app ADDR -headers FILE -body FILE
//	    runs the checks; exits 1 with the reasons if any fails
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "webhookcheck:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("webhookcheck", flag.ContinueOnError)
	ports := fs.Bool("ports", false, "print three free loopback ports and exit")
	proxyURL := fs.String("proxy", "", "postern's listener, e.g. http://127.0.0.1:18090/hooks")
	adminURL := fs.String("admin", "", "postern's admin listener, e.g. http://127.0.0.1:18091")
	appAddr := fs.String("app", "", "address the app listens on, e.g. 127.0.0.1:18080")
	headersFile := fs.String("headers", "", "output of postern sign for -body")
	bodyFile := fs.String("body", "", "the signed webhook body")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for postern's /readyz")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ports {
		return freePorts(stdout, 3)
	}
	if *proxyURL == "" || *adminURL == "" || *appAddr == "" || *headersFile == "" || *bodyFile == "" {
		return errors.New("-proxy, -admin, -app, -headers and -body are required")
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	signed, err := readHeaders(*headersFile)
	if err != nil {
		return err
	}

	app := &recorder{}
	ln, err := net.Listen("tcp", *appAddr)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{}}
	if err := waitReady(client, *adminURL+"/readyz", *wait); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "postern is ready (/readyz 200, so it reached the app)")

	var failures []string
	check := func(name string, ok bool, format string, a ...any) {
		if ok {
			fmt.Fprintf(stdout, "ok   %s\n", name)
			return
		}
		failures = append(failures, name+": "+fmt.Sprintf(format, a...))
		fmt.Fprintf(stdout, "FAIL %s: %s\n", name, fmt.Sprintf(format, a...))
	}

	// 1. The signed webhook reaches the app byte for byte, marked verified.
	status, answer, err := send(client, *proxyURL, signed, body)
	if err != nil {
		return err
	}
	got := app.all()
	check("signed webhook answered 200", status == http.StatusOK, "status %d, body %s", status, answer)
	check("app received the signed webhook once", len(got) == 1, "app received %d requests", len(got))
	if len(got) == 1 {
		r := got[0]
		check("app got the body unchanged", bytes.Equal(r.body, body), "body %q, want %q", r.body, body)
		check("app got Postern-Verified: true", r.header.Get("Postern-Verified") == "true", "headers %v", r.header)
		check("app got the message id", r.header.Get("Postern-Message-Id") == signed.Get("svix-id") || r.header.Get("Postern-Message-Id") == signed.Get("webhook-id"),
			"Postern-Message-Id %q", r.header.Get("Postern-Message-Id"))
	}

	// 2. A forged signature, 3. a body changed after signing: 401, nothing forwarded.
	forged := signed.Clone()
	for _, name := range []string{"svix-signature", "webhook-signature"} {
		if v := forged.Get(name); v != "" {
			forged.Set(name, "v1,"+strings.Repeat("A", 43)+"=")
		}
	}
	tampered := bytes.Replace(body, []byte(`"CREATED"`), []byte(`"FAILED" `), 1)
	if bytes.Equal(tampered, body) {
		tampered = append(append([]byte{}, body...), ' ')
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		body   []byte
	}{
		{"forged signature", forged, body},
		{"tampered body", signed, tampered},
	} {
		before := len(app.all())
		status, answer, err := send(client, *proxyURL, tc.header, tc.body)
		if err != nil {
			return err
		}
		var problem struct {
			Reason string `json:"reason"`
		}
		json.Unmarshal(answer, &problem)
		check(tc.name+" answered 401 signature_mismatch", status == http.StatusUnauthorized && problem.Reason == "signature_mismatch",
			"status %d, body %s", status, answer)
		check(tc.name+" not forwarded", len(app.all()) == before, "app received %d more requests", len(app.all())-before)
	}

	// 4. The sender's retry of a delivered message: 200, not forwarded again.
	before := len(app.all())
	status, answer, err = send(client, *proxyURL, signed, body)
	if err != nil {
		return err
	}
	check("redelivery answered 200", status == http.StatusOK, "status %d, body %s", status, answer)
	check("redelivery not forwarded", len(app.all()) == before, "app received %d more requests", len(app.all())-before)

	if len(failures) > 0 {
		return fmt.Errorf("%d checks failed:\n  %s", len(failures), strings.Join(failures, "\n  "))
	}
	fmt.Fprintln(stdout, "all webhook checks passed")
	return nil
}

// freePorts prints n distinct free loopback ports, space separated.
func freePorts(w io.Writer, n int) error {
	var ports []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		ports = append(ports, fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	}
	_, err := fmt.Fprintln(w, strings.Join(ports, " "))
	return err
}

// readHeaders parses `postern sign` output: one "Name: value" per line.
func readHeaders(path string) (http.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := http.Header{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not a header line", path, line)
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if h.Get("svix-signature") == "" && h.Get("webhook-signature") == "" {
		return nil, fmt.Errorf("%s: no signature header", path)
	}
	return h, nil
}

func waitReady(client *http.Client, url string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %s", url, limit, last)
		case <-tick.C:
		}
	}
}

func send(client *http.Client, url string, h http.Header, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header = h.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, answer, err
}

// recorder is the app: it answers 200 to every request and remembers them.
type recorder struct {
	mu   sync.Mutex
	reqs []received
}

type received struct {
	header http.Header
	body   []byte
}

func (a *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.reqs = append(a.reqs, received{header: r.Header.Clone(), body: body})
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"received":true}`)
}

func (a *recorder) all() []received {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]received(nil), a.reqs...)
}
