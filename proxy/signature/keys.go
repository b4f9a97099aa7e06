package signature

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// secretPrefix is the optional prefix of a Svix signing secret.
const secretPrefix = "whsec_"

// minKeyBytes is the shortest key accepted; Svix and Standard Webhooks keys
// are 24 to 64 bytes.
const minKeyBytes = 16

// ParseSecrets decodes signing secrets ("whsec_" prefix optional, base64).
// Errors name the key by its 1-based position and never contain the key.
func ParseSecrets(secrets []string) ([][]byte, error) {
	keys := make([][]byte, 0, len(secrets))
	for i, s := range secrets {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("key %d is empty", i+1)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, secretPrefix))
		if err != nil {
			return nil, fmt.Errorf("key %d is not base64 after whsec_", i+1)
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
	hooks atomic.Pointer[[]*svix.Webhook]
}

// NewVerifier returns a Verifier for keys.
func NewVerifier(keys [][]byte) *Verifier {
	v := &Verifier{}
	v.SetKeys(keys)
	return v
}

// SetKeys replaces the keys; requests already verifying finish with the old set.
func (v *Verifier) SetKeys(keys [][]byte) {
	hooks := make([]*svix.Webhook, 0, len(keys))
	for _, k := range keys {
		wh, _ := svix.NewWebhookRaw(k) // never fails for raw keys
		hooks = append(hooks, wh)
	}
	v.hooks.Store(&hooks)
}

// Len returns the number of keys.
func (v *Verifier) Len() int {
	if h := v.hooks.Load(); h != nil {
		return len(*h)
	}
	return 0
}

// Verify checks the HMAC of body under h with the SDK, trying each key in
// order, and returns the index of the key that matched. The timestamp window
// must be checked before with CheckTimestamp.
func (v *Verifier) Verify(body []byte, h Headers) (int, error) {
	hooks := v.hooks.Load()
	if hooks == nil {
		return -1, ErrSignatureMismatch
	}
	sdkHeaders := http.Header{
		"Svix-Id":        {h.ID},
		"Svix-Timestamp": {h.Timestamp},
		"Svix-Signature": {h.Signature},
	}
	for i, wh := range *hooks {
		if wh.VerifyIgnoringTimestamp(body, sdkHeaders) == nil {
			return i, nil
		}
	}
	return -1, ErrSignatureMismatch
}

// Sign returns the "v1,..." signature of body for id and ts under key, as a
// sender computes it.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	wh, _ := svix.NewWebhookRaw(key)
	sig, _ := wh.Sign(id, ts, body) // the SDK's Sign has no failing path
	return sig
}
