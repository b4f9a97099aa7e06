package schema

import (
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/postern-dev/postern/proxy/strictjson"
)

// FuzzEventType checks ParsePointer and Pointer.EventType on a
// strictjson.Doc against an independent RFC 6901 evaluation over the Doc's
// value tree: the pointer is refused exactly when it is not RFC 6901 syntax,
// and the event type found is exactly the non-empty string without control
// characters that the pointer designates in an object body; anything else
// is ErrNoEventType.
func FuzzEventType(f *testing.F) {
	for _, seed := range []struct{ doc, pointer string }{
		{`{"eventType":"REFERRAL_CREATED","data":{"status":"CREATED"}}`, "/eventType"},
		{`{"meta":{"type":"B"}}`, "/meta/type"},
		{`{"a/b":{"c~d":"C"}}`, "/a~1b/c~0d"},
		{`{"~1":"tilde one"}`, "/~01"},
		{`{"a~1b":"tilde one inside"}`, "/a~01b"},
		{`{"a\u002fb":"escaped slash"}`, "/a~1b"},
		{`{"e":[{"a":[1,{"b":"x"}]},[["x"]],"past subtrees"]}`, "/e/2"},
		{`{"e":[[],["nested"]]}`, "/e/1/0"},
		{`{"e":[{"t":"x"},{"t":"member"}]}`, "/e/1/t"},
		{`{"eventType":"A"}`, "/eventType/0"},
		{`{"eventType":true}`, "/eventType"},
		{`{"eventType":{"a":"A"}}`, "/eventType"},
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
		var d strictjson.Doc
		if d.ParseString(string(data)) != nil {
			return
		}
		want, ok := refEventType(tokens, d.Value(0))
		got, err := p.EventType(&d)
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

// refEventType walks tokens from doc, a value tree that must be an object:
// members by name, array elements by an index of ASCII digits without a
// leading zero. It is what EventType did before it took a strictjson.Doc.
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
	if !ok || s == "" || s[0] == ' ' || s[len(s)-1] == ' ' ||
		strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029 }) {
		return "", false
	}
	return s, true
}

// FuzzFastPathSound checks the fast path against the library on the
// built-in schema and testdata/schemas: it may say valid only when the
// library accepts the body, and invalid only when the library refuses it.
func FuzzFastPathSound(f *testing.F) {
	for _, tt := range fastCases {
		f.Add([]byte(tt.body))
	}
	set := testSet(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var d strictjson.Doc
		if d.ParseString(string(data)) != nil {
			return
		}
		for eventType, sch := range set.schemas {
			checkSound(t, eventType, sch, &d)
		}
	})
}

// FuzzFastPathSchemaSound fuzzes the schema as well as the body: any schema
// the library compiles and the fast path takes must obey the same rule.
func FuzzFastPathSchemaSound(f *testing.F) {
	names, err := filepath.Glob(filepath.Join("testdata", "schemas", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	names = append(names, "REFERRAL_CREATED.json")
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, tt := range fastCases {
			if tt.eventType+".json" == filepath.Base(name) {
				f.Add(data, []byte(tt.body))
			}
		}
	}
	for _, seed := range []struct{ schema, body string }{
		{`{"not":{"type":"integer"},"oneOf":[true,{"const":2.0}]}`, `2`},
		{`{"anyOf":[false,{"enum":[[1.0],{"a":null}]}]}`, `[1]`},
		{`{"if":{"type":"string"},"then":{"pattern":"^a"},"else":{"maximum":3}}`, `"ab"`},
		{`{"items":{"minimum":-1.5,"exclusiveMaximum":2},"maxItems":3}`, `[-1.5,1.99]`},
	} {
		f.Add([]byte(seed.schema), []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, schemaJSON, data []byte) {
		var d strictjson.Doc
		if d.ParseString(string(data)) != nil {
			return
		}
		set, err := compile(fstest.MapFS{"S.json": {Data: schemaJSON}}, "file:///postern/fuzz/")
		if err != nil {
			return
		}
		checkSound(t, string(schemaJSON), set.schemas["S"], &d)
	})
}

// checkSound fails when the fast path's verdict on d contradicts the
// library's on d's value tree, which is what Validate gives the library.
func checkSound(t *testing.T, name string, sch compiled, d *strictjson.Doc) {
	t.Helper()
	if sch.fast == nil {
		return
	}
	got := sch.fast.check(d, 0)
	if got == unsure {
		return
	}
	if err := sch.lib.Validate(d.Value(0)); (err == nil) != (got == valid) {
		t.Fatalf("%s: fast path says %v, library says %v", name, got, err)
	}
}

// FuzzPlainDateTime checks that every string in the fast path's date-time
// subset is a date-time to the library.
func FuzzPlainDateTime(f *testing.F) {
	for _, s := range []string{"2026-11-26T10:00:00Z", "2024-02-29T23:59:59.123+05:30", "2016-12-31T23:59:60Z", "2026-11-26t10:00:00z", "0000-01-01T00:00:00Z"} {
		f.Add(s)
	}
	sch := formatSet(f).schemas["DATE_TIME"].lib
	f.Fuzz(func(t *testing.T, s string) {
		if isPlainDateTime(s) {
			if err := sch.Validate(s); err != nil {
				t.Fatalf("isPlainDateTime(%q) = true, library says %v", s, err)
			}
		}
	})
}

// FuzzDecimal checks parseDecimal and cmp against math/big, as the library
// reads numbers.
func FuzzDecimal(f *testing.F) {
	f.Add("0", "-0")
	f.Add("1.50", "1.5")
	f.Add("-10", "-9.99")
	f.Add("1e3", "1000")
	f.Fuzz(func(t *testing.T, a, b string) {
		da, okA := parseDecimal(a)
		db, okB := parseDecimal(b)
		if !okA || !okB {
			return
		}
		ra, okA := new(big.Rat).SetString(a)
		rb, okB := new(big.Rat).SetString(b)
		if !okA || !okB {
			t.Fatalf("parseDecimal took %q and %q, big.Rat ok: %v, %v", a, b, okA, okB)
		}
		if got, want := da.cmp(db), ra.Cmp(rb); got != want {
			t.Fatalf("cmp(%s, %s) = %d, want %d", a, b, got, want)
		}
		if got, want := da.frac == "", ra.IsInt(); got != want {
			t.Fatalf("%s: whole = %v, want %v", a, got, want)
		}
	})
}
