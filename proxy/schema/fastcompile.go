package schema

import (
	"encoding/json"
	"regexp"
)

// draft2020 is the only $schema the fast path accepts (as compile's default).
const draft2020 = "https://json-schema.org/draft/2020-12/schema"

// compileFast translates doc, a schema as jsonschema.UnmarshalJSON returns
// it, into a fast validator. It returns nil when doc uses a keyword, or a
// keyword value, the fast path does not implement exactly; then the library
// always runs. It must only be given docs the library compiled.
//
// It mirrors compile's configuration: draft 2020-12, format assertion on,
// content assertion off, Go's regexp for patterns. Change both together.
func compileFast(doc any) *node {
	if m, ok := doc.(map[string]any); ok {
		if s, ok := m["$schema"]; ok && s != draft2020 {
			return nil
		}
	}
	n, ok := fastSchema(doc, true)
	if !ok {
		return nil
	}
	return n
}

// fastSchema compiles a schema: a boolean or an object of supported keywords.
func fastSchema(v any, root bool) (*node, bool) {
	switch v := v.(type) {
	case bool:
		return &node{never: !v}, true
	case map[string]any:
		return fastObject(v, root)
	}
	return nil, false
}

// fastObject compiles a schema object keyword by keyword.
func fastObject(m map[string]any, root bool) (*node, bool) {
	n := &node{}
	str := stringRules{minLength: -1, maxLength: -1}
	num := numberRules{}
	obj := objectRules{minProperties: -1, maxProperties: -1}
	arr := arrayRules{minItems: -1, maxItems: -1}
	var hasStr, hasNum, hasObj, hasArr bool
	ok := true
	for k, v := range m {
		switch k {
		case "$schema":
			ok = root // checked by compileFast
		case "title", "description", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly", "$defs":
			// Annotations, and definitions that only a $ref would use.
		case "type":
			n.types, ok = fastTypes(v)
		case "const":
			n.hasConst, n.constVal = true, v
		case "enum":
			n.enum, ok = v.([]any)
			n.hasEnum = true
		case "allOf":
			n.allOf, ok = fastList(v)
		case "anyOf":
			n.anyOf, ok = fastList(v)
		case "oneOf":
			n.oneOf, ok = fastList(v)
		case "not":
			n.not, ok = fastSchema(v, false)
		case "if":
			n.ifNode, ok = fastSchema(v, false)
		case "then":
			n.thenNode, ok = fastSchema(v, false)
		case "else":
			n.elseNode, ok = fastSchema(v, false)

		case "minLength":
			str.minLength, ok = count(v)
			hasStr = true
		case "maxLength":
			str.maxLength, ok = count(v)
			hasStr = true
		case "pattern":
			str.pattern, ok = fastRegexp(v)
			hasStr = true
		case "format":
			// Only date-time; other formats have their own parsers.
			str.dateTime = v == "date-time"
			ok, hasStr = str.dateTime, true

		case "minimum":
			num.minimum, ok = fastDecimal(v)
			hasNum = true
		case "maximum":
			num.maximum, ok = fastDecimal(v)
			hasNum = true
		case "exclusiveMinimum":
			num.exclusiveMinimum, ok = fastDecimal(v)
			hasNum = true
		case "exclusiveMaximum":
			num.exclusiveMaximum, ok = fastDecimal(v)
			hasNum = true

		case "required":
			obj.required, ok = strs(v)
			hasObj = true
		case "properties":
			obj.properties, ok = fastProperties(v)
			hasObj = true
		case "patternProperties":
			obj.patterns, ok = fastPatterns(v)
			hasObj = true
		case "additionalProperties":
			obj.additional, ok = fastSchema(v, false)
			hasObj = true
		case "minProperties":
			obj.minProperties, ok = count(v)
			hasObj = true
		case "maxProperties":
			obj.maxProperties, ok = count(v)
			hasObj = true
		case "dependentRequired":
			obj.dependentRequired, ok = fastDependencies(v)
			hasObj = true
		case "dependentSchemas":
			obj.dependentSchemas, ok = fastProperties(v)
			hasObj = true

		case "prefixItems":
			arr.prefix, ok = fastList(v)
			hasArr = true
		case "items":
			arr.items, ok = fastSchema(v, false)
			hasArr = true
		case "minItems":
			arr.minItems, ok = count(v)
			hasArr = true
		case "maxItems":
			arr.maxItems, ok = count(v)
			hasArr = true

		default:
			// $ref, $id, unevaluated*, contains, uniqueItems, multipleOf,
			// propertyNames, content*, unknown keywords...
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	if n.ifNode == nil {
		n.thenNode, n.elseNode = nil, nil // the library ignores them without if
	}
	if hasStr {
		n.str = &str
	}
	if hasNum {
		n.num = &num
	}
	if hasObj {
		obj.required = mergeRequired(obj.properties, obj.required)
		if obj.additional != nil {
			obj.names = make(map[string]struct{}, len(obj.properties))
			for _, p := range obj.properties {
				obj.names[p.name] = struct{}{}
			}
		}
		n.obj = &obj
	}
	if hasArr {
		n.arr = &arr
	}
	return n, true
}

// fastTypes parses "type": a type name or a list of them.
func fastTypes(v any) (typeSet, bool) {
	names, ok := v.([]any)
	if !ok {
		names = []any{v}
	}
	var ts typeSet
	for _, name := range names {
		var t typeSet
		switch name {
		case "null":
			t = typeNull
		case "boolean":
			t = typeBoolean
		case "object":
			t = typeObject
		case "array":
			t = typeArray
		case "number":
			t = typeNumber
		case "integer":
			t = typeInteger
		case "string":
			t = typeString
		default:
			return 0, false
		}
		ts |= t
	}
	return ts, ts != 0
}

// fastList compiles a non-empty array of schemas.
func fastList(v any) ([]*node, bool) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, false
	}
	out := make([]*node, len(list))
	for i, s := range list {
		if out[i], ok = fastSchema(s, false); !ok {
			return nil, false
		}
	}
	return out, true
}

// fastProperties compiles an object of schemas keyed by member name.
func fastProperties(v any) ([]property, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	out := make([]property, 0, len(m))
	for name, s := range m {
		sch, ok := fastSchema(s, false)
		if !ok {
			return nil, false
		}
		out = append(out, property{name: name, sch: sch})
	}
	return out, true
}

// mergeRequired flags the properties that are required and returns the
// required names left over.
func mergeRequired(props []property, required []string) []string {
	var rest []string
	for _, name := range required {
		found := false
		for i := range props {
			if props[i].name == name {
				props[i].required, found = true, true
			}
		}
		if !found {
			rest = append(rest, name)
		}
	}
	return rest
}

// fastPatterns compiles patternProperties.
func fastPatterns(v any) ([]patternProperty, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	out := make([]patternProperty, 0, len(m))
	for pattern, s := range m {
		re, ok := fastRegexp(pattern)
		if !ok {
			return nil, false
		}
		sch, ok := fastSchema(s, false)
		if !ok {
			return nil, false
		}
		out = append(out, patternProperty{re: re, sch: sch})
	}
	return out, true
}

// fastRegexp compiles a pattern as the library does by default (regexp.Compile).
func fastRegexp(v any) (*regexp.Regexp, bool) {
	s, ok := v.(string)
	if !ok {
		return nil, false
	}
	re, err := regexp.Compile(s)
	return re, err == nil
}

// fastDependencies parses dependentRequired.
func fastDependencies(v any) ([]dependency, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	out := make([]dependency, 0, len(m))
	for name, req := range m {
		names, ok := strs(req)
		if !ok {
			return nil, false
		}
		out = append(out, dependency{name: name, required: names})
	}
	return out, true
}

// strs parses an array of strings.
func strs(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(list))
	for i, s := range list {
		if out[i], ok = s.(string); !ok {
			return nil, false
		}
	}
	return out, true
}

// count parses a non-negative integer written without fraction or
// exponent, small enough that the library reads the same value.
func count(v any) (int, bool) {
	x, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	s := string(x)
	if s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n, ok := digits(s)
	return n, ok
}

// fastDecimal parses a number bound written without an exponent.
func fastDecimal(v any) (*decimal, bool) {
	x, ok := v.(json.Number)
	if !ok {
		return nil, false
	}
	d, ok := parseDecimal(string(x))
	if !ok {
		return nil, false
	}
	return &d, true
}
