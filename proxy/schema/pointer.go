package schema

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/postern-dev/postern/proxy/strictjson"
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

// EventType returns the non-empty string that the document d holds (its
// root at index 0) at p. An empty d, a document that is not an object, a
// missing member or array element, or a value that is not a non-empty string
// without control characters and spaces at its ends is ErrNoEventType.
func (p Pointer) EventType(d *strictjson.Doc) (string, error) {
	if len(d.Nodes) == 0 || d.Nodes[0].Kind != strictjson.Object {
		return "", ErrNoEventType
	}
	var i int32
	for _, tok := range p.tokens {
		switch n := &d.Nodes[i]; n.Kind {
		case strictjson.Object:
			j, ok := d.Member(i, tok)
			if !ok {
				return "", ErrNoEventType
			}
			i = j
		case strictjson.Array:
			// RFC 6901: an index is ASCII digits without a leading zero;
			// Atoi alone would also take "+1" and "-0".
			k, err := strconv.Atoi(tok)
			if err != nil || tok[0] < '0' || tok[0] > '9' || k >= int(n.Len) || (len(tok) > 1 && tok[0] == '0') {
				return "", ErrNoEventType
			}
			i++ // the first element
			for ; k > 0; k-- {
				i = d.Nodes[i].Next
			}
		default:
			return "", ErrNoEventType
		}
	}
	n := &d.Nodes[i]
	if n.Kind != strictjson.String || n.Text == "" {
		return "", ErrNoEventType
	}
	s := n.Text
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		// A header value loses them: the app would read another type
		// than the one validated.
		return "", ErrNoEventType
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return "", ErrNoEventType // it travels in a header and a metric label
		}
		if s[i] >= 0x80 {
			if strings.ContainsFunc(s[i:], notInEventType) {
				return "", ErrNoEventType
			}
			break
		}
	}
	return s, nil
}

// notInEventType reports the characters beyond ASCII an event type may
// not hold: control characters (C1) and the line and paragraph separators.
func notInEventType(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}
