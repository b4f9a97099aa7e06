package schema

import (
	"encoding/json"
	"strings"

	"github.com/postern-dev/postern/proxy/strictjson"
)

// typeSet is the set of JSON types a "type" keyword allows.
type typeSet uint8

const (
	typeNull typeSet = 1 << iota
	typeBoolean
	typeObject
	typeArray
	typeNumber
	typeInteger
	typeString
)

// allows reports whether t (not integer) passes the set; an empty set allows all.
func (ts typeSet) allows(t typeSet) bool { return ts == 0 || ts&t != 0 }

// number is the verdict of the set on a number's source text: the library
// counts a number as an integer when its value is whole (1.0 is an integer).
func (ts typeSet) number(text string) verdict {
	if ts.allows(typeNumber) {
		return valid
	}
	if ts&typeInteger == 0 {
		return invalid
	}
	x, ok := parseDecimal(text)
	switch {
	case !ok:
		return unsure
	case x.frac == "":
		return valid
	}
	return invalid
}

// same is valid when the value at index i of d equals c, a constant from a
// schema as jsonschema.UnmarshalJSON returns it, as JSON Schema compares
// them (numbers by value, objects and arrays deeply); invalid when they
// certainly differ; and unsure when a number cannot be compared exactly
// here.
func same(d *strictjson.Doc, i int32, c any) verdict {
	switch x := &d.Nodes[i]; x.Kind {
	case strictjson.Object:
		m, ok := c.(map[string]any)
		if !ok || int(x.Len) != len(m) {
			return invalid
		}
		out := valid
		for k, j := int32(0), i+1; k < x.Len; k, j = k+1, d.Nodes[j].Next {
			cv, ok := m[d.Nodes[j].Name]
			if !ok {
				return invalid
			}
			if out = and(out, same(d, j, cv)); out == invalid {
				return invalid
			}
		}
		return out
	case strictjson.Array:
		a, ok := c.([]any)
		if !ok || int(x.Len) != len(a) {
			return invalid
		}
		out := valid
		for k, j := 0, i+1; k < len(a); k, j = k+1, d.Nodes[j].Next {
			if out = and(out, same(d, j, a[k])); out == invalid {
				return invalid
			}
		}
		return out
	case strictjson.Null:
		return is(c == nil)
	case strictjson.True, strictjson.False:
		b, ok := c.(bool)
		return is(ok && b == (x.Kind == strictjson.True))
	case strictjson.String:
		s, ok := c.(string)
		return is(ok && s == x.Text)
	case strictjson.Number:
		switch c := c.(type) {
		case json.Number:
			dx, okX := parseDecimal(x.Text)
			dc, okC := parseDecimal(string(c))
			if !okX || !okC {
				return unsure
			}
			return is(dx.cmp(dc) == 0)
		case map[string]any, []any, string, bool, nil:
			return invalid
		}
	}
	return unsure
}

// is turns a certain answer into a verdict.
func is(ok bool) verdict {
	if ok {
		return valid
	}
	return invalid
}

// decimal is a JSON number without an exponent, split for exact comparison.
type decimal struct {
	neg  bool
	int  string // digits without leading zeros; "" for zero
	frac string // digits without trailing zeros
}

// parseDecimal parses s as -?(0|[1-9][0-9]*)(\.[0-9]+)?. Anything else,
// exponents included, is not ok: the fast path leaves those to the library.
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	if strings.HasPrefix(s, "-") {
		d.neg, s = true, s[1:]
	}
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 || (i > 1 && s[0] == '0') {
		return decimal{}, false
	}
	d.int = strings.TrimLeft(s[:i], "0")
	s = s[i:]
	if s == "" {
		return d, true
	}
	if s[0] != '.' || len(s) == 1 {
		return decimal{}, false
	}
	for j := 1; j < len(s); j++ {
		if !isDigit(s[j]) {
			return decimal{}, false
		}
	}
	d.frac = strings.TrimRight(s[1:], "0")
	return d, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// sign is -1, 0 or 1; -0 is 0.
func (d decimal) sign() int {
	switch {
	case d.int == "" && d.frac == "":
		return 0
	case d.neg:
		return -1
	}
	return 1
}

// cmp compares d and e by value: -1, 0 or 1.
func (d decimal) cmp(e decimal) int {
	ds, es := d.sign(), e.sign()
	if ds != es || ds == 0 {
		return compare(ds, es)
	}
	m := compare(len(d.int), len(e.int))
	if m == 0 {
		m = strings.Compare(d.int, e.int)
	}
	if m == 0 {
		m = strings.Compare(d.frac, e.frac)
	}
	return ds * m
}

func compare(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// isPlainDateTime reports whether s is YYYY-MM-DDTHH:MM:SS[.F+](Z|±HH:MM)
// with ASCII digits, a year from 0001, a day that exists in its month,
// hours to 23, minutes and seconds to 59 and offset hours to 23. This is a
// subset of what jsonschema/v6's "date-time" format accepts (time.Parse of
// the date, its own parser of the time); leap seconds and the looser forms
// that library takes are left to it.
func isPlainDateTime(s string) bool {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	second, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || second > 59 {
		return false
	}
	rest := s[19:]
	if rest[0] == '.' {
		i := 1
		for i < len(rest) && isDigit(rest[i]) {
			i++
		}
		if i == 1 {
			return false
		}
		rest = rest[i:]
	}
	if rest == "Z" || rest == "z" {
		return true
	}
	if len(rest) != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':' {
		return false
	}
	zh, ok1 := digits(rest[1:3])
	zm, ok2 := digits(rest[4:6])
	return ok1 && ok2 && zh <= 23 && zm <= 59
}

// digits parses s, ASCII digits only.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// daysIn is the number of days in month of year (proleptic Gregorian).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
