// Command gen makes the benchmark's signed requests and runs the load
// check's forgery cases. wrk's Lua cannot compute HMAC-SHA256, so the
// signatures are computed here ahead of a run.
//
//	gen batch -secret whsec_... -n 600000 -id-prefix msg_r1_ -out DIR
//	gen forge -secret whsec_... -url http://127.0.0.1:P/webhook -stats http://127.0.0.1:U/stats
//	gen fill -secret whsec_... -url http://127.0.0.1:P/webhook -n 100000 -id-prefix msg_r0_ [-c 64] [-want 204 -want-bytes 0 -tolerate]
//
// batch writes DIR/sigs, n fixed-width (44 byte) base64 HMAC-SHA256 values,
// the i-th signing message id id-prefix+%09d(i), and DIR/meta.lua, the id
// prefix, the timestamp and the 1 KiB body around its id, for bench/load.lua.
// Every request of a batch has its own id, so postern's dedupe never
// answers one without forwarding it.
//
// forge sends one valid delivery, its replay, and forged or invalid ones,
// checks each status against DESIGN.md's table, and checks from the
// upstream's counters that only the valid ones were delivered.
//
// fill sends n valid deliveries with distinct ids (the same bodies and id
// length as a batch), c at a time, and fails unless every one is answered
// 204: bench/run uses it to fill postern's dedupe store before the rounds,
// so that every round measures the state a busy sidecar lives in.
// bench/answers uses it with -want 200 -want-bytes N, against an app that
// answers N bytes, and -tolerate, which counts the other answers by status
// instead of failing.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postern-dev/postern/proxy/signature"
)

// BodySize is the size of every benchmark body.
const BodySize = 1024

// sigWidth is the length of one base64 HMAC-SHA256 value.
const sigWidth = 44

// idDigits is the width of the index part of a message id.
const idDigits = 9

// idMarker stands for the message id in the body template.
const idMarker = "@ID@"

// bodyTemplate is a REFERRAL_CREATED event with the fields a real sender
// adds over time (allowed by the schema), padded to BodySize by note.
const bodyTemplate = `{"eventType":"REFERRAL_CREATED","eventId":"` + idMarker + `",` +
	`"createdAt":"2026-11-26T10:00:00Z","data":{"referralId":"ref_8c41d0e2b7","customer_type":"INDIVIDUAL",` +
	`"status":"CREATED","programId":"prg_spring_2026","campaign":"friends-and-family","channel":"partner-api",` +
	`"referrer":{"customerId":"cus_93f1aa","name":"Jane Q. Example","email":"jane@example.com","tier":"gold","since":"2019-04-01"},` +
	`"referee":{"name":"John Example","email":"john@example.org","country":"DE","language":"de-DE","consent":true},` +
	`"reward":{"amount":2500,"currency":"EUR","points":120,"tax":0.19,"eligible":true},` +
	`"tags":["spring","partner","web","email"],"attempt":1,"source":{"ip":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64)"},` +
	`"note":"`

const bodyEnd = `"}}`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gen batch|forge|fill [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "batch":
		err = batch(os.Args[2:])
	case "forge":
		err = forge(os.Args[2:])
	case "fill":
		err = fill(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (batch, forge, fill)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// body returns the benchmark body for id, exactly BodySize bytes long for
// ids of one length.
func body(id string) ([]byte, error) {
	head := strings.Replace(bodyTemplate, idMarker, id, 1)
	pad := BodySize - len(head) - len(bodyEnd)
	if pad < 0 {
		return nil, fmt.Errorf("id %q too long for a %d byte body", id, BodySize)
	}
	b := make([]byte, 0, BodySize)
	b = append(b, head...)
	for i := range pad {
		b = append(b, "abcdefghijklmnopqrstuvwxyz "[i%27])
	}
	b = append(b, bodyEnd...)
	return b, nil
}

func parseKey(secret string) ([]byte, error) {
	keys, err := signature.ParseSecrets([]string{secret})
	if err != nil {
		return nil, fmt.Errorf("-secret: %w", err)
	}
	return keys[0], nil
}

func batch(args []string) error {
	fs := flag.NewFlagSet("batch", flag.ContinueOnError)
	secret := fs.String("secret", "", "signing secret, whsec_...")
	n := fs.Int("n", 100000, "number of requests")
	prefix := fs.String("id-prefix", "msg_bench_", "message id prefix; ids are prefix + 9 digits")
	ts := fs.Int64("ts", 0, "unix timestamp of every request (default: now)")
	out := fs.String("out", "", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *n <= 0 {
		return errors.New("batch: -out and a positive -n are required")
	}
	key, err := parseKey(*secret)
	if err != nil {
		return err
	}
	if *ts == 0 {
		*ts = time.Now().Unix()
	}
	stamp := strconv.FormatInt(*ts, 10)
	idOf := func(i int) string { return fmt.Sprintf("%s%0*d", *prefix, idDigits, i) }
	sample, err := body(idOf(0))
	if err != nil {
		return err
	}
	idStart := bytes.Index(sample, []byte(idOf(0)))
	pre, post := sample[:idStart], sample[idStart+len(idOf(0)):]

	sigs := make([]byte, *n*sigWidth)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			mac := hmac.New(sha256.New, key)
			var msg, sum []byte
			for i := w; i < *n; i += workers {
				id := idOf(i)
				msg = append(msg[:0], id...)
				msg = append(msg, '.')
				msg = append(msg, stamp...)
				msg = append(msg, '.')
				msg = append(msg, pre...)
				msg = append(msg, id...)
				msg = append(msg, post...)
				mac.Reset()
				mac.Write(msg)
				sum = mac.Sum(sum[:0])
				base64.StdEncoding.Encode(sigs[i*sigWidth:(i+1)*sigWidth], sum)
			}
		})
	}
	wg.Wait()

	// The product's signer is the reference: the first request must carry
	// exactly what `postern sign` would print for it.
	want := signature.Sign(key, idOf(0), time.Unix(*ts, 0), sample)
	if got := "v1," + string(sigs[:sigWidth]); got != want {
		return fmt.Errorf("batch: signature of request 0 is %s, signature.Sign says %s", got, want)
	}

	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "sigs"), sigs, 0o644); err != nil {
		return err
	}
	meta := fmt.Sprintf("return {\n  n = %d,\n  sig_width = %d,\n  id_prefix = [==[%s]==],\n  id_digits = %d,\n  ts = %q,\n  body_pre = [==[%s]==],\n  body_post = [==[%s]==],\n}\n",
		*n, sigWidth, *prefix, idDigits, stamp, pre, post)
	return os.WriteFile(filepath.Join(*out, "meta.lua"), []byte(meta), 0o644)
}

// forgeCase is one request of the load check and the answer the status
// contract requires.
type forgeCase struct {
	name    string
	method  string
	header  http.Header
	body    []byte
	status  int
	reason  string // the problem body's reason, or a substring of a 2xx body
	deliver bool   // the app must receive it
}

func forge(args []string) error {
	fs := flag.NewFlagSet("forge", flag.ContinueOnError)
	secret := fs.String("secret", "", "postern's signing secret, whsec_...")
	url := fs.String("url", "", "postern's webhook URL")
	statsURL := fs.String("stats", "", "the upstream's /stats URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := parseKey(*secret)
	if err != nil {
		return err
	}
	otherKey := bytes.Repeat([]byte{0x5a}, 32)
	now := time.Now()
	tag := strconv.FormatInt(now.UnixNano(), 36)

	signed := func(prefix, id string, k []byte, ts time.Time, b []byte) http.Header {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set(prefix+"-Id", id)
		h.Set(prefix+"-Timestamp", strconv.FormatInt(ts.Unix(), 10))
		h.Set(prefix+"-Signature", signature.Sign(k, id, ts, b))
		return h
	}
	mustBody := func(id string) []byte {
		b, err := body(id)
		if err != nil {
			panic(err)
		}
		return b
	}

	validID := "msg_loadcheck_" + tag
	valid := mustBody(validID)
	hookID := "msg_loadcheck_wh_" + tag
	hookBody := mustBody(hookID)
	f := func(name string) string { return "forged_" + name + "_" + tag }

	tampered := mustBody(f("tampered"))
	tamperedHdr := signed("Svix", f("tampered"), key, now, tampered)
	tampered = bytes.Replace(tampered, []byte(`"amount":2500`), []byte(`"amount":9500`), 1)

	dupHdr := signed("Svix", f("dupsig"), key, now, mustBody(f("dupsig")))
	dupHdr.Add("Svix-Signature", "v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32)))

	spoofHdr := signed("Svix", f("spoof"), otherKey, now, mustBody(f("spoof")))
	spoofHdr.Set("Postern-Verified", "true")
	spoofHdr.Set("Postern-Message-Id", "msg_loadcheck_"+tag)

	badSchema := []byte(`{"eventType":"REFERRAL_CREATED","data":{"referralId":"r1","customer_type":"INDIVIDUAL","status":"BOGUS"}}`)
	notJSON := []byte(`{"eventType":"REFERRAL_CREATED","data":{"referralId":"r1","referralId":"r2","customer_type":"I","status":"CREATED"}}`)

	cases := []forgeCase{
		{name: "valid svix delivery", header: signed("Svix", validID, key, now, valid), body: valid, status: 204, deliver: true},
		{name: "replay of the acknowledged delivery", header: signed("Svix", validID, key, now, valid), body: valid, status: 200, reason: `"duplicate":true`},
		{name: "valid webhook-* delivery", header: signed("Webhook", hookID, key, now, hookBody), body: hookBody, status: 204, deliver: true},
		{name: "signed with another key", header: signed("Svix", f("otherkey"), otherKey, now, mustBody(f("otherkey"))), body: mustBody(f("otherkey")), status: 401, reason: "signature_mismatch"},
		{name: "body changed after signing", header: tamperedHdr, body: tampered, status: 401, reason: "signature_mismatch"},
		{name: "forged Postern-Verified header", header: spoofHdr, body: mustBody(f("spoof")), status: 401, reason: "signature_mismatch"},
		{name: "stale timestamp", header: signed("Svix", f("stale"), key, now.Add(-10*time.Minute), mustBody(f("stale"))), body: mustBody(f("stale")), status: 401, reason: "timestamp_too_old"},
		{name: "future timestamp", header: signed("Svix", f("future"), key, now.Add(10*time.Minute), mustBody(f("future"))), body: mustBody(f("future")), status: 401, reason: "timestamp_too_new"},
		{name: "no signature headers", header: http.Header{"Content-Type": {"application/json"}}, body: valid, status: 400, reason: "missing_headers"},
		{name: "signature header twice", header: dupHdr, body: mustBody(f("dupsig")), status: 400, reason: "malformed_headers"},
		{name: "signed schema violation", header: signed("Svix", f("schema"), key, now, badSchema), body: badSchema, status: 422, reason: "schema_violation"},
		{name: "signed duplicate-key JSON", header: signed("Svix", f("dupkey"), key, now, notJSON), body: notJSON, status: 400, reason: "invalid_json"},
		{name: "GET", method: http.MethodGet, header: signed("Svix", f("get"), key, now, nil), status: 405, reason: "method_not_allowed"},
	}

	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	before, err := upstreamStats(client, *statsURL)
	if err != nil {
		return err
	}
	var failed []string
	wantDelivered := int64(0)
	for _, c := range cases {
		method := c.method
		if method == "" {
			method = http.MethodPost
		}
		req, err := http.NewRequest(method, *url, bytes.NewReader(c.body))
		if err != nil {
			return err
		}
		req.Header = c.header
		resp, err := client.Do(req)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", c.name, err))
			continue
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ok := resp.StatusCode == c.status && (c.reason == "" || bytes.Contains(got, []byte(c.reason)))
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed = append(failed, fmt.Sprintf("%s: got %d %s, want %d %s", c.name, resp.StatusCode, bytes.TrimSpace(got), c.status, c.reason))
		}
		fmt.Printf("  %s %-38s %d %s\n", mark, c.name, resp.StatusCode, c.reason)
		if c.deliver {
			wantDelivered++
		}
	}
	after, err := upstreamStats(client, *statsURL)
	if err != nil {
		return err
	}
	delivered := after["posts"] - before["posts"]
	fmt.Printf("  app received %d of these requests (want %d), forged ids delivered: %d\n", delivered, wantDelivered, after["forged"])
	if delivered != wantDelivered {
		failed = append(failed, fmt.Sprintf("the app received %d requests, want %d", delivered, wantDelivered))
	}
	if after["forged"] != 0 {
		failed = append(failed, fmt.Sprintf("the app received %d forged or invalid deliveries", after["forged"]))
	}
	if len(failed) > 0 {
		return fmt.Errorf("forge: %d checks failed:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return nil
}

func upstreamStats(client *http.Client, url string) (map[string]int64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, fmt.Errorf("upstream stats: %w", err)
	}
	defer resp.Body.Close()
	var s map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("upstream stats: %w", err)
	}
	return s, nil
}

func fill(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ContinueOnError)
	secret := fs.String("secret", "", "postern's signing secret, whsec_...")
	url := fs.String("url", "", "postern's webhook URL")
	n := fs.Int("n", 100000, "number of deliveries")
	conc := fs.Int("c", 64, "deliveries in flight")
	prefix := fs.String("id-prefix", "msg_fill_", "message id prefix; ids are prefix + 9 digits")
	want := fs.Int("want", http.StatusNoContent, "the status every delivery must be answered with")
	wantBytes := fs.Int64("want-bytes", 0, "the length of the body every such answer must have")
	tolerate := fs.Bool("tolerate", false, "count the other answers by status, and fail only for a wrong body or a failed request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *n <= 0 || *conc <= 0 {
		return errors.New("fill: -url, a positive -n and a positive -c are required")
	}
	key, err := parseKey(*secret)
	if err != nil {
		return err
	}
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc, DisableCompression: true},
		Timeout:   10 * time.Second,
	}
	start := time.Now()
	var next, bad atomic.Int64
	var mu sync.Mutex
	var first error
	others := map[int]int{} // tolerated answers, by status
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				id := fmt.Sprintf("%s%0*d", *prefix, idDigits, i)
				err := func() error {
					b, err := body(id)
					if err != nil {
						return err
					}
					req, err := http.NewRequest(http.MethodPost, *url, bytes.NewReader(b))
					if err != nil {
						return err
					}
					now := time.Now()
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Svix-Id", id)
					req.Header.Set("Svix-Timestamp", strconv.FormatInt(now.Unix(), 10))
					req.Header.Set("Svix-Signature", signature.Sign(key, id, now, b))
					resp, err := client.Do(req)
					if err != nil {
						return err
					}
					got, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case err != nil:
						return fmt.Errorf("%s: %d, reading the body: %w", id, resp.StatusCode, err)
					case resp.StatusCode == *want && int64(len(got)) != *wantBytes:
						return fmt.Errorf("%s: %d with %d bytes, want %d", id, resp.StatusCode, len(got), *wantBytes)
					case resp.StatusCode != *want && *tolerate:
						mu.Lock()
						others[resp.StatusCode]++
						mu.Unlock()
					case resp.StatusCode != *want:
						return fmt.Errorf("%s: %d %s", id, resp.StatusCode, bytes.TrimSpace(got))
					}
					return nil
				}()
				if err != nil {
					bad.Add(1)
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var tolerated int
	var counts []string
	for _, status := range slices.Sorted(maps.Keys(others)) {
		tolerated += others[status]
		counts = append(counts, fmt.Sprintf("%d x%d", status, others[status]))
	}
	fmt.Fprintf(os.Stderr, "gen fill: %d deliveries in %.2fs (%.0f/s), %d not answered %d",
		*n, elapsed.Seconds(), float64(*n)/elapsed.Seconds(), bad.Load()+int64(tolerated), *want)
	if len(counts) > 0 {
		fmt.Fprintf(os.Stderr, " (%s)", strings.Join(counts, ", "))
	}
	fmt.Fprintln(os.Stderr)
	if bad.Load() > 0 {
		return fmt.Errorf("fill: %d of %d deliveries were not answered %d, the first: %v", bad.Load(), *n, *want, first)
	}
	return nil
}
