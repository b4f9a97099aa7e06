package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/postern-dev/postern/proxy/strictjson"
)

// FuzzParse checks Parse against encoding/json. Parse must accept exactly the
// documents encoding/json accepts, less those I-JSON forbids, and return the
// same tree; every rejection encoding/json does not share must be one of the
// I-JSON reasons, confirmed here by independent means.
func FuzzParse(f *testing.F) {
	for _, tc := range validTests {
		f.Add([]byte(tc.in))
	}
	for _, tc := range invalidTests {
		f.Add([]byte(tc.in))
	}
	for _, in := range inStrings {
		f.Add([]byte(`["abcdefg` + in.raw + `hijklmnop", "` + in.raw + `"]`))
	}
	f.Fuzz(checkParse)
}

// checkParse is the body of FuzzParse.
func checkParse(t *testing.T, data []byte) {
	got, err := strictjson.Parse(data)
	if err != nil {
		checkError(t, data, err)
	}
	gotS, errS := strictjson.ParseString(string(data))
	if fmt.Sprint(errS) != fmt.Sprint(err) {
		t.Fatalf("ParseString(%q) error %v, Parse error %v", data, errS, err)
	}
	if diff := cmp.Diff(got, gotS, treeOpts); diff != "" {
		t.Fatalf("ParseString(%q) and Parse disagree (-Parse +ParseString):\n%s", data, diff)
	}
	checkDoc(t, data, got, err)
	want, refErr := decodeStdlib(data)
	switch {
	case err == nil && refErr != nil:
		t.Fatalf("Parse(%q) accepted a document encoding/json rejects: %v", data, refErr)
	case err == nil:
		if diff := cmp.Diff(want, got, treeOpts); diff != "" {
			t.Fatalf("Parse(%q) and encoding/json disagree (-encoding/json +Parse):\n%s", data, diff)
		}
		dup, depth := walkStdlib(t, data)
		switch {
		case !utf8.Valid(data):
			t.Fatalf("Parse(%q) accepted invalid utf-8", data)
		case hasLoneSurrogate(data):
			t.Fatalf("Parse(%q) accepted a lone surrogate escape", data)
		case dup:
			t.Fatalf("Parse(%q) accepted a duplicate member name", data)
		case depth > strictjson.MaxDepth:
			t.Fatalf("Parse(%q) accepted depth %d", data, depth)
		}
	case refErr == nil:
		// Only I-JSON's own rules may reject what encoding/json accepts.
		dup, depth := walkStdlib(t, data)
		switch {
		case errors.Is(err, strictjson.ErrInvalidUTF8):
			// checkError confirmed the bytes at the offset.
		case errors.Is(err, strictjson.ErrLoneSurrogate):
			// checkError confirmed the escape at the offset.
		case errors.Is(err, strictjson.ErrDuplicateKey):
			if !dup {
				t.Fatalf("Parse(%q) error: %v, but encoding/json finds no duplicate name", data, err)
			}
		case errors.Is(err, strictjson.ErrTooDeep):
			if depth <= strictjson.MaxDepth {
				t.Fatalf("Parse(%q) error: %v, but the depth is %d", data, err, depth)
			}
		default:
			t.Fatalf("Parse(%q) error: %v, but encoding/json accepts it", data, err)
		}
	}
}

// checkDoc checks Doc.ParseString against Parse's tree and error, and the
// Doc's links: every value's Next is past it and inside its container, the
// root's is the end, and Member finds each member of each object.
func checkDoc(t *testing.T, data []byte, want any, wantErr error) {
	t.Helper()
	d := strictjson.Doc{Nodes: make([]strictjson.Node, 3)} // not empty: ParseString resets it
	err := d.ParseString(string(data))
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("Doc.ParseString(%q) error %v, Parse error %v", data, err, wantErr)
	}
	if err != nil {
		if len(d.Nodes) != 0 {
			t.Fatalf("Doc.ParseString(%q) failed but left %d nodes", data, len(d.Nodes))
		}
		return
	}
	if diff := cmp.Diff(want, d.Value(0), treeOpts); diff != "" {
		t.Fatalf("Doc.ParseString(%q) and Parse disagree (-Parse +Doc):\n%s", data, diff)
	}
	if got := d.Nodes[0].Next; int(got) != len(d.Nodes) {
		t.Fatalf("Doc.ParseString(%q): root's Next is %d, want %d", data, got, len(d.Nodes))
	}
	for i, n := range d.Nodes {
		if int(n.Next) <= i || int(n.Next) > len(d.Nodes) {
			t.Fatalf("Doc.ParseString(%q): node %d's Next is %d", data, i, n.Next)
		}
		if n.Kind != strictjson.Object && n.Kind != strictjson.Array {
			if int(n.Next) != i+1 {
				t.Fatalf("Doc.ParseString(%q): leaf %d's Next is %d", data, i, n.Next)
			}
			continue
		}
		j := int32(i + 1)
		for k := int32(0); k < n.Len; k++ {
			if j >= n.Next {
				t.Fatalf("Doc.ParseString(%q): member %d of node %d is outside it", data, k, i)
			}
			if n.Kind == strictjson.Object {
				if m, ok := d.Member(int32(i), d.Nodes[j].Name); !ok || m != j {
					t.Fatalf("Doc.ParseString(%q): Member(%d, %q) = %d, %v; want %d", data, i, d.Nodes[j].Name, m, ok, j)
				}
			}
			j = d.Nodes[j].Next
		}
		if j != n.Next {
			t.Fatalf("Doc.ParseString(%q): node %d's members end at %d, its Next is %d", data, i, j, n.Next)
		}
	}
}

// checkError checks that err is a *SyntaxError with exactly one reason, and
// that the input at its offset shows that reason where it can be seen there.
func checkError(t *testing.T, data []byte, err error) {
	t.Helper()
	var se *strictjson.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("Parse(%q) error: %T %v, want *strictjson.SyntaxError", data, err, err)
	}
	if se.Offset < 0 || se.Offset > len(data) {
		t.Fatalf("Parse(%q) error offset: %d, want within [0, %d]", data, se.Offset, len(data))
	}
	reasons := 0
	for _, s := range []error{strictjson.ErrSyntax, strictjson.ErrDuplicateKey, strictjson.ErrInvalidUTF8, strictjson.ErrLoneSurrogate, strictjson.ErrTooDeep} {
		if errors.Is(err, s) {
			reasons++
		}
	}
	if reasons != 1 {
		t.Fatalf("Parse(%q) error: %v matches %d sentinels, want 1", data, err, reasons)
	}
	at := data[se.Offset:]
	switch {
	case errors.Is(err, strictjson.ErrInvalidUTF8):
		if r, size := utf8.DecodeRune(at); r != utf8.RuneError || size != 1 {
			t.Fatalf("Parse(%q) error: %v, but the bytes there are valid utf-8", data, err)
		}
	case errors.Is(err, strictjson.ErrLoneSurrogate):
		if !bytes.HasPrefix(at, []byte(`\u`)) || !isSurrogate(at[2:]) {
			t.Fatalf("Parse(%q) error: %v, but there is no surrogate escape there", data, err)
		}
		if !hasLoneSurrogate(data) {
			t.Fatalf("Parse(%q) error: %v, but every surrogate escape is paired", data, err)
		}
	case errors.Is(err, strictjson.ErrDuplicateKey):
		if at[0] != '"' {
			t.Fatalf("Parse(%q) error: %v, but there is no member name there", data, err)
		}
	case errors.Is(err, strictjson.ErrTooDeep):
		if d := depthBefore(data[:se.Offset]); d != strictjson.MaxDepth || (at[0] != '[' && at[0] != '{') {
			t.Fatalf("Parse(%q) error: %v, but %d arrays and objects are open there before %q", data, err, d, at[0])
		}
	}
}

// decodeStdlib decodes data as encoding/json does for a whole request body.
func decodeStdlib(data []byte) (any, error) {
	if !json.Valid(data) {
		return nil, errors.New("not valid json")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the value")
	}
	return v, nil
}

// walkStdlib walks the tokens of a document encoding/json accepts and
// reports whether an object repeats a member name (after unescaping) and how
// deep arrays and objects nest.
func walkStdlib(t *testing.T, data []byte) (dup bool, depth int) {
	t.Helper()
	type frame struct {
		names   map[string]bool // nil for an array
		wantKey bool
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // a float64 overflows on numbers that are valid json
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return dup, depth
		}
		if err != nil {
			t.Fatalf("encoding/json Token on %q: %v", data, err)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{names: map[string]bool{}, wantKey: true})
			depth = max(depth, len(stack))
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			depth = max(depth, len(stack))
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if n := len(stack); n > 0 && stack[n-1].wantKey {
				name := tok.(string)
				dup = dup || stack[n-1].names[name]
				stack[n-1].names[name] = true
				stack[n-1].wantKey = false
				continue
			}
		}
		// A value ended: the enclosing object wants its next name.
		if n := len(stack); n > 0 && stack[n-1].names != nil {
			stack[n-1].wantKey = true
		}
	}
}

// hasLoneSurrogate reports whether data holds a \u escape of a surrogate
// that is not half of a high-low pair. Backslashes only occur in strings in
// any prefix Parse accepts, so data is read as a run of escapes and other
// bytes.
func hasLoneSurrogate(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		if i+1 < len(data) && data[i+1] == 'u' && i+6 <= len(data) {
			code := hexValue(data[i+2 : i+6])
			switch {
			case code >= 0xd800 && code <= 0xdbff:
				if rest := data[i+6:]; len(rest) >= 6 && rest[0] == '\\' && rest[1] == 'u' {
					if lo := hexValue(rest[2:6]); lo >= 0xdc00 && lo <= 0xdfff {
						i += 11
						continue
					}
				}
				return true
			case code >= 0xdc00 && code <= 0xdfff:
				return true
			}
		}
		i++ // skip the escaped byte, so `\\` does not start another escape
	}
	return false
}

// isSurrogate reports whether b starts with four hex digits naming a UTF-16
// surrogate.
func isSurrogate(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	code := hexValue(b[:4])
	return code >= 0xd800 && code <= 0xdfff
}

// hexValue decodes four hex digits, or returns -1.
func hexValue(b []byte) int {
	v := 0
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return -1
		}
	}
	return v
}

// depthBefore counts the arrays and objects open at the end of prefix, a
// prefix of a document that is well formed so far.
func depthBefore(prefix []byte) int {
	depth, inString := 0, false
	for i := 0; i < len(prefix); i++ {
		switch c := prefix[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		}
	}
	return depth
}
