package strictjson_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/postern-dev/postern/proxy/strictjson"
)

type n = json.Number

// treeOpts makes cmp compare []any with reflect.DeepEqual. cmp on its own
// compares every slice element twice (once to align the slices, once to
// report), which is exponential in the nesting depth: 20 nested arrays take
// seconds and the 256 of the depth tests would never finish.
var treeOpts = cmp.Comparer(func(x, y []any) bool { return reflect.DeepEqual(x, y) })

// validTests are documents Parse accepts, with the trees it must return.
var validTests = []struct {
	name string
	in   string
	want any
}{
	{name: "null", in: `null`, want: nil},
	{name: "true", in: `true`, want: true},
	{name: "false", in: `false`, want: false},
	{name: "zero", in: `0`, want: n("0")},
	{name: "negative zero", in: `-0`, want: n("-0")},
	{name: "integer", in: `1234567890`, want: n("1234567890")},
	{name: "big integer kept exact", in: `123456789012345678901234567890`, want: n("123456789012345678901234567890")},
	{name: "fraction and exponent", in: `-12.50e+010`, want: n("-12.50e+010")},
	{name: "zero fraction", in: `0.000`, want: n("0.000")},
	{name: "capital exponent", in: `1E-7`, want: n("1E-7")},
	{name: "empty string", in: `""`, want: ""},
	{name: "plain string", in: `"hello, world"`, want: "hello, world"},
	{name: "simple escapes", in: `"\"\\\/\b\f\n\r\t"`, want: "\"\\/\b\f\n\r\t"},
	{name: "escape between text", in: `"a\nb"`, want: "a\nb"},
	{name: "unicode escape", in: `"caf\u00e9"`, want: "café"},
	{name: "upper-case hex", in: `"\u00E9\uFFFF"`, want: "é\uffff"},
	{name: "escaped nul", in: `"\u0000"`, want: "\x00"},
	{name: "surrogate pair", in: `"\ud83d\ude00"`, want: "😀"},
	{name: "surrogate pair in text", in: `"a\uD83D\uDE00b"`, want: "a😀b"},
	{name: "raw utf-8", in: `"café 😀 日本"`, want: "café 😀 日本"},
	{name: "raw utf-8 after escape", in: `"\t日本😀"`, want: "\t日本😀"},
	{name: "raw replacement character", in: "\"\xef\xbf\xbd\"", want: "\ufffd"},
	{name: "raw del", in: "\"\x7f\"", want: "\x7f"},
	{name: "empty array", in: `[]`, want: []any{}},
	{name: "empty object", in: `{}`, want: map[string]any{}},
	{name: "mixed array", in: `[1,"a",true,false,null,[],{}]`, want: []any{n("1"), "a", true, false, nil, []any{}, map[string]any{}}},
	{
		name: "object",
		in:   `{"a":1,"b":[2,{"c":"d"}],"e":{}}`,
		want: map[string]any{"a": n("1"), "b": []any{n("2"), map[string]any{"c": "d"}}, "e": map[string]any{}},
	},
	{name: "names differ in case", in: `{"a":1,"A":2}`, want: map[string]any{"a": n("1"), "A": n("2")}},
	{name: "same name at two levels", in: `{"a":{"a":1}}`, want: map[string]any{"a": map[string]any{"a": n("1")}}},
	{name: "same name in sibling objects", in: `[{"a":1},{"a":2}]`, want: []any{map[string]any{"a": n("1")}, map[string]any{"a": n("2")}}},
	{name: "escaped names differ", in: `{"a":1,"\u0062":2}`, want: map[string]any{"a": n("1"), "b": n("2")}},
	{name: "empty name", in: `{"":0}`, want: map[string]any{"": n("0")}},
	{
		name: "all four whitespace bytes",
		in:   " \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n[ 1 , 2 ] \t\r\n} \t\r\n",
		want: map[string]any{"a": []any{n("1"), n("2")}},
	},
	{name: "max depth of arrays", in: strings.Repeat("[", 256) + strings.Repeat("]", 256), want: nestedArrays(256)},
	{name: "max depth of objects", in: strings.Repeat(`{"a":`, 255) + "{}" + strings.Repeat("}", 255), want: nestedObjects(256)},
	{name: "names alike but different", in: `{"axb":1,"ayb":2,"azb":3,"":4,"a":5,"b":6}`, want: map[string]any{"axb": n("1"), "ayb": n("2"), "azb": n("3"), "": n("4"), "a": n("5"), "b": n("6")}},
	{name: "sixteen members", in: membersDoc(16) + "}", want: membersTree(16)},
	{name: "seventeen members", in: membersDoc(17) + "}", want: membersTree(17)},
	{name: "webhook", in: webhookBody, want: webhookTree()},
}

// invalidTests are documents Parse rejects, with the reason and the offset it
// must report.
var invalidTests = []struct {
	name       string
	in         string
	want       error
	wantOffset int
}{
	// Duplicate member names.
	{name: "duplicate name", in: `{"a":1,"a":2}`, want: strictjson.ErrDuplicateKey, wantOffset: 7},
	{name: "duplicate name with equal values", in: `{"a":1,"a":1}`, want: strictjson.ErrDuplicateKey, wantOffset: 7},
	{name: "duplicate name not adjacent", in: `{"a":1,"b":2,"a":3}`, want: strictjson.ErrDuplicateKey, wantOffset: 13},
	{name: "nested duplicate", in: `{"x":{"a":1,"a":2}}`, want: strictjson.ErrDuplicateKey, wantOffset: 12},
	{name: "duplicate in array element", in: `[{},{"a":1,"a":1}]`, want: strictjson.ErrDuplicateKey, wantOffset: 11},
	{name: "escaped duplicate", in: `{"a":1,"\u0061":2}`, want: strictjson.ErrDuplicateKey, wantOffset: 7},
	{name: "escaped duplicate of raw utf-8", in: `{"é":1,"\u00e9":2}`, want: strictjson.ErrDuplicateKey, wantOffset: 8},
	{name: "surrogate pair duplicate", in: `{"😀":1,"\ud83d\ude00":2}`, want: strictjson.ErrDuplicateKey, wantOffset: 10},
	{name: "duplicate empty name", in: `{"":1,"":2}`, want: strictjson.ErrDuplicateKey, wantOffset: 6},
	{name: "duplicate among names alike", in: `{"axb":1,"ayb":2,"axb":3}`, want: strictjson.ErrDuplicateKey, wantOffset: 17},
	{name: "first repeat reported", in: `{"ab":1,"b":2,"cb":3,"b":4,"ab":5}`, want: strictjson.ErrDuplicateKey, wantOffset: 21},
	{name: "duplicate in sixteen members", in: membersDoc(15) + `,"k3":3}`, want: strictjson.ErrDuplicateKey, wantOffset: len(membersDoc(15)) + 1},
	{name: "duplicate in seventeen members", in: membersDoc(16) + `,"k3":3}`, want: strictjson.ErrDuplicateKey, wantOffset: len(membersDoc(16)) + 1},

	// Invalid UTF-8.
	{name: "invalid byte", in: "\"\xff\"", want: strictjson.ErrInvalidUTF8, wantOffset: 1},
	{name: "overlong slash", in: "\"\xc0\xaf\"", want: strictjson.ErrInvalidUTF8, wantOffset: 1},
	{name: "overlong nul", in: "\"\xe0\x80\x80\"", want: strictjson.ErrInvalidUTF8, wantOffset: 1},
	{name: "encoded high surrogate", in: "\"\xed\xa0\x80\"", want: strictjson.ErrInvalidUTF8, wantOffset: 1},
	{name: "encoded low surrogate", in: "\"\xed\xbf\xbf\"", want: strictjson.ErrInvalidUTF8, wantOffset: 1},
	{name: "above U+10FFFF", in: "\"\xf4\x90\x80\x80\"", want: strictjson.ErrInvalidUTF8, wantOffset: 1},
	{name: "truncated sequence", in: "\"ab\xe2\x82\"", want: strictjson.ErrInvalidUTF8, wantOffset: 3},
	{name: "lone continuation byte", in: "\"a\x80\"", want: strictjson.ErrInvalidUTF8, wantOffset: 2},
	{name: "invalid in name", in: "{\"\xff\":1}", want: strictjson.ErrInvalidUTF8, wantOffset: 2},
	{name: "invalid after escape", in: "\"\\n\xff\"", want: strictjson.ErrInvalidUTF8, wantOffset: 3},

	// Lone surrogate escapes.
	{name: "lone high surrogate", in: `"\ud800"`, want: strictjson.ErrLoneSurrogate, wantOffset: 1},
	{name: "lone low surrogate", in: `"\udc00"`, want: strictjson.ErrLoneSurrogate, wantOffset: 1},
	{name: "high surrogate before other escape", in: `"\ud800\u0041"`, want: strictjson.ErrLoneSurrogate, wantOffset: 1},
	{name: "high surrogate before text", in: `"\ud800x"`, want: strictjson.ErrLoneSurrogate, wantOffset: 1},
	{name: "high surrogate before newline escape", in: `"\ud800\n"`, want: strictjson.ErrLoneSurrogate, wantOffset: 1},
	{name: "two high surrogates", in: `"\uD83D\uD83D"`, want: strictjson.ErrLoneSurrogate, wantOffset: 1},
	{name: "pair reversed", in: `"\ude00\ud83d"`, want: strictjson.ErrLoneSurrogate, wantOffset: 1},
	{name: "high surrogate at the end of text", in: `"ab\uDBFF"`, want: strictjson.ErrLoneSurrogate, wantOffset: 3},
	{name: "lone surrogate in name", in: `{"\udfff":1}`, want: strictjson.ErrLoneSurrogate, wantOffset: 2},

	// Depth.
	{name: "too deep arrays", in: strings.Repeat("[", 257) + strings.Repeat("]", 257), want: strictjson.ErrTooDeep, wantOffset: 256},
	{name: "too deep objects", in: strings.Repeat(`{"a":`, 256) + "{}" + strings.Repeat("}", 256), want: strictjson.ErrTooDeep, wantOffset: 5 * 256},
	{name: "too deep and unclosed", in: strings.Repeat("[", 1000), want: strictjson.ErrTooDeep, wantOffset: 256},

	// Everything else.
	{name: "empty input", in: ``, want: strictjson.ErrSyntax, wantOffset: 0},
	{name: "only whitespace", in: " \n", want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "trailing comma in array", in: `[1,]`, want: strictjson.ErrSyntax, wantOffset: 3},
	{name: "trailing comma in object", in: `{"a":1,}`, want: strictjson.ErrSyntax, wantOffset: 7},
	{name: "leading comma", in: `[,1]`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "double comma", in: `[1,,2]`, want: strictjson.ErrSyntax, wantOffset: 3},
	{name: "missing comma", in: `[1 2]`, want: strictjson.ErrSyntax, wantOffset: 3},
	{name: "missing colon", in: `{"a" 1}`, want: strictjson.ErrSyntax, wantOffset: 5},
	{name: "missing value", in: `{"a":}`, want: strictjson.ErrSyntax, wantOffset: 5},
	{name: "number as name", in: `{1:2}`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "unquoted name", in: `{a:1}`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "single-quoted string", in: `'a'`, want: strictjson.ErrSyntax, wantOffset: 0},
	{name: "single-quoted name", in: `{'a':1}`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "unclosed array", in: `[1`, want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "unclosed object", in: `{"a":1`, want: strictjson.ErrSyntax, wantOffset: 6},
	{name: "unclosed string", in: `"abc`, want: strictjson.ErrSyntax, wantOffset: 4},
	{name: "unclosed escaped string", in: `"a\n`, want: strictjson.ErrSyntax, wantOffset: 4},
	{name: "mismatched brackets", in: `[}`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "extra bracket", in: `[1]]`, want: strictjson.ErrSyntax, wantOffset: 3},
	{name: "leading zero", in: `01`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "negative leading zero", in: `-01`, want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "leading zero in array", in: `[00]`, want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "minus alone", in: `-`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "minus before letter", in: `-a`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "plus sign", in: `+1`, want: strictjson.ErrSyntax, wantOffset: 0},
	{name: "no integer part", in: `.5`, want: strictjson.ErrSyntax, wantOffset: 0},
	{name: "no fraction digits", in: `1.`, want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "no fraction digits before exponent", in: `1.e5`, want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "no exponent digits", in: `1e`, want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "signed exponent without digits", in: `1e+`, want: strictjson.ErrSyntax, wantOffset: 3},
	{name: "exponent sign twice", in: `1e+-1`, want: strictjson.ErrSyntax, wantOffset: 3},
	{name: "hex number", in: `0x10`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "NaN", in: `NaN`, want: strictjson.ErrSyntax, wantOffset: 0},
	{name: "Infinity", in: `Infinity`, want: strictjson.ErrSyntax, wantOffset: 0},
	{name: "negative Infinity", in: `-Infinity`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "capitalised literal", in: `True`, want: strictjson.ErrSyntax, wantOffset: 0},
	{name: "truncated literal", in: `tru`, want: strictjson.ErrSyntax, wantOffset: 3},
	{name: "misspelt literal", in: `nul1`, want: strictjson.ErrSyntax, wantOffset: 3},
	{name: "literal with suffix", in: `falsey`, want: strictjson.ErrSyntax, wantOffset: 5},
	{name: "raw tab in string", in: "\"\t\"", want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "raw newline in string", in: "\"a\nb\"", want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "raw nul in string", in: "\"\x00\"", want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "raw control after escape", in: "\"\\t\x1f\"", want: strictjson.ErrSyntax, wantOffset: 3},
	{name: "invalid escape", in: `"\x41"`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "escaped single quote", in: `"\'"`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "upper-case U escape", in: `"\U0041"`, want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "bad hex digit", in: `"\u12G4"`, want: strictjson.ErrSyntax, wantOffset: 5},
	{name: "short unicode escape", in: `"\u12"`, want: strictjson.ErrSyntax, wantOffset: 5},
	{name: "bad hex in low surrogate", in: `"\ud83d\ude0x"`, want: strictjson.ErrSyntax, wantOffset: 12},
	{name: "backslash at end", in: `"\`, want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "trailing data", in: ` [1] x`, want: strictjson.ErrSyntax, wantOffset: 5},
	{name: "two values", in: `1 2`, want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "two strings", in: `"a""b"`, want: strictjson.ErrSyntax, wantOffset: 3},
	{name: "trailing nul", in: "{}\x00", want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "byte order mark", in: "\xef\xbb\xbf{}", want: strictjson.ErrSyntax, wantOffset: 0},
	{name: "form feed", in: "\f1", want: strictjson.ErrSyntax, wantOffset: 0},
	{name: "vertical tab", in: "1\v", want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "no-break space", in: "[\u00a01]", want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "line separator", in: "[1\u2028]", want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "invalid utf-8 outside string", in: "[\xff]", want: strictjson.ErrSyntax, wantOffset: 1},
	{name: "block comment", in: `/* c */ 1`, want: strictjson.ErrSyntax, wantOffset: 0},
	{name: "line comment after value", in: "1 // c\n", want: strictjson.ErrSyntax, wantOffset: 2},
	{name: "comment inside array", in: `[1/*c*/]`, want: strictjson.ErrSyntax, wantOffset: 2},
}

func TestParse(t *testing.T) {
	for _, tc := range validTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := strictjson.Parse([]byte(tc.in))
			if err != nil {
				t.Fatalf("Parse(%q) error: %v, want nil", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got, treeOpts); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	sentinels := []error{
		strictjson.ErrSyntax,
		strictjson.ErrDuplicateKey,
		strictjson.ErrInvalidUTF8,
		strictjson.ErrLoneSurrogate,
		strictjson.ErrTooDeep,
	}
	for _, tc := range invalidTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := strictjson.Parse([]byte(tc.in))
			if got != nil {
				t.Errorf("Parse(%q) = %#v, want nil", tc.in, got)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse(%q) error: %v, want %v", tc.in, err, tc.want)
			}
			for _, s := range sentinels {
				if s != tc.want && errors.Is(err, s) {
					t.Errorf("Parse(%q) error: %v, also matches %v", tc.in, err, s)
				}
			}
			var se *strictjson.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error: %T, want *strictjson.SyntaxError", tc.in, err)
			}
			if se.Offset != tc.wantOffset {
				t.Errorf("Parse(%q) error offset: %d (%v), want %d", tc.in, se.Offset, err, tc.wantOffset)
			}
		})
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "trailing comma", in: `[1,]`, want: "strictjson: syntax error: trailing comma before ']' at byte offset 3"},
		{name: "duplicate", in: `{"a":1,"\u0061":2}`, want: `strictjson: duplicate object member name: member "a" appears twice at byte offset 7`},
		{name: "invalid utf-8", in: "\"\xc0\xaf\"", want: "strictjson: invalid utf-8 in string: invalid utf-8 sequence starting with byte 0xc0 at byte offset 1"},
		{name: "end of input", in: `{"a":`, want: "strictjson: syntax error: unexpected end of input before value at byte offset 5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := strictjson.Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("Parse(%q) error: nil, want %q", tc.in, tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Parse(%q) error: %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestParseDoesNotAliasInput checks that the tree survives the caller reusing
// its buffer, as a proxy does with pooled body buffers.
func TestParseDoesNotAliasInput(t *testing.T) {
	buf := []byte(`{"name":"abc","esc":"a\nb","n":12}`)
	got, err := strictjson.Parse(buf)
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	for i := range buf {
		buf[i] = 'x'
	}
	want := map[string]any{"name": "abc", "esc": "a\nb", "n": n("12")}
	if diff := cmp.Diff(want, got, treeOpts); diff != "" {
		t.Errorf("tree after overwriting input mismatch (-want +got):\n%s", diff)
	}
}

// TestParseAfterError checks that a parse abandoned deep inside a document
// leaves nothing behind for the next one.
func TestParseAfterError(t *testing.T) {
	for _, bad := range []string{`{"a":[1,{"b":"c\n`, `[[{"x":1,"y":[2,3`, `{"a":1,"b":{"c":2,"c":3}}`} {
		if _, err := strictjson.Parse([]byte(bad)); err == nil {
			t.Fatalf("Parse(%q) error: nil, want an error", bad)
		}
		got, err := strictjson.Parse([]byte(`{"k":[true]}`))
		if err != nil {
			t.Fatalf("Parse after %q error: %v", bad, err)
		}
		want := map[string]any{"k": []any{true}}
		if diff := cmp.Diff(want, got, treeOpts); diff != "" {
			t.Errorf("Parse after %q mismatch (-want +got):\n%s", bad, diff)
		}
	}
}

// TestParseConcurrent runs every table case from many goroutines at once so
// that the race detector sees the pooled parsers shared between them.
func TestParseConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(validTests))
	for range 8 {
		wg.Go(func() {
			for _, tc := range validTests {
				got, err := strictjson.Parse([]byte(tc.in))
				if err != nil || !cmp.Equal(got, tc.want, treeOpts) {
					errs <- tc.name
				}
				_, _ = strictjson.Parse([]byte(invalidTests[len(tc.name)%len(invalidTests)].in))
			}
		})
	}
	wg.Wait()
	close(errs)
	for name := range errs {
		t.Errorf("concurrent Parse of %q: wrong result", name)
	}
}

func nestedArrays(depth int) any {
	var v any = []any{}
	for range depth - 1 {
		v = []any{v}
	}
	return v
}

func nestedObjects(depth int) any {
	var v any = map[string]any{}
	for range depth - 1 {
		v = map[string]any{"a": v}
	}
	return v
}

// membersDoc returns an object of n members "k0":0, "k1":1 and so on,
// without its closing brace.
func membersDoc(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	return "{" + b.String()
}

// membersTree is the tree of membersDoc(n) + "}".
func membersTree(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = json.Number(fmt.Sprint(i))
	}
	return m
}
