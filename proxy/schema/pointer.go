package schema

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNoEventType is returned when the pointer does not lead to a non-empty
// string without control characters, or the body is not an object.
var ErrNoEventType = errors.New("event type missing")

// Pointer is a parsed RFC 6901 JSON pointer.
type Pointer struct {
	raw    string
	tokens []string
}

// ParsePointer parses an RFC 6901 pointer such as /eventType or /meta/type.
func ParsePointer(s string) (Pointer, error) {
	if s == "" || s[0] != '/' {
		return Pointer{}, fmt.Errorf("%q is not a JSON pointer: it must start with /", s)
	}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		for j := 0; j < len(p); j++ {
			if p[j] == '~' && (j+1 == len(p) || (p[j+1] != '0' && p[j+1] != '1')) {
				return Pointer{}, fmt.Errorf("%q is not a JSON pointer: ~ must be followed by 0 or 1", s)
			}
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return Pointer{raw: s, tokens: parts}, nil
}

// String returns the pointer as written.
func (p Pointer) String() string { return p.raw }

// EventType returns the non-empty string doc holds at p. A doc that is not an
// object, a missing member, or a value that is not a non-empty string is
// ErrNoEventType.
func (p Pointer) EventType(doc any) (string, error) {
	if _, ok := doc.(map[string]any); !ok {
		return "", ErrNoEventType
	}
	v := doc
	for _, tok := range p.tokens {
		switch node := v.(type) {
		case map[string]any:
			next, ok := node[tok]
			if !ok {
				return "", ErrNoEventType
			}
			v = next
		case []any:
			// RFC 6901: an index is ASCII digits without a leading zero;
			// Atoi alone would also take "+1" and "-0".
			i, err := strconv.Atoi(tok)
			if err != nil || tok[0] < '0' || tok[0] > '9' || i >= len(node) || (len(tok) > 1 && tok[0] == '0') {
				return "", ErrNoEventType
			}
			v = node[i]
		default:
			return "", ErrNoEventType
		}
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return "", ErrNoEventType
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return "", ErrNoEventType // it travels in a header and a metric label
		}
	}
	return s, nil
}
