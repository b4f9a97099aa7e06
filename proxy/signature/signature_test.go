package signature_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/postern-dev/postern/proxy/signature"
)

// tolerance is the window the tests check timestamps with (DESIGN.md default).
const tolerance = 5 * time.Minute

// vector is a published signature test vector (Standard Webhooks / Svix SDK tests).
type vector struct {
	name   string
	secret string
	id     string
	ts     string
	body   string
	sig    string
}

var vectors = []vector{
	{
		name:   "standard webhooks",
		secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		id:     "msg_p5jXN8AQM9LWM0D4loKWxJek",
		ts:     "1614265330",
		body:   `{"test": 2432232314}`,
		sig:    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	},
	{
		name:   "svix",
		secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
		id:     "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
		ts:     "1649367553",
		body:   `{"email":"test@example.com","username":"test_user"}`,
		sig:    "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
	},
}

// v1 and v2 are short names for the two vectors.
var v1, v2 = vectors[0], vectors[1]

// keyOf decodes one secret, failing the test on error.
func keyOf(tb testing.TB, secret string) []byte {
	tb.Helper()
	keys, err := signature.ParseSecrets([]string{secret})
	if err != nil {
		tb.Fatalf("ParseSecrets(%q) = %v, want nil error", secret, err)
	}
	return keys[0]
}

// svixHeaders returns the svix-* header set.
func svixHeaders(id, ts, sig string) http.Header {
	return http.Header{"Svix-Id": {id}, "Svix-Timestamp": {ts}, "Svix-Signature": {sig}}
}

// webhookHeaders returns the Standard Webhooks webhook-* header set.
func webhookHeaders(id, ts, sig string) http.Header {
	return http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {sig}}
}

// unix parses a decimal timestamp, failing the test on error.
func unix(tb testing.TB, ts string) time.Time {
	tb.Helper()
	var n int64
	for _, c := range ts {
		if c < '0' || c > '9' {
			tb.Fatalf("unix(%q): not a decimal timestamp", ts)
		}
		n = n*10 + int64(c-'0')
	}
	return time.Unix(n, 0)
}

// check runs the whole verification a request goes through, in the order of
// DESIGN.md: Extract, CheckTimestamp against now, then Verify.
func check(h http.Header, body string, now time.Time, v *signature.Verifier) (int, error) {
	got, err := signature.Extract(h)
	if err != nil {
		return -1, err
	}
	if err := signature.CheckTimestamp(got.Time(), now, tolerance); err != nil {
		return -1, err
	}
	return v.Verify([]byte(body), got)
}

func TestPublishedVectors(t *testing.T) {
	families := []struct {
		name    string
		headers func(id, ts, sig string) http.Header
	}{
		{"svix headers", svixHeaders},
		{"webhook headers", webhookHeaders},
	}
	for _, vec := range vectors {
		for _, fam := range families {
			t.Run(vec.name+"/"+fam.name, func(t *testing.T) {
				key := keyOf(t, vec.secret)
				now := unix(t, vec.ts).Add(time.Minute)
				idx, err := check(fam.headers(vec.id, vec.ts, vec.sig), vec.body, now, signature.NewVerifier([][]byte{key}))
				if err != nil || idx != 0 {
					t.Errorf("verify = %d, %v; want 0, nil", idx, err)
				}
			})
		}
		t.Run(vec.name+"/Sign", func(t *testing.T) {
			got := signature.Sign(keyOf(t, vec.secret), vec.id, unix(t, vec.ts), []byte(vec.body))
			if got != vec.sig {
				t.Errorf("Sign = %q, want %q", got, vec.sig)
			}
		})
	}
}

// verifyCase is one request checked against a verifier with the given keys.
type verifyCase struct {
	name    string
	secrets []string // keys of the verifier, in order; default v1.secret
	id      string   // default v1.id
	ts      string   // default v1.ts
	body    string   // default v1.body
	sig     string
	wantIdx int
	wantErr error
}

func (c verifyCase) withDefaults() verifyCase {
	if c.secrets == nil {
		c.secrets = []string{v1.secret}
	}
	if c.id == "" {
		c.id = v1.id
	}
	if c.ts == "" {
		c.ts = v1.ts
	}
	if c.body == "" {
		c.body = v1.body
	}
	return c
}

// rotated signs v1's message with v2's key, as a sender would after a rotation.
var rotated = "v1,78nXHjpFP0tVJQW5D0SBwmVyyW87BV/rL6MgfM/Bw44="

var verifyCases = func() []verifyCase {
	good := v1.sig
	cases := []verifyCase{
		{name: "valid", sig: good},
		{name: "v1 comma alone", sig: "v1,", wantErr: signature.ErrMalformedHeaders},
		{name: "v2 copy of the right value", sig: "v2," + strings.TrimPrefix(good, "v1,"), wantErr: signature.ErrSignatureMismatch},
		{name: "upper-case version", sig: "V1," + strings.TrimPrefix(good, "v1,"), wantErr: signature.ErrSignatureMismatch},
		{name: "value not base64", sig: "v1,!!!not-base64!!!", wantErr: signature.ErrSignatureMismatch},
		{name: "value with one byte more", sig: good + "A", wantErr: signature.ErrSignatureMismatch},
		{name: "value in base64url", sig: "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=", wantErr: signature.ErrSignatureMismatch},
		{name: "value without padding", sig: strings.TrimSuffix(good, "="), wantErr: signature.ErrSignatureMismatch},
		{name: "re-serialized body", body: `{"test":2432232314}`, sig: good, wantErr: signature.ErrSignatureMismatch},
		{name: "body with trailing newline", body: v1.body + "\n", sig: good, wantErr: signature.ErrSignatureMismatch},
		{name: "timestamp plus one", ts: "1614265331", sig: good, wantErr: signature.ErrSignatureMismatch},
		{name: "timestamp minus one", ts: "1614265329", sig: good, wantErr: signature.ErrSignatureMismatch},
		{name: "other message id", id: v1.id + "x", sig: good, wantErr: signature.ErrSignatureMismatch},
		{name: "wrong key", secrets: []string{v2.secret}, sig: good, wantErr: signature.ErrSignatureMismatch},
		{name: "signature of the other vector", sig: v2.sig, wantErr: signature.ErrSignatureMismatch},
		{name: "several tokens, last matches", sig: "v1,AAAA v2,xyz v1,bm9wZQ== " + good},
		{name: "several tokens, first matches", sig: good + " v1,AAAA v1a,b"},
		{name: "several tokens, none matches", sig: "v1,AAAA v2,xyz " + rotated, wantErr: signature.ErrSignatureMismatch},
		{name: "same token twice", sig: good + " " + good},
		{name: "rotation: old key matches", secrets: []string{v1.secret, v2.secret}, sig: good, wantIdx: 0},
		{name: "rotation: new key matches", secrets: []string{v1.secret, v2.secret}, sig: rotated, wantIdx: 1},
		{name: "rotation: both sent, first key wins", secrets: []string{v1.secret, v2.secret}, sig: rotated + " " + good, wantIdx: 0},
		{name: "rotation: neither key", secrets: []string{v2.secret, v2.secret}, sig: good, wantErr: signature.ErrSignatureMismatch},
		// The list is separated by exactly one space (headers.go splits on " ").
		{name: "two spaces between tokens", sig: "v1,AAAA  " + good, wantErr: signature.ErrMalformedHeaders},
		{name: "leading space", sig: " " + good, wantErr: signature.ErrMalformedHeaders},
		{name: "trailing space", sig: good + " ", wantErr: signature.ErrMalformedHeaders},
		{name: "space only", sig: " ", wantErr: signature.ErrMalformedHeaders},
		{name: "comma-separated tokens", sig: "v1,AAAA," + good, wantErr: signature.ErrMalformedHeaders},
		{name: "tab is not a separator", sig: "v1,AAAA\t" + good, wantErr: signature.ErrMalformedHeaders},
		{name: "trailing tab is part of the value", sig: good + "\t", wantErr: signature.ErrSignatureMismatch},
	}
	// Every strict prefix of the valid token: those without a value are
	// malformed, those with a truncated value do not match.
	for n := range len(good) {
		c := verifyCase{name: "prefix " + good[:n], sig: good[:n], wantErr: signature.ErrSignatureMismatch}
		if n <= len("v1,") {
			c.wantErr = signature.ErrMalformedHeaders
		}
		if n == 0 {
			c.name = "empty signature"
		}
		cases = append(cases, c)
	}
	for i := range cases {
		cases[i] = cases[i].withDefaults()
		if cases[i].wantErr != nil {
			cases[i].wantIdx = -1
		}
	}
	return cases
}()

func TestVerify(t *testing.T) {
	now := unix(t, v1.ts)
	for _, tc := range verifyCases {
		t.Run(tc.name, func(t *testing.T) {
			var keys [][]byte
			for _, s := range tc.secrets {
				keys = append(keys, keyOf(t, s))
			}
			idx, err := check(svixHeaders(tc.id, tc.ts, tc.sig), tc.body, now, signature.NewVerifier(keys))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("error = %v, want %v", err, tc.wantErr)
			}
			if idx != tc.wantIdx {
				t.Errorf("key index = %d, want %d", idx, tc.wantIdx)
			}
		})
	}
}

func TestRotatedSignatureIsSignedByTheNewKey(t *testing.T) {
	// rotated is a fixture of the rotation cases; it must stay what it claims.
	got := signature.Sign(keyOf(t, v2.secret), v1.id, unix(t, v1.ts), []byte(v1.body))
	if got != rotated {
		t.Errorf("Sign(v2 key, v1 message) = %q, want %q", got, rotated)
	}
}

func TestVerifierWithoutKeysMatchesNothing(t *testing.T) {
	h, err := signature.Extract(svixHeaders(v1.id, v1.ts, v1.sig))
	if err != nil {
		t.Fatalf("Extract = %v, want nil", err)
	}
	for name, v := range map[string]*signature.Verifier{
		"zero value": {},
		"no keys":    signature.NewVerifier(nil),
	} {
		idx, err := v.Verify([]byte(v1.body), h)
		if idx != -1 || !errors.Is(err, signature.ErrSignatureMismatch) {
			t.Errorf("%s: Verify = %d, %v; want -1, %v", name, idx, err, signature.ErrSignatureMismatch)
		}
		if v.Len() != 0 {
			t.Errorf("%s: Len = %d, want 0", name, v.Len())
		}
	}
}

func TestSetKeysReplacesKeys(t *testing.T) {
	h, err := signature.Extract(svixHeaders(v1.id, v1.ts, v1.sig))
	if err != nil {
		t.Fatalf("Extract = %v, want nil", err)
	}
	v := signature.NewVerifier([][]byte{keyOf(t, v1.secret)})
	v.SetKeys([][]byte{keyOf(t, v2.secret)})
	if idx, err := v.Verify([]byte(v1.body), h); !errors.Is(err, signature.ErrSignatureMismatch) {
		t.Errorf("Verify with the replaced key = %d, %v; want %v", idx, err, signature.ErrSignatureMismatch)
	}
	if v.Len() != 1 {
		t.Errorf("Len = %d, want 1", v.Len())
	}
}

var (
	svixSet    = [3]string{"Svix-Id", "Svix-Timestamp", "Svix-Signature"}
	webhookSet = [3]string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}
)

// extractCase is one header set given to Extract.
type extractCase struct {
	name    string
	h       http.Header
	want    signature.Headers // compared without the parsed time, which Time() checks
	wantErr error
}

// malformed is a svix-* case whose values Extract must refuse.
func malformed(name, id, ts, sig string) extractCase {
	return extractCase{name: name, h: svixHeaders(id, ts, sig), wantErr: signature.ErrMalformedHeaders}
}

// accepted is a svix-* case whose values Extract must return as given.
func accepted(name, id, ts, sig string) extractCase {
	return extractCase{
		name: name,
		h:    svixHeaders(id, ts, sig),
		want: signature.Headers{ID: id, Timestamp: ts, Signature: sig, Names: svixSet},
	}
}

var extractCases = func() []extractCase {
	cases := []extractCase{
		{
			name: "svix headers",
			h:    svixHeaders(v1.id, v1.ts, v1.sig),
			want: signature.Headers{ID: v1.id, Timestamp: v1.ts, Signature: v1.sig, Names: svixSet},
		},
		{
			name: "webhook headers",
			h:    webhookHeaders(v1.id, v1.ts, v1.sig),
			want: signature.Headers{ID: v1.id, Timestamp: v1.ts, Signature: v1.sig, Names: webhookSet},
		},
		{
			name: "both sets, svix wins",
			h: http.Header{
				"Svix-Id": {v1.id}, "Svix-Timestamp": {v1.ts}, "Svix-Signature": {v1.sig},
				"Webhook-Id": {v2.id}, "Webhook-Timestamp": {v2.ts}, "Webhook-Signature": {v2.sig},
			},
			want: signature.Headers{ID: v1.id, Timestamp: v1.ts, Signature: v1.sig, Names: svixSet},
		},
		{
			name: "complete webhook set, partial svix set",
			h: http.Header{
				"Svix-Id":    {v1.id},
				"Webhook-Id": {v2.id}, "Webhook-Timestamp": {v2.ts}, "Webhook-Signature": {v2.sig},
			},
			want: signature.Headers{ID: v2.id, Timestamp: v2.ts, Signature: v2.sig, Names: webhookSet},
		},
		{name: "no headers", h: http.Header{}, wantErr: signature.ErrMissingHeaders},
		{
			name:    "mixed partial sets",
			h:       http.Header{"Svix-Id": {v1.id}, "Webhook-Timestamp": {v1.ts}, "Webhook-Signature": {v1.sig}},
			wantErr: signature.ErrMissingHeaders,
		},
		{
			name:    "mixed partial sets, other way",
			h:       http.Header{"Webhook-Id": {v1.id}, "Svix-Timestamp": {v1.ts}, "Svix-Signature": {v1.sig}},
			wantErr: signature.ErrMissingHeaders,
		},
		{
			name:    "lower-case names are not canonical",
			h:       http.Header{"svix-id": {v1.id}, "svix-timestamp": {v1.ts}, "svix-signature": {v1.sig}},
			wantErr: signature.ErrMissingHeaders,
		},
		{
			name:    "underscore names",
			h:       http.Header{"Svix_id": {v1.id}, "Svix_timestamp": {v1.ts}, "Svix_signature": {v1.sig}},
			wantErr: signature.ErrMissingHeaders,
		},

		malformed("empty id", "", v1.ts, v1.sig),
		malformed("empty timestamp", v1.id, "", v1.sig),
		malformed("empty signature", v1.id, v1.ts, ""),

		malformed("timestamp with plus sign", v1.id, "+1614265330", v1.sig),
		malformed("negative timestamp", v1.id, "-1", v1.sig),
		malformed("timestamp with leading space", v1.id, " 1", v1.sig),
		malformed("timestamp with trailing space", v1.id, "1 ", v1.sig),
		malformed("timestamp in exponent form", v1.id, "1e9", v1.sig),
		malformed("timestamp in hex", v1.id, "0x10", v1.sig),
		malformed("timestamp with fraction", v1.id, "1614265330.0", v1.sig),
		accepted("timestamp of 19 digits", v1.id, "1000000000000000000", v1.sig),
		malformed("timestamp with arabic-indic digit", v1.id, "١٦١٤٢٦٥٣٣٠", v1.sig),
		accepted("timestamp of 18 digits", v1.id, "999999999999999999", v1.sig),
		accepted("timestamp zero", v1.id, "0", v1.sig),
		accepted("timestamp with leading zero", v1.id, "01614265330", v1.sig),

		malformed("id with space", "msg 1", v1.ts, v1.sig),
		malformed("id with tab", "msg\t1", v1.ts, v1.sig),
		malformed("id with nul", "msg\x001", v1.ts, v1.sig),
		malformed("id with DEL", "msg\x7f", v1.ts, v1.sig),
		malformed("id with newline", "msg\n1", v1.ts, v1.sig),
		malformed("id with non-ASCII", "msg_é", v1.ts, v1.sig),
		malformed("id of 257 bytes", strings.Repeat("a", 257), v1.ts, v1.sig),
		accepted("id of 256 bytes", strings.Repeat("a", 256), v1.ts, v1.sig),
		accepted("id of one byte", "a", v1.ts, v1.sig),
		accepted("id with every visible character", "!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", v1.ts, v1.sig),

		malformed("token without comma", v1.id, v1.ts, "v1"),
		malformed("token with two commas", v1.id, v1.ts, "v1,a,b"),
		malformed("token without version", v1.id, v1.ts, ",abc"),
		malformed("token without value", v1.id, v1.ts, "v1,"),
		malformed("comma alone", v1.id, v1.ts, ","),
		malformed("one bad token among good ones", v1.id, v1.ts, v1.sig+" v1 "+v2.sig),
		accepted("unknown version is well formed", v1.id, v1.ts, "v9,abc"),
		accepted("several tokens", v1.id, v1.ts, "v1,a v1a,b "+v1.sig),
	}
	// Each of the six headers sent twice, alongside a complete svix set.
	for _, name := range append(svixSet[:], webhookSet[:]...) {
		h := svixHeaders(v1.id, v1.ts, v1.sig)
		h[name] = []string{"a", "b"}
		cases = append(cases, extractCase{name: name + " twice", h: h, wantErr: signature.ErrDuplicateHeader})
	}
	// A duplicate is found before anything is missing.
	cases = append(cases, extractCase{
		name:    "duplicate in an incomplete set",
		h:       http.Header{"Webhook-Signature": {v1.sig, v1.sig}},
		wantErr: signature.ErrDuplicateHeader,
	})
	return cases
}()

func TestExtract(t *testing.T) {
	for _, tc := range extractCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := signature.Extract(tc.h)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Extract error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreUnexported(signature.Headers{})); diff != "" {
				t.Errorf("Extract mismatch (-want +got):\n%s", diff)
			}
			if got.Time().Unix() != unix(t, tc.want.Timestamp).Unix() {
				t.Errorf("Time() = %d, want %s", got.Time().Unix(), tc.want.Timestamp)
			}
		})
	}
}

func TestCheckTimestamp(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		ts   time.Time
		want error
	}{
		{"now", now, nil},
		{"exactly tolerance old", now.Add(-tolerance), nil},
		{"exactly tolerance new", now.Add(tolerance), nil},
		{"one second too old", now.Add(-tolerance - time.Second), signature.ErrTimestampTooOld},
		{"one second too new", now.Add(tolerance + time.Second), signature.ErrTimestampTooNew},
		{"epoch", time.Unix(0, 0), signature.ErrTimestampTooOld},
		{"largest timestamp Extract accepts", time.Unix(999999999999999999, 0), signature.ErrTimestampTooNew},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := signature.CheckTimestamp(tc.ts, now, tolerance); !errors.Is(got, tc.want) || (tc.want == nil && got != nil) {
				t.Errorf("CheckTimestamp = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckTimestampFromHeaders(t *testing.T) {
	// The timestamp Extract parsed is the one checked: a stale forgery is
	// too old before its signature is looked at.
	now := unix(t, v1.ts)
	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{"sent now", now, nil},
		{"received a day later", now.Add(24 * time.Hour), signature.ErrTimestampTooOld},
		{"received a day earlier", now.Add(-24 * time.Hour), signature.ErrTimestampTooNew},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := check(svixHeaders(v1.id, v1.ts, "v1,forged"), v1.body, tc.now, signature.NewVerifier([][]byte{keyOf(t, v1.secret)}))
			want := tc.want
			if want == nil {
				want = signature.ErrSignatureMismatch
			}
			if !errors.Is(err, want) {
				t.Errorf("error = %v, want %v", err, want)
			}
		})
	}
}

func TestTimestampPastInt64(t *testing.T) {
	// All digits is a timestamp, however long: as DESIGN.md's table says,
	// one beyond the window is too new, not malformed (before the HMAC).
	now := unix(t, v1.ts)
	for _, ts := range []string{"999999999999999999", "1000000000000000000", "9223372036854775807", "9223372036854775808", "99999999999999999999999", "0000000000000000000001614265330"} {
		_, err := check(svixHeaders(v1.id, ts, "v1,forged"), v1.body, now, signature.NewVerifier([][]byte{keyOf(t, v1.secret)}))
		want := signature.ErrTimestampTooNew
		if ts[0] == '0' {
			want = signature.ErrSignatureMismatch // leading zeros: the same second as v1.ts
		}
		if !errors.Is(err, want) {
			t.Errorf("timestamp %s: error = %v, want %v", ts, err, want)
		}
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	errs := []error{
		signature.ErrDuplicateHeader, signature.ErrMissingHeaders, signature.ErrMalformedHeaders,
		signature.ErrTimestampTooOld, signature.ErrTimestampTooNew, signature.ErrSignatureMismatch,
	}
	for i, a := range errs {
		for j, b := range errs {
			if i != j && (errors.Is(a, b) || a.Error() == b.Error()) {
				t.Errorf("%v and %v are not distinct", a, b)
			}
		}
	}
}
