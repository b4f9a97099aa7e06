package schema

import (
	"errors"
	"strings"
	"testing"

	"github.com/postern-dev/postern/proxy/strictjson"
)

// FuzzEventType checks ParsePointer and Pointer.EventType against an
// independent RFC 6901 evaluation over strictjson-parsed documents: the
// pointer is refused exactly when it is not RFC 6901 syntax, and the event
// type found is exactly the non-empty string without control characters
// that the pointer designates in an object body; anything else is
// ErrNoEventType.
func FuzzEventType(f *testing.F) {
	for _, seed := range []struct{ doc, pointer string }{
		{`{"eventType":"REFERRAL_CREATED","data":{"status":"CREATED"}}`, "/eventType"},
		{`{"meta":{"type":"B"}}`, "/meta/type"},
		{`{"a/b":{"c~d":"C"}}`, "/a~1b/c~0d"},
		{`{"~1":"tilde one"}`, "/~01"},
		{`{"events":["x","D"]}`, "/events/1"},
		{`{"events":["x","D"]}`, "/events/01"},
		{`{"events":["x","D"]}`, "/events/+1"},
		{`{"events":["x","D"]}`, "/events/-0"},
		{`{"events":["x","D"]}`, "/events/2"},
		{`{"events":{"1":"keyed"}}`, "/events/1"},
		{`{"":"empty name"}`, "/"},
		{`{"a":{"":"x"}}`, "/a/"},
		{`{"eventType":""}`, "/eventType"},
		{`{"eventType":null}`, "/eventType"},
		{`{"eventType":7}`, "/eventType"},
		{`{"eventType":"A\r\nX-Evil: 1"}`, "/eventType"},
		{`{"eventType":"caf\u00e9\u007f"}`, "/eventType"},
		{`["A"]`, "/0"},
		{`"A"`, "/eventType"},
		{`{"eventType":"A"}`, "eventType"},
		{`{"eventType":"A"}`, "/a~"},
		{`{"eventType":"A"}`, "/a~2"},
	} {
		f.Add([]byte(seed.doc), seed.pointer)
	}
	f.Fuzz(func(t *testing.T, data []byte, pointer string) {
		p, err := ParsePointer(pointer)
		tokens, valid := refTokens(pointer)
		if (err == nil) != valid {
			t.Fatalf("ParsePointer(%q) error = %v, want valid=%v", pointer, err, valid)
		}
		if err != nil {
			return
		}
		if p.String() != pointer {
			t.Fatalf("ParsePointer(%q).String() = %q", pointer, p.String())
		}
		doc, err := strictjson.Parse(data)
		if err != nil {
			return
		}
		want, ok := refEventType(tokens, doc)
		got, err := p.EventType(doc)
		if ok != (err == nil) || got != want {
			t.Fatalf("EventType(%q) on %q = %q, %v; want %q (found: %v)", pointer, data, got, err, want, ok)
		}
		if err != nil && !errors.Is(err, ErrNoEventType) {
			t.Fatalf("EventType error = %v, want %v", err, ErrNoEventType)
		}
	})
}

// refTokens splits and unescapes an RFC 6901 pointer: "/" then tokens
// separated by "/", where "~" must be followed by "0" (~) or "1" (/).
func refTokens(pointer string) ([]string, bool) {
	if !strings.HasPrefix(pointer, "/") {
		return nil, false
	}
	var tokens []string
	for raw := range strings.SplitSeq(pointer[1:], "/") {
		var tok strings.Builder
		for i := 0; i < len(raw); i++ {
			if raw[i] != '~' {
				tok.WriteByte(raw[i])
				continue
			}
			if i+1 == len(raw) {
				return nil, false
			}
			switch raw[i+1] {
			case '0':
				tok.WriteByte('~')
			case '1':
				tok.WriteByte('/')
			default:
				return nil, false
			}
			i++
		}
		tokens = append(tokens, tok.String())
	}
	return tokens, true
}

// refEventType walks tokens from doc, which must be an object: members by
// name, array elements by an index of ASCII digits without a leading zero.
func refEventType(tokens []string, doc any) (string, bool) {
	if _, ok := doc.(map[string]any); !ok {
		return "", false
	}
	v := doc
	for _, tok := range tokens {
		switch node := v.(type) {
		case map[string]any:
			next, ok := node[tok]
			if !ok {
				return "", false
			}
			v = next
		case []any:
			if tok == "" || (len(tok) > 1 && tok[0] == '0') || strings.Trim(tok, "0123456789") != "" || len(tok) > 9 {
				return "", false
			}
			i := 0
			for _, c := range tok {
				i = i*10 + int(c-'0')
			}
			if i >= len(node) {
				return "", false
			}
			v = node[i]
		default:
			return "", false
		}
	}
	s, ok := v.(string)
	if !ok || s == "" || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", false
	}
	return s, true
}
