package signature

import (
	"errors"
	"math"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors, one per rejection reason, in the order they are checked.
var (
	ErrDuplicateHeader   = errors.New("a signature header was sent more than once")
	ErrMissingHeaders    = errors.New("signature headers missing")
	ErrMalformedHeaders  = errors.New("signature headers malformed")
	ErrTimestampTooOld   = errors.New("timestamp older than tolerance")
	ErrTimestampTooNew   = errors.New("timestamp newer than tolerance")
	ErrSignatureMismatch = errors.New("no signature matches any key")
)

// The two header families. Svix's own names are tried first, as the SDK does.
var (
	svixNames    = names{id: "Svix-Id", timestamp: "Svix-Timestamp", signature: "Svix-Signature"}
	webhookNames = names{id: "Webhook-Id", timestamp: "Webhook-Timestamp", signature: "Webhook-Signature"}
)

type names struct{ id, timestamp, signature string }

// HeaderNames lists the canonical names of all six signature headers: the
// svix family's id, timestamp and signature, then the webhook family's
// (Extract relies on this order).
var HeaderNames = []string{
	svixNames.id, svixNames.timestamp, svixNames.signature,
	webhookNames.id, webhookNames.timestamp, webhookNames.signature,
}

// MaxIDLen bounds the message id; Svix ids are about 30 characters.
const MaxIDLen = 256

// Headers are the signature headers of one request, as received.
type Headers struct {
	// ID is the message id, stable across the sender's retries.
	ID string
	// Timestamp is the timestamp header as received (all digits).
	Timestamp string
	// Signature is the signature header as received.
	Signature string
	// Names are the header names the values came from (svix-* or webhook-*).
	Names [3]string

	unix     int64
	overflow bool // the timestamp is past an int64
}

// Time returns the signed timestamp; one past year 10^11 (which time.Unix
// would wrap around into the past) as farFuture.
func (h Headers) Time() time.Time {
	if h.overflow || h.unix > farFuture {
		return time.Unix(farFuture, 0)
	}
	return time.Unix(h.unix, 0)
}

// Extract reads the signature headers from h. It rejects a signature header
// sent twice (ErrDuplicateHeader), an incomplete set (ErrMissingHeaders) and
// values that are not well formed (ErrMalformedHeaders): an empty or overlong
// id, a timestamp that is not all digits (however many), a signature header that is empty or
// has a space-separated token that is not "version,value".
func Extract(h http.Header) (Headers, error) {
	// Each header is looked up once: the values of the svix family, then
	// of the webhook family, in HeaderNames' order.
	var vv [6][]string
	for i, name := range HeaderNames {
		if vv[i] = h[name]; len(vv[i]) > 1 {
			return Headers{}, ErrDuplicateHeader
		}
	}
	n, v := svixNames, vv[:3]
	if !complete(v) {
		n, v = webhookNames, vv[3:]
		if !complete(v) {
			return Headers{}, ErrMissingHeaders
		}
	}
	out := Headers{
		ID:        v[0][0],
		Timestamp: v[1][0],
		Signature: v[2][0],
		Names:     [3]string{n.id, n.timestamp, n.signature},
	}
	if !ValidID(out.ID) {
		return Headers{}, ErrMalformedHeaders
	}
	unix, ok, overflow := parseDigits(out.Timestamp)
	if !ok {
		return Headers{}, ErrMalformedHeaders
	}
	out.unix, out.overflow = unix, overflow
	if !validSignatureList(out.Signature) {
		return Headers{}, ErrMalformedHeaders
	}
	return out, nil
}

// complete reports whether the id, timestamp and signature headers of one
// family (their values, in that order) were each sent once.
func complete(v [][]string) bool {
	return len(v[0]) == 1 && len(v[1]) == 1 && len(v[2]) == 1
}

// ValidID reports whether id is a message id Extract accepts: 1 to
// MaxIDLen visible ASCII characters.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// farFuture stands for the time of a timestamp too large for time.Unix: far
// past any window (year 10^11), yet a valid time.Time, so that it is too new.
const farFuture = 1 << 62

// parseDigits parses a non-empty run of ASCII digits, leading zeros
// allowed. Unlike strconv.ParseInt it refuses signs and spaces, and a value
// too large for an int64 is not an error but overflow: it is still a
// timestamp, only too new.
func parseDigits(s string) (n int64, ok, overflow bool) {
	if s == "" {
		return 0, false, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false, false
		}
		d := int64(c - '0')
		if overflow || n > (math.MaxInt64-d)/10 {
			overflow = true
			continue
		}
		n = n*10 + d
	}
	return n, true, overflow
}

// validSignatureList reports whether s is one or more space-separated tokens,
// each "version,value" with a non-empty version and value and no other comma.
func validSignatureList(s string) bool {
	if s == "" {
		return false
	}
	for tok := range strings.SplitSeq(s, " ") {
		if !validToken(tok) {
			return false
		}
	}
	return true
}

func validToken(tok string) bool {
	version, value, ok := strings.Cut(tok, ",")
	return ok && version != "" && value != "" && !strings.Contains(value, ",")
}

// CheckTimestamp rejects a timestamp more than tolerance before or after now.
func CheckTimestamp(ts, now time.Time, tolerance time.Duration) error {
	switch skew := now.Sub(ts); {
	case skew > tolerance:
		return ErrTimestampTooOld
	case skew < -tolerance:
		return ErrTimestampTooNew
	}
	return nil
}
