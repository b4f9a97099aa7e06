package strictjson

import (
	"encoding/binary"
	"math/bits"
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
	return tree(data, "")
}

// ParseString is Parse for a document held in a string: strings and numbers
// in the tree are slices of s itself, with no copy made.
func ParseString(s string) (any, error) {
	return tree(unsafe.Slice(unsafe.StringData(s), len(s)), s)
}

// ParseString parses s as Parse does, into d: it accepts and refuses the
// same documents with the same errors, and d then holds what Parse's tree
// would. Strings and numbers in d are slices of s where they have no escape.
// On error, d is empty.
func (d *Doc) ParseString(s string) error {
	d.Reset()
	err := parse(d, unsafe.Slice(unsafe.StringData(s), len(s)), s)
	if err != nil {
		d.Reset()
	}
	return err
}

// tree parses into a pooled Doc and builds the value tree from it.
func tree(data []byte, src string) (any, error) {
	d := docs.Get().(*Doc)
	defer func() {
		d.Reset()
		if cap(d.Nodes) <= maxPooledBytes/int(unsafe.Sizeof(Node{})) {
			docs.Put(d)
		}
	}()
	if err := parse(d, data, src); err != nil {
		return nil, err
	}
	return d.Value(0), nil
}

var docs = sync.Pool{New: func() any { return new(Doc) }}

// parse runs a pooled parser over data into d; src is data as a string, or
// "" to have one made when the first string or number needs it.
func parse(d *Doc, data []byte, src string) error {
	p := parsers.Get().(*parser)
	p.src = src
	p.doc = d
	err := p.parse(data)
	p.reset()
	if cap(p.scratch) <= maxPooledBytes && cap(p.keys) <= maxPooledBytes/int(unsafe.Sizeof(member{})) {
		parsers.Put(p)
	}
	return err
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
	// doc receives the values.
	doc *Doc
	// keys holds the member names of the objects being parsed, innermost
	// last, for the check for repeated names.
	keys []member
	// seen is that check's set for objects with many members.
	seen map[string]struct{}
}

// member is an object member name and the offset of its opening quote.
type member struct {
	name string
	off  int
}

// reset drops every reference to the last input so the parser can be pooled.
// The key stack is cleared up to its capacity here, once, rather than each
// time an object is popped off it.
func (p *parser) reset() {
	clear(p.keys[:cap(p.keys)])
	*p = parser{scratch: p.scratch[:0], keys: p.keys[:0]}
}

func (p *parser) parse(data []byte) error {
	p.data = data
	p.skipSpace()
	if err := p.value(); err != nil {
		return err
	}
	p.skipSpace()
	if p.pos < len(p.data) {
		return fail(ErrSyntax, p.pos, "unexpected %s after top-level value", describe(p.data[p.pos]))
	}
	return nil
}

// push appends a value that contains nothing; open uses it for an array or
// object, whose Len and Next close sets.
//
// It sets the new node's fields in place, one by one. Appending a Node{...}
// literal instead builds the node on the stack with 8-byte stores and then
// copies it with 16-byte loads, which the CPU cannot forward from those
// stores: each copy waits for them to reach the cache, a stall that took
// 8-16% of BenchmarkDoc's profile.
func (p *parser) push(kind Kind, text string) {
	nodes := p.doc.Nodes
	if len(nodes) == cap(nodes) {
		nodes = p.grow(nodes)
	}
	nodes = nodes[:len(nodes)+1]
	n := &nodes[len(nodes)-1]
	n.Text, n.Name, n.Len, n.Next, n.Kind = text, "", 0, int32(len(nodes)), kind
	p.doc.Nodes = nodes
}

// grow returns nodes with room for more: twice the capacity, or, once that
// passes half of what the input can hold (every value but the first takes
// at least two bytes: itself and a comma or colon before it), all of it.
// append would grow a large list by a quarter at a time, allocating about
// five times its final size on the way; this allocates at most about
// twice. It is kept out of line so that push, on every value, stays small.
//
//go:noinline
func (p *parser) grow(nodes []Node) []Node {
	c := max(2*cap(nodes), 16)
	if bound := len(p.data)/2 + 1; c > bound/2 {
		c = max(bound, len(nodes)+1)
	}
	next := make([]Node, len(nodes), c)
	copy(next, nodes)
	return next
}

// source returns data[i:j] as a string that shares the parser's one copy of
// the input.
func (p *parser) source(i, j int) string {
	if p.src == "" {
		p.src = string(p.data)
	}
	return p.src[i:j]
}

// skipSpace moves p.pos past any space, tab, LF and CR.
func (p *parser) skipSpace() {
	d, i := p.data, p.pos
	for i < len(d) && isSpace(d[i]) {
		i++
		// Indentation is a run of spaces after a newline. Skip up to 8 of
		// them at once: XORed with 8 spaces, the next 8 bytes have a zero
		// byte for each space, and the zero bytes at the bottom of the
		// word are the spaces that come first. So the loop runs once for
		// most runs, however long, rather than once a byte.
		if len(d)-i >= 8 {
			i += bits.TrailingZeros64(binary.LittleEndian.Uint64(d[i:])^(lsbs*' ')) / 8
		}
	}
	p.pos = i
}

// isSpace reports whether c is JSON whitespace: space, tab, LF or CR.
func isSpace(c byte) bool {
	return c <= ' ' && uint64(1)<<c&(1<<' '|1<<'\t'|1<<'\n'|1<<'\r') != 0
}

// eof is the error for input that ends inside a value.
func (p *parser) eof(where string) error {
	return fail(ErrSyntax, len(p.data), "unexpected end of input %s", where)
}

// value parses the value starting at p.pos, which is not whitespace, and
// appends it to the document.
func (p *parser) value() error {
	if p.pos >= len(p.data) {
		return p.eof("before value")
	}
	switch c := p.data[p.pos]; c {
	case '{':
		return p.object()
	case '[':
		return p.array()
	case '"':
		s, err := p.str()
		if err != nil {
			return err
		}
		p.push(String, s)
		return nil
	case 't':
		p.push(True, "")
		return p.literal("true")
	case 'f':
		p.push(False, "")
		return p.literal("false")
	case 'n':
		p.push(Null, "")
		return p.literal("null")
	default:
		if c == '-' || isDigit(c) {
			return p.number()
		}
		return fail(ErrSyntax, p.pos, "unexpected %s at start of value", describe(c))
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
func (p *parser) number() error {
	d := p.data
	start := p.pos
	i := start
	if d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return p.eof("in number")
	case d[i] == '0':
		i++
		if i < len(d) && isDigit(d[i]) {
			return fail(ErrSyntax, i, "leading zero in number")
		}
	case isDigit(d[i]):
		i = skipDigits(d, i+1)
	default:
		return fail(ErrSyntax, i, "unexpected %s in number, want digit", describe(d[i]))
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) {
			return p.eof("in number")
		}
		if !isDigit(d[i]) {
			return fail(ErrSyntax, i, "unexpected %s after decimal point, want digit", describe(d[i]))
		}
		i = skipDigits(d, i+1)
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) {
			return p.eof("in number")
		}
		if !isDigit(d[i]) {
			return fail(ErrSyntax, i, "unexpected %s in exponent, want digit", describe(d[i]))
		}
		i = skipDigits(d, i+1)
	}
	p.pos = i
	p.push(Number, p.source(start, i))
	return nil
}

func skipDigits(d []byte, i int) int {
	for i < len(d) && isDigit(d[i]) {
		i++
	}
	return i
}

// open appends the array or object starting at p.pos and returns its index.
func (p *parser) open(kind Kind) (int32, error) {
	if p.depth++; p.depth > MaxDepth {
		return 0, fail(ErrTooDeep, p.pos, "more than %d nested arrays and objects", MaxDepth)
	}
	p.pos++
	i := int32(len(p.doc.Nodes))
	p.push(kind, "")
	return i, nil
}

// close ends the array or object at i, which holds n values.
func (p *parser) close(i, n int32) {
	p.pos++
	p.depth--
	p.doc.Nodes[i].Len = n
	p.doc.Nodes[i].Next = int32(len(p.doc.Nodes))
}

func (p *parser) array() error {
	i, err := p.open(Array)
	if err != nil {
		return err
	}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.close(i, 0)
		return nil
	}
	for n := int32(1); ; n++ {
		if err := p.value(); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.eof("in array")
		}
		switch c := p.data[p.pos]; c {
		case ',':
			p.pos++
			p.skipSpace()
			if p.pos < len(p.data) && p.data[p.pos] == ']' {
				return fail(ErrSyntax, p.pos, "trailing comma before ']'")
			}
		case ']':
			p.close(i, n)
			return nil
		default:
			return fail(ErrSyntax, p.pos, "unexpected %s after array element, want ',' or ']'", describe(c))
		}
	}
}

func (p *parser) object() error {
	i, err := p.open(Object)
	if err != nil {
		return err
	}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.close(i, 0)
		return nil
	}
	kbase := len(p.keys)
	for {
		if p.pos >= len(p.data) {
			return p.eof("in object")
		}
		if c := p.data[p.pos]; c != '"' {
			return fail(ErrSyntax, p.pos, "unexpected %s in object, want member name", describe(c))
		}
		off := p.pos
		name, err := p.str()
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.eof("after member name")
		}
		if c := p.data[p.pos]; c != ':' {
			return fail(ErrSyntax, p.pos, "unexpected %s after member name, want ':'", describe(c))
		}
		p.pos++
		p.skipSpace()
		j := len(p.doc.Nodes)
		if err := p.value(); err != nil {
			return err
		}
		p.doc.Nodes[j].Name = name
		p.keys = append(p.keys, member{name: name, off: off})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.eof("in object")
		}
		switch c := p.data[p.pos]; c {
		case ',':
			p.pos++
			p.skipSpace()
			if p.pos < len(p.data) && p.data[p.pos] == '}' {
				return fail(ErrSyntax, p.pos, "trailing comma before '}'")
			}
		case '}':
			if err := p.unique(p.keys[kbase:]); err != nil {
				return err
			}
			p.close(i, int32(len(p.keys)-kbase))
			p.keys = p.keys[:kbase]
			return nil
		default:
			return fail(ErrSyntax, p.pos, "unexpected %s after object member, want ',' or '}'", describe(c))
		}
	}
}
