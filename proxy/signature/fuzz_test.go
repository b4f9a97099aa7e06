package signature_test

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/postern-dev/postern/proxy/signature"
)

// The documented format, written independently of headers.go: an id of 1 to
// 256 visible ASCII characters, a timestamp of one or more ASCII digits, and
// a signature list of "version,value" tokens separated by single spaces.
var (
	idFormat        = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)
	timestampFormat = regexp.MustCompile(`^[0-9]+$`)
	signatureFormat = regexp.MustCompile(`^[^, ]+,[^, ]+( [^, ]+,[^, ]+)*$`)
)

// FuzzExtract checks that Extract never panics and accepts exactly the
// documented format. The header family is chosen by webhook.
func FuzzExtract(f *testing.F) {
	for _, tc := range extractCases {
		for _, fam := range [][3]string{svixSet, webhookSet} {
			if len(tc.h[fam[0]]) == 1 && len(tc.h[fam[1]]) == 1 && len(tc.h[fam[2]]) == 1 {
				f.Add(tc.h[fam[0]][0], tc.h[fam[1]][0], tc.h[fam[2]][0], fam == webhookSet)
				break
			}
		}
	}
	for _, tc := range verifyCases {
		f.Add(tc.id, tc.ts, tc.sig, false)
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string, webhook bool) {
		h, names := svixHeaders(id, ts, sig), svixSet
		if webhook {
			h, names = webhookHeaders(id, ts, sig), webhookSet
		}
		got, err := signature.Extract(h)
		wellFormed := idFormat.MatchString(id) && timestampFormat.MatchString(ts) && signatureFormat.MatchString(sig)
		if !wellFormed {
			if !errors.Is(err, signature.ErrMalformedHeaders) {
				t.Fatalf("Extract(%q, %q, %q) error = %v, want %v", id, ts, sig, err, signature.ErrMalformedHeaders)
			}
			return
		}
		if err != nil {
			t.Fatalf("Extract(%q, %q, %q) error = %v, want nil", id, ts, sig, err)
		}
		if got.ID != id || got.Timestamp != ts || got.Signature != sig || got.Names != names {
			t.Fatalf("Extract = %+v, want the values as received from %v", got, names)
		}
		// Time is the timestamp's, or, past year 10^11 (where time.Unix
		// would wrap into the past), still later than that.
		const far = 1 << 62
		n, perr := strconv.ParseInt(ts, 10, 64)
		if (perr == nil && n <= far && got.Time().Unix() != n) || ((perr != nil || n > far) && got.Time().Unix() < far) {
			t.Fatalf("Time() = %d, want %s", got.Time().Unix(), ts)
		}
		for tok := range strings.SplitSeq(got.Signature, " ") {
			if version, value, ok := strings.Cut(tok, ","); !ok || version == "" || value == "" || strings.Contains(value, ",") {
				t.Fatalf("accepted token %q is not version,value", tok)
			}
		}
	})
}

// FuzzVerify checks that, for any well-formed headers and body, Verify
// succeeds exactly when the signature list holds Sign(key, id, ts, body) for
// one of its keys, reports the first such key, and agrees with the SDK's own
// VerifyIgnoringTimestamp. add appends a valid
// signature (1: first key, 2: second key) so the accepting path is fuzzed too.
func FuzzVerify(f *testing.F) {
	for _, tc := range verifyCases {
		for add := range uint8(3) {
			f.Add([]byte(tc.body), tc.id, tc.ts, tc.sig, add)
		}
	}
	for _, vec := range vectors {
		f.Add([]byte(vec.body), vec.id, vec.ts, vec.sig, uint8(0))
	}
	keys := [][]byte{keyOf(f, v1.secret), keyOf(f, v2.secret)}
	v := signature.NewVerifier(keys)
	var hooks []*svix.Webhook
	for _, k := range keys {
		wh, err := svix.NewWebhookRaw(k)
		if err != nil {
			f.Fatal(err)
		}
		hooks = append(hooks, wh)
	}
	f.Fuzz(func(t *testing.T, body []byte, id, ts, sig string, add uint8) {
		if add %= 3; add > 0 {
			if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
				valid := signature.Sign(keys[add-1], id, time.Unix(n, 0), body)
				sig = strings.TrimPrefix(sig+" "+valid, " ")
			}
		}
		h, err := signature.Extract(http.Header{"Svix-Id": {id}, "Svix-Timestamp": {ts}, "Svix-Signature": {sig}})
		if err != nil {
			return
		}
		// The signed time is the timestamp's value (Time saturates past
		// year 10^11); one past an int64 signs nothing, as in the SDK.
		tokens := strings.Split(h.Signature, " ")
		want := -1
		if n, err := strconv.ParseInt(h.Timestamp, 10, 64); err == nil {
			for i, k := range keys {
				if slices.Contains(tokens, signature.Sign(k, h.ID, time.Unix(n, 0), body)) {
					want = i
					break
				}
			}
		}
		got, err := v.Verify(body, h)
		if got != want || (want >= 0) != (err == nil) {
			t.Fatalf("Verify(%q, %q, %q, %q) = %d, %v; want key %d", body, id, ts, sig, got, err, want)
		}
		// The SDK itself, key by key, must say the same.
		sdkWant := -1
		for i, wh := range hooks {
			if wh.VerifyIgnoringTimestamp(body, http.Header{"Svix-Id": {id}, "Svix-Timestamp": {ts}, "Svix-Signature": {sig}}) == nil {
				sdkWant = i
				break
			}
		}
		if got != sdkWant {
			t.Fatalf("Verify(%q, %q, %q, %q) = %d; the SDK matches key %d", body, id, ts, sig, got, sdkWant)
		}
		if err != nil && !errors.Is(err, signature.ErrSignatureMismatch) {
			t.Fatalf("Verify error = %v, want %v", err, signature.ErrSignatureMismatch)
		}
	})
}
