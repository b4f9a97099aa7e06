package signature

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	svix "github.com/svix/svix-webhooks/go"
)

// secretPrefix is the optional prefix of a Svix signing secret.
const secretPrefix = "whsec_"

// minKeyBytes is the shortest key accepted; Svix and Standard Webhooks keys
// are 24 to 64 bytes.
const minKeyBytes = 16

// SplitSecrets splits POSTERN_SECRETS into its keys: separated by commas,
// or one per line, as a Kubernetes Secret mounted as a variable holds them
// (blank lines and lines starting with #, as in a keys file, are skipped).
func SplitSecrets(v string) []string {
	var secrets []string
	for line := range strings.Lines(v) {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			secrets = append(secrets, strings.Split(line, ",")...)
		}
	}
	return secrets
}

// ParseSecrets decodes signing secrets ("whsec_" prefix optional, base64).
// Errors name the key by its 1-based position and never contain the key.
func ParseSecrets(secrets []string) ([][]byte, error) {
	keys := make([][]byte, 0, len(secrets))
	for i, s := range secrets {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("key %d is empty", i+1)
		}
		// base64's decoder skips line breaks: two keys on lines that were
		// not split (CR line endings) would decode as one wrong key.
		if strings.ContainsFunc(s, unicode.IsSpace) {
			return nil, fmt.Errorf("key %d has a space or line break inside it (separate keys with commas or newlines)", i+1)
		}
		b64, prefixed := strings.CutPrefix(s, secretPrefix)
		key, err := base64.StdEncoding.DecodeString(b64)
		switch {
		case err != nil && prefixed:
			return nil, fmt.Errorf("key %d is not base64 after whsec_", i+1)
		case err != nil:
			return nil, fmt.Errorf("key %d is not base64 (nor whsec_ followed by base64)", i+1)
		}
		if len(key) < minKeyBytes {
			return nil, fmt.Errorf("key %d decodes to %d bytes; signing keys are at least %d", i+1, len(key), minKeyBytes)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no keys")
	}
	return keys, nil
}

// ReadSecretsFile reads one secret per line; blank lines and lines starting
// with # are ignored.
func ReadSecretsFile(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return parseSecretsFile(data)
}

func parseSecretsFile(data []byte) ([][]byte, error) {
	var secrets []string
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			secrets = append(secrets, line)
		}
	}
	return ParseSecrets(secrets)
}

// Verifier checks signatures against a set of keys that can be replaced while
// it is in use. The zero value has no keys and matches nothing.
type Verifier struct {
	keys atomic.Pointer[[]*keyMACs]
}

// keyMACs holds one key's idle HMAC states, so that verifying allocates
// nothing: hmac.New costs five allocations and its key schedule.
type keyMACs struct {
	key  []byte
	pool sync.Pool // of *mac
}

// mac is one HMAC-SHA256 state with the scratch space a check needs.
type mac struct {
	h      hash.Hash
	prefix [MaxIDLen + 22]byte // "id.timestamp."
	sum    [sha256.Size]byte
	b64    [44]byte // base64 of sum, as signatures are sent
}

// NewVerifier returns a Verifier for keys.
func NewVerifier(keys [][]byte) *Verifier {
	v := &Verifier{}
	v.SetKeys(keys)
	return v
}

// SetKeys replaces the keys; requests already verifying finish with the old set.
func (v *Verifier) SetKeys(keys [][]byte) {
	set := make([]*keyMACs, 0, len(keys))
	for _, k := range keys {
		k = bytes.Clone(k)
		set = append(set, &keyMACs{key: k, pool: sync.Pool{New: func() any {
			return &mac{h: hmac.New(sha256.New, k)}
		}}})
	}
	v.keys.Store(&set)
}

// Has reports whether v's keys are keys, in the same order.
func (v *Verifier) Has(keys [][]byte) bool {
	s := v.keys.Load()
	if s == nil {
		return len(keys) == 0
	}
	return slices.EqualFunc(*s, keys, func(k *keyMACs, key []byte) bool { return bytes.Equal(k.key, key) })
}

// Len returns the number of keys.
func (v *Verifier) Len() int {
	if s := v.keys.Load(); s != nil {
		return len(*s)
	}
	return 0
}

// Verify checks the HMAC of body under h, trying each key in order, and
// returns the index of the key that matched. The timestamp window must be
// checked before with CheckTimestamp.
//
// It computes what the Svix SDK's VerifyIgnoringTimestamp computes, without
// its per-call allocations (the SDK copies the body into a formatted string):
// HMAC-SHA256 over "id.timestamp.body" with the timestamp in canonical
// decimal, base64 (standard, padded), compared in constant time with the
// value of every "v1," token. FuzzVerify checks the two agree.
func (v *Verifier) Verify(body []byte, h Headers) (int, error) {
	set := v.keys.Load()
	if set == nil || h.overflow { // the SDK cannot parse such a timestamp
		return -1, ErrSignatureMismatch
	}
	for i, k := range *set {
		m := k.pool.Get().(*mac)
		ok := m.matches(body, h)
		k.pool.Put(m)
		if ok {
			return i, nil
		}
	}
	return -1, ErrSignatureMismatch
}

// matches reports whether one of h's v1 signatures is this key's.
func (m *mac) matches(body []byte, h Headers) bool {
	p := append(m.prefix[:0], h.ID...)
	p = append(p, '.')
	p = strconv.AppendInt(p, h.unix, 10)
	p = append(p, '.')
	m.h.Reset()
	m.h.Write(p)
	m.h.Write(body)
	base64.StdEncoding.Encode(m.b64[:], m.h.Sum(m.sum[:0]))
	found := false
	for tok := range strings.SplitSeq(h.Signature, " ") {
		version, value, _ := strings.Cut(tok, ",")
		// Every token is compared, so the time taken does not say which
		// one matched.
		if version == "v1" && subtle.ConstantTimeCompare([]byte(value), m.b64[:]) == 1 {
			found = true
		}
	}
	return found
}

// Sign returns the "v1,..." signature of body for id and ts under key, as a
// sender computes it.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	wh, _ := svix.NewWebhookRaw(key)
	sig, _ := wh.Sign(id, ts, body) // the SDK's Sign has no failing path
	return sig
}
