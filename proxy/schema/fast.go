package schema

import (
	"regexp"
	"unicode/utf8"

	"github.com/postern-dev/postern/proxy/strictjson"
)

// verdict is what the fast path knows about an instance: the library, as
// compile configures it, would certainly accept it, certainly refuse it, or
// must be asked.
type verdict uint8

const (
	unsure  verdict = iota // ask the library
	valid                  // the library certainly accepts
	invalid                // the library certainly refuses
)

// and is the verdict of two keywords that must both hold.
func and(a, b verdict) verdict {
	switch {
	case a == invalid || b == invalid:
		return invalid
	case a == unsure || b == unsure:
		return unsure
	}
	return valid
}

// negate is the verdict of "not".
func negate(v verdict) verdict {
	switch v {
	case valid:
		return invalid
	case invalid:
		return valid
	}
	return unsure
}

// node is one schema of the fast path, compiled once by compileFast. A nil
// rule group means the schema has no keyword of that group.
type node struct {
	never    bool    // the false schema
	types    typeSet // 0: any type
	hasConst bool
	constVal any
	hasEnum  bool
	enum     []any
	str      *stringRules
	num      *numberRules
	obj      *objectRules
	arr      *arrayRules

	allOf, anyOf, oneOf []*node
	not                 *node
	ifNode              *node // then and else apply only with if
	thenNode, elseNode  *node
}

// stringRules are the keywords that apply to strings.
type stringRules struct {
	minLength, maxLength int // -1: absent; counted in code points
	pattern              *regexp.Regexp
	dateTime             bool // format "date-time"
}

// numberRules are the keywords that apply to numbers; nil means absent.
type numberRules struct {
	minimum, maximum                   *decimal
	exclusiveMinimum, exclusiveMaximum *decimal
}

// objectRules are the keywords that apply to objects.
type objectRules struct {
	required          []string            // the required names without a properties entry
	properties        []property          // with the required flag, so that each name is looked up once
	names             map[string]struct{} // property names, set when additional != nil
	patterns          []patternProperty
	additional        *node
	minProperties     int // -1: absent
	maxProperties     int // -1: absent
	dependentRequired []dependency
	dependentSchemas  []property
}

// property is a schema that applies to one member.
type property struct {
	name     string
	sch      *node
	required bool
}

// patternProperty is a schema that applies to the members whose name matches.
type patternProperty struct {
	re  *regexp.Regexp
	sch *node
}

// dependency is a dependentRequired entry: when name is present, so must
// required be.
type dependency struct {
	name     string
	required []string
}

// arrayRules are the keywords that apply to arrays.
type arrayRules struct {
	prefix             []*node
	items              *node // after prefix; nil: absent
	minItems, maxItems int   // -1: absent
}

// maxLookupMembers bounds the members of an object whose names the object
// keywords look up one by one (required, properties, dependentRequired,
// dependentSchemas): each lookup scans the members, so a larger object is
// left to the library rather than costing members × names comparisons.
const maxLookupMembers = 64

// check returns the verdict of n on the value at index i of d.
func (n *node) check(d *strictjson.Doc, i int32) verdict {
	if n.never {
		return invalid
	}
	out := valid
	switch x := &d.Nodes[i]; x.Kind {
	case strictjson.Object:
		if !n.types.allows(typeObject) {
			return invalid
		}
		if n.obj != nil {
			out = n.obj.check(d, i)
		}
	case strictjson.Array:
		if !n.types.allows(typeArray) {
			return invalid
		}
		if n.arr != nil {
			out = n.arr.check(d, i)
		}
	case strictjson.String:
		if !n.types.allows(typeString) {
			return invalid
		}
		if n.str != nil {
			out = n.str.check(x.Text)
		}
	case strictjson.Number:
		out = n.types.number(x.Text)
		if out != invalid && n.num != nil {
			out = and(out, n.num.check(x.Text))
		}
	case strictjson.True, strictjson.False:
		if !n.types.allows(typeBoolean) {
			return invalid
		}
	case strictjson.Null:
		if !n.types.allows(typeNull) {
			return invalid
		}
	default:
		return unsure
	}
	if out == invalid {
		return invalid
	}
	if n.hasConst {
		if out = and(out, same(d, i, n.constVal)); out == invalid {
			return invalid
		}
	}
	if n.hasEnum {
		if out = and(out, n.inEnum(d, i)); out == invalid {
			return invalid
		}
	}
	return and(out, n.applicators(d, i))
}

// inEnum is the verdict of "enum": some member equal to the value at i.
func (n *node) inEnum(d *strictjson.Doc, i int32) verdict {
	out := invalid
	for _, e := range n.enum {
		switch same(d, i, e) {
		case valid:
			return valid
		case unsure:
			out = unsure
		}
	}
	return out
}

// applicators is the verdict of the keywords that apply subschemas to the
// value at i itself.
func (n *node) applicators(d *strictjson.Doc, i int32) verdict {
	out := valid
	for _, s := range n.allOf {
		if out = and(out, s.check(d, i)); out == invalid {
			return invalid
		}
	}
	if len(n.anyOf) > 0 {
		some := invalid
		for _, s := range n.anyOf {
			r := s.check(d, i)
			if r == valid {
				some = valid
				break
			}
			if r == unsure {
				some = unsure
			}
		}
		if out = and(out, some); out == invalid {
			return invalid
		}
	}
	if len(n.oneOf) > 0 {
		matched, unknown := 0, 0
		for _, s := range n.oneOf {
			switch s.check(d, i) {
			case valid:
				matched++
			case unsure:
				unknown++
			}
		}
		one := unsure
		switch {
		case matched > 1:
			one = invalid
		case unknown == 0 && matched == 1:
			one = valid
		case unknown == 0:
			one = invalid
		}
		if out = and(out, one); out == invalid {
			return invalid
		}
	}
	if n.not != nil {
		if out = and(out, negate(n.not.check(d, i))); out == invalid {
			return invalid
		}
	}
	if n.ifNode != nil {
		out = and(out, n.conditional(d, i))
	}
	return out
}

// conditional is the verdict of if/then/else on the value at i.
func (n *node) conditional(d *strictjson.Doc, i int32) verdict {
	branch := func(s *node) verdict {
		if s == nil {
			return valid
		}
		return s.check(d, i)
	}
	switch n.ifNode.check(d, i) {
	case valid:
		return branch(n.thenNode)
	case invalid:
		return branch(n.elseNode)
	}
	if t, e := branch(n.thenNode), branch(n.elseNode); t == e {
		return t
	}
	return unsure
}

// check is the verdict of the string keywords on s.
func (r *stringRules) check(s string) verdict {
	if r.minLength >= 0 || r.maxLength >= 0 {
		n := utf8.RuneCountInString(s)
		if (r.minLength >= 0 && n < r.minLength) || (r.maxLength >= 0 && n > r.maxLength) {
			return invalid
		}
	}
	if r.pattern != nil && !r.pattern.MatchString(s) {
		return invalid
	}
	if r.dateTime && !isPlainDateTime(s) {
		return unsure
	}
	return valid
}

// check is the verdict of the number keywords on a number's source text;
// exponents are unsure.
func (r *numberRules) check(text string) verdict {
	x, ok := parseDecimal(text)
	if !ok {
		return unsure
	}
	if (r.minimum != nil && x.cmp(*r.minimum) < 0) ||
		(r.maximum != nil && x.cmp(*r.maximum) > 0) ||
		(r.exclusiveMinimum != nil && x.cmp(*r.exclusiveMinimum) <= 0) ||
		(r.exclusiveMaximum != nil && x.cmp(*r.exclusiveMaximum) >= 0) {
		return invalid
	}
	return valid
}

// check is the verdict of the object keywords on the object at i. Beyond
// maxLookupMembers members, keywords that look names up are unsure.
func (r *objectRules) check(d *strictjson.Doc, i int32) verdict {
	size := int(d.Nodes[i].Len)
	if (r.minProperties >= 0 && size < r.minProperties) || (r.maxProperties >= 0 && size > r.maxProperties) {
		return invalid
	}
	if size > maxLookupMembers &&
		(len(r.required) > 0 || len(r.properties) > 0 || len(r.dependentRequired) > 0 || len(r.dependentSchemas) > 0) {
		return unsure
	}
	for _, name := range r.required {
		if _, ok := d.Member(i, name); !ok {
			return invalid
		}
	}
	for _, dep := range r.dependentRequired {
		if _, ok := d.Member(i, dep.name); !ok {
			continue
		}
		for _, name := range dep.required {
			if _, ok := d.Member(i, name); !ok {
				return invalid
			}
		}
	}
	out := valid
	for _, p := range r.properties {
		j, ok := d.Member(i, p.name)
		if !ok {
			if p.required {
				return invalid
			}
			continue
		}
		if out = and(out, p.sch.check(d, j)); out == invalid {
			return invalid
		}
	}
	if r.additional != nil || len(r.patterns) > 0 {
		for k, j := int32(0), i+1; k < d.Nodes[i].Len; k, j = k+1, d.Nodes[j].Next {
			name := d.Nodes[j].Name
			_, evaluated := r.names[name]
			for _, p := range r.patterns {
				if p.re.MatchString(name) {
					evaluated = true
					if out = and(out, p.sch.check(d, j)); out == invalid {
						return invalid
					}
				}
			}
			if !evaluated && r.additional != nil {
				if out = and(out, r.additional.check(d, j)); out == invalid {
					return invalid
				}
			}
		}
	}
	for _, dep := range r.dependentSchemas {
		if _, ok := d.Member(i, dep.name); ok {
			if out = and(out, dep.sch.check(d, i)); out == invalid {
				return invalid
			}
		}
	}
	return out
}

// check is the verdict of the array keywords on the array at i.
func (r *arrayRules) check(d *strictjson.Doc, i int32) verdict {
	size := int(d.Nodes[i].Len)
	if (r.minItems >= 0 && size < r.minItems) || (r.maxItems >= 0 && size > r.maxItems) {
		return invalid
	}
	out := valid
	for k, j := 0, i+1; k < size; k, j = k+1, d.Nodes[j].Next {
		s := r.items
		if k < len(r.prefix) {
			s = r.prefix[k]
		}
		if s == nil {
			break
		}
		if out = and(out, s.check(d, j)); out == invalid {
			return invalid
		}
	}
	return out
}

func (v verdict) String() string {
	switch v {
	case valid:
		return "valid"
	case invalid:
		return "invalid"
	}
	return "unsure"
}
