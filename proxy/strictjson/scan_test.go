package strictjson_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/postern-dev/postern/proxy/strictjson"
)

// Strings and whitespace are scanned 8 bytes at a time while 8 remain. The
// tests here put what those scans must stop at, or must not stop at, at each
// offset of the first two words, and end strings and documents at and around
// word boundaries, so that every byte is seen both by a word and by the
// byte-at-a-time loop for the last few bytes of the input.

// inString is text placed inside a string: raw as it is in the document,
// and either dec, what it decodes to, or err, the reason it is refused at
// its first byte.
type inString struct {
	name string
	raw  string
	dec  string
	err  error
}

var inStrings = []inString{
	{name: "escaped quote", raw: `\"`, dec: `"`},
	{name: "escaped backslash", raw: `\\`, dec: `\`},
	{name: "escaped newline", raw: `\n`, dec: "\n"},
	{name: "unicode escape", raw: `\u00e9`, dec: "é"},
	{name: "surrogate pair escape", raw: `\ud83d\ude00`, dec: "😀"},
	{name: "space", raw: " ", dec: " "},
	{name: "bytes next to quote and backslash", raw: "!#[]", dec: "!#[]"},
	{name: "del", raw: "\x7f", dec: "\x7f"},
	{name: "2-byte utf-8", raw: "é", dec: "é"},
	{name: "3-byte utf-8", raw: "€", dec: "€"},
	{name: "4-byte utf-8", raw: "😀", dec: "😀"},
	{name: "nul", raw: "\x00", err: strictjson.ErrSyntax},
	{name: "tab", raw: "\t", err: strictjson.ErrSyntax},
	{name: "newline", raw: "\n", err: strictjson.ErrSyntax},
	{name: "unit separator", raw: "\x1f", err: strictjson.ErrSyntax},
	{name: "invalid escape", raw: `\x`, err: strictjson.ErrSyntax},
	{name: "lone surrogate escape", raw: `\udc00`, err: strictjson.ErrLoneSurrogate},
	{name: "lone continuation byte", raw: "\x80", err: strictjson.ErrInvalidUTF8},
	{name: "byte 0xff", raw: "\xff", err: strictjson.ErrInvalidUTF8},
	{name: "overlong slash", raw: "\xc0\xaf", err: strictjson.ErrInvalidUTF8},
	{name: "encoded surrogate", raw: "\xed\xa0\x80", err: strictjson.ErrInvalidUTF8},
	{name: "truncated sequence", raw: "\xe2\x82", err: strictjson.ErrInvalidUTF8},
}

// stringLayouts put a string s into a document at offset at, and give the
// tree of the document when s decodes to v.
var stringLayouts = []struct {
	name string
	doc  func(s string) string
	at   int
	tree func(v string) any
}{
	{
		name: "alone",
		doc:  func(s string) string { return s },
		tree: func(v string) any { return v },
	},
	{
		name: "in array",
		doc:  func(s string) string { return "[" + s + `,"after"]` },
		at:   1,
		tree: func(v string) any { return []any{v, "after"} },
	},
	{
		name: "member name",
		doc:  func(s string) string { return "{" + s + ":0}" },
		at:   1,
		tree: func(v string) any { return map[string]any{v: n("0")} },
	},
}

// TestStringWordEdges puts each of inStrings at offsets 0-15 of a string of
// more than 16 bytes, after plain text or after an escape (which moves the
// scan into the decoding loop).
func TestStringWordEdges(t *testing.T) {
	const text = "abcdefghijklmnopqrstuvwxyz"
	for _, lay := range stringLayouts {
		for _, lead := range []struct{ raw, dec string }{{"", ""}, {`\/`, "/"}} {
			for _, in := range inStrings {
				for k := range 16 {
					raw := lead.raw + text[:k] + in.raw + text[k:]
					doc := lay.doc(`"` + raw + `"`)
					name := fmt.Sprintf("%s/lead %q/%s at %d", lay.name, lead.raw, in.name, k)
					t.Run(name, func(t *testing.T) {
						if in.err != nil {
							checkRejects(t, doc, in.err, lay.at+1+len(lead.raw)+k)
							return
						}
						checkAccepts(t, doc, lay.tree(lead.dec+text[:k]+in.dec+text[k:]))
					})
				}
			}
		}
	}
}

// TestStringLengths ends strings of every length up to 40 before, on and
// after a word boundary, closed and unclosed, with plain text and with a
// multi-byte rune or an escape as the last thing in them.
func TestStringLengths(t *testing.T) {
	for _, lay := range stringLayouts {
		for _, last := range []struct{ raw, dec string }{{"", ""}, {"é", "é"}, {"😀", "😀"}, {`\t`, "\t"}} {
			for size := range 41 {
				text := strings.Repeat("x", size)
				name := fmt.Sprintf("%s/%d bytes then %q", lay.name, size, last.raw)
				t.Run(name, func(t *testing.T) {
					checkAccepts(t, lay.doc(`"`+text+last.raw+`"`), lay.tree(text+last.dec))
				})
				if lay.name == "alone" {
					t.Run(name+"/unclosed", func(t *testing.T) {
						doc := `"` + text + last.raw
						checkRejects(t, doc, strictjson.ErrSyntax, len(doc))
					})
				}
			}
		}
	}
}

// TestWhitespaceRuns puts runs of whitespace, indentation most of all,
// between every two tokens and at the end of the document, and checks that a
// byte that is not JSON whitespace is refused wherever it is in a run.
func TestWhitespaceRuns(t *testing.T) {
	var runs []string
	for size := range 20 {
		spaces := strings.Repeat(" ", size)
		runs = append(runs, spaces, "\n"+spaces, "\r\n"+spaces+"\t", spaces+"\n"+spaces)
	}
	runs = append(runs, "\t\t\t\t\t\t\t\t\t\t", " \t \n  \r   \t    \n        ")
	for _, ws := range runs {
		t.Run(fmt.Sprintf("%q", ws), func(t *testing.T) {
			doc := ws + "{" + ws + `"a"` + ws + ":" + ws + "[" + ws + "1" + ws + "," + ws + "2" + ws + "]" + ws + "}" + ws
			checkAccepts(t, doc, map[string]any{"a": []any{n("1"), n("2")}})
		})
	}
	for _, bad := range []string{"\f", "\v", "\x00", "\u00a0", "x"} {
		for k := range 17 {
			ws := "\n" + strings.Repeat(" ", 16)
			for _, lay := range []struct {
				name string
				doc  func(ws string) string
				at   int
			}{
				{name: "before value", doc: func(ws string) string { return "[" + ws + "1]" }, at: 1},
				{name: "at end", doc: func(ws string) string { return "1" + ws }, at: 1},
			} {
				t.Run(fmt.Sprintf("%s/%q at %d", lay.name, bad, k), func(t *testing.T) {
					checkRejects(t, lay.doc(ws[:k]+bad+ws[k:]), strictjson.ErrSyntax, lay.at+k)
				})
			}
		}
	}
}

// checkAccepts checks that Parse, ParseString and Doc.ParseString all return
// the tree want for doc.
func checkAccepts(t *testing.T, doc string, want any) {
	t.Helper()
	got, err := strictjson.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse(%q) error: %v, want nil", doc, err)
	}
	if diff := cmp.Diff(want, got, treeOpts); diff != "" {
		t.Fatalf("Parse(%q) mismatch (-want +got):\n%s", doc, diff)
	}
	gotS, err := strictjson.ParseString(doc)
	if err != nil {
		t.Fatalf("ParseString(%q) error: %v, want nil", doc, err)
	}
	if diff := cmp.Diff(want, gotS, treeOpts); diff != "" {
		t.Fatalf("ParseString(%q) mismatch (-want +got):\n%s", doc, diff)
	}
	var d strictjson.Doc
	if err := d.ParseString(doc); err != nil {
		t.Fatalf("Doc.ParseString(%q) error: %v, want nil", doc, err)
	}
	if diff := cmp.Diff(want, d.Value(0), treeOpts); diff != "" {
		t.Fatalf("Doc.ParseString(%q) mismatch (-want +got):\n%s", doc, diff)
	}
}

// checkRejects checks that Parse, ParseString and Doc.ParseString all refuse
// doc for the reason want at offset wantOffset, with the same message.
func checkRejects(t *testing.T, doc string, want error, wantOffset int) {
	t.Helper()
	got, err := strictjson.Parse([]byte(doc))
	if got != nil {
		t.Errorf("Parse(%q) = %#v, want nil", doc, got)
	}
	var se *strictjson.SyntaxError
	if !errors.As(err, &se) || !errors.Is(err, want) {
		t.Fatalf("Parse(%q) error: %v, want a *strictjson.SyntaxError for %v", doc, err, want)
	}
	if se.Offset != wantOffset {
		t.Fatalf("Parse(%q) error offset: %d (%v), want %d", doc, se.Offset, err, wantOffset)
	}
	if _, errS := strictjson.ParseString(doc); fmt.Sprint(errS) != err.Error() {
		t.Fatalf("ParseString(%q) error: %v, want %v", doc, errS, err)
	}
	var d strictjson.Doc
	if errD := d.ParseString(doc); fmt.Sprint(errD) != err.Error() {
		t.Fatalf("Doc.ParseString(%q) error: %v, want %v", doc, errD, err)
	}
}
