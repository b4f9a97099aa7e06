package strictjson

import (
	"encoding/json"
	"sync"
	"unsafe"
)

// MaxDepth is the deepest nesting of arrays and objects Parse accepts. A
// document of MaxDepth nested arrays parses; one more is ErrTooDeep.
const MaxDepth = 256

// maxPooledBytes bounds the buffers a parser keeps between calls, so that one
// large body does not pin its scratch space for the life of the process.
const maxPooledBytes = 64 << 10

// Parse parses data as exactly one I-JSON (RFC 7493) text and returns its value tree:
// map[string]any for objects, []any for arrays, string, json.Number (encoding/json), bool, nil.
//
// Any error is a *SyntaxError wrapping ErrSyntax, ErrDuplicateKey,
// ErrInvalidUTF8, ErrLoneSurrogate or ErrTooDeep. When data has several
// problems, the error is the first one met reading left to right, except that
// a repeated member name is noticed at the '}' closing its object.
//
// Strings and numbers in the tree share one copy of data made by Parse, so
// holding any of them holds that whole copy. data itself is not retained and
// may be reused once Parse returns. Parse is safe for concurrent use.
func Parse(data []byte) (any, error) {
	return parse(data, "")
}

// ParseString is Parse for a document held in a string: strings and numbers
// in the tree are slices of s itself, with no copy made.
func ParseString(s string) (any, error) {
	return parse(unsafe.Slice(unsafe.StringData(s), len(s)), s)
}

// parse runs a pooled parser over data; src is data as a string, or "" to
// have one made when the tree first needs it.
func parse(data []byte, src string) (any, error) {
	p := parsers.Get().(*parser)
	p.src = src
	v, err := p.parse(data)
	p.reset()
	if cap(p.scratch) <= maxPooledBytes && cap(p.vals) <= maxPooledBytes/16 {
		parsers.Put(p)
	}
	return v, err
}

// parsers holds idle parsers so that their stacks and scratch buffer are
// reused across calls; it carries no state between them.
var parsers = sync.Pool{New: func() any { return new(parser) }}

// parser is the state of one Parse call.
type parser struct {
	data []byte
	// src is string(data), made on first use; strings without escapes and
	// numbers are slices of it, so they cost no allocation of their own.
	src   string
	pos   int
	depth int
	// scratch is where strings with escapes are decoded.
	scratch []byte
	// vals holds the elements of the arrays and the member values of the
	// objects being parsed, innermost last; keys holds the member names.
	vals []any
	keys []member
}

// member is an object member name and the offset of its opening quote.
type member struct {
	name string
	off  int
}

// reset drops every reference to the last input so the parser can be pooled.
// The stacks are cleared up to their capacity here, once, rather than each
// time an array or object is popped off them.
func (p *parser) reset() {
	clear(p.vals[:cap(p.vals)])
	clear(p.keys[:cap(p.keys)])
	*p = parser{scratch: p.scratch[:0], vals: p.vals[:0], keys: p.keys[:0]}
}

func (p *parser) parse(data []byte) (any, error) {
	p.data = data
	p.skipSpace()
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.data) {
		return nil, fail(ErrSyntax, p.pos, "unexpected %s after top-level value", describe(p.data[p.pos]))
	}
	return v, nil
}

// source returns data[i:j] as a string that shares the parser's one copy of
// the input.
func (p *parser) source(i, j int) string {
	if p.src == "" {
		p.src = string(p.data)
	}
	return p.src[i:j]
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// eof is the error for input that ends inside a value.
func (p *parser) eof(where string) error {
	return fail(ErrSyntax, len(p.data), "unexpected end of input %s", where)
}

// value parses the value starting at p.pos, which is not whitespace.
func (p *parser) value() (any, error) {
	if p.pos >= len(p.data) {
		return nil, p.eof("before value")
	}
	switch c := p.data[p.pos]; c {
	case '{':
		return p.object()
	case '[':
		return p.array()
	case '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return s, nil
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	default:
		if c == '-' || isDigit(c) {
			return p.number()
		}
		return nil, fail(ErrSyntax, p.pos, "unexpected %s at start of value", describe(c))
	}
}

func (p *parser) literal(lit string) error {
	for k := 0; k < len(lit); k++ {
		i := p.pos + k
		if i >= len(p.data) {
			return p.eof("in literal " + lit)
		}
		if p.data[i] != lit[k] {
			return fail(ErrSyntax, i, "unexpected %s in literal %s", describe(p.data[i]), lit)
		}
	}
	p.pos += len(lit)
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number parses -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and keeps its
// source text.
func (p *parser) number() (any, error) {
	d := p.data
	start := p.pos
	i := start
	if d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return nil, p.eof("in number")
	case d[i] == '0':
		i++
		if i < len(d) && isDigit(d[i]) {
			return nil, fail(ErrSyntax, i, "leading zero in number")
		}
	case isDigit(d[i]):
		i = skipDigits(d, i+1)
	default:
		return nil, fail(ErrSyntax, i, "unexpected %s in number, want digit", describe(d[i]))
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) {
			return nil, p.eof("in number")
		}
		if !isDigit(d[i]) {
			return nil, fail(ErrSyntax, i, "unexpected %s after decimal point, want digit", describe(d[i]))
		}
		i = skipDigits(d, i+1)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) {
			return nil, p.eof("in number")
		}
		if !isDigit(d[i]) {
			return nil, fail(ErrSyntax, i, "unexpected %s in exponent, want digit", describe(d[i]))
		}
		i = skipDigits(d, i+1)
	}
	p.pos = i
	return json.Number(p.source(start, i)), nil
}

func skipDigits(d []byte, i int) int {
	for i < len(d) && isDigit(d[i]) {
		i++
	}
	return i
}

func (p *parser) array() (any, error) {
	if p.depth++; p.depth > MaxDepth {
		return nil, fail(ErrTooDeep, p.pos, "more than %d nested arrays and objects", MaxDepth)
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return []any{}, nil
	}
	base := len(p.vals)
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.vals = append(p.vals, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.eof("in array")
		}
		switch c := p.data[p.pos]; c {
		case ',':
			p.pos++
			p.skipSpace()
			if p.pos < len(p.data) && p.data[p.pos] == ']' {
				return nil, fail(ErrSyntax, p.pos, "trailing comma before ']'")
			}
		case ']':
			p.pos++
			p.depth--
			a := make([]any, len(p.vals)-base)
			copy(a, p.vals[base:])
			p.vals = p.vals[:base]
			return a, nil
		default:
			return nil, fail(ErrSyntax, p.pos, "unexpected %s after array element, want ',' or ']'", describe(c))
		}
	}
}

func (p *parser) object() (any, error) {
	if p.depth++; p.depth > MaxDepth {
		return nil, fail(ErrTooDeep, p.pos, "more than %d nested arrays and objects", MaxDepth)
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return map[string]any{}, nil
	}
	kbase, vbase := len(p.keys), len(p.vals)
	for {
		if p.pos >= len(p.data) {
			return nil, p.eof("in object")
		}
		if c := p.data[p.pos]; c != '"' {
			return nil, fail(ErrSyntax, p.pos, "unexpected %s in object, want member name", describe(c))
		}
		off := p.pos
		name, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.eof("after member name")
		}
		if c := p.data[p.pos]; c != ':' {
			return nil, fail(ErrSyntax, p.pos, "unexpected %s after member name, want ':'", describe(c))
		}
		p.pos++
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.keys = append(p.keys, member{name: name, off: off})
		p.vals = append(p.vals, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.eof("in object")
		}
		switch c := p.data[p.pos]; c {
		case ',':
			p.pos++
			p.skipSpace()
			if p.pos < len(p.data) && p.data[p.pos] == '}' {
				return nil, fail(ErrSyntax, p.pos, "trailing comma before '}'")
			}
		case '}':
			p.pos++
			p.depth--
			return p.buildObject(kbase, vbase)
		default:
			return nil, fail(ErrSyntax, p.pos, "unexpected %s after object member, want ',' or '}'", describe(c))
		}
	}
}

// buildObject pops the members pushed since kbase and vbase into a map sized
// for them, rejecting a name seen twice.
func (p *parser) buildObject(kbase, vbase int) (any, error) {
	keys, vals := p.keys[kbase:], p.vals[vbase:]
	m := make(map[string]any, len(keys))
	for j, k := range keys {
		m[k.name] = vals[j]
		if len(m) != j+1 {
			return nil, fail(ErrDuplicateKey, k.off, "member %q appears twice", k.name)
		}
	}
	p.keys, p.vals = p.keys[:kbase], p.vals[:vbase]
	return m, nil
}
