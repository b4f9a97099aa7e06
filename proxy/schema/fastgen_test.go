package schema

import (
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/postern-dev/postern/proxy/strictjson"
)

// FuzzFastPathGenerated builds a schema and a body from the fuzzer's bytes
// with every keyword the fast path implements (and some it does not), so
// that the soundness rule meets many keyword combinations that raw byte
// mutations of a schema rarely reach.
func FuzzFastPathGenerated(f *testing.F) {
	for _, seed := range []string{"", "\x00", "\x01\x02\x03", "\x10\x20\x30\x40\x50\x60\x70", "\xff\xfe\xfd\xfc\xfb\xfa"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &gen{data: data}
		schemaJSON := g.schema(3)
		body := g.value(3)
		var d strictjson.Doc
		if err := d.ParseString(body); err != nil {
			t.Fatalf("generated body %s: %v", body, err)
		}
		set, err := compile(fstest.MapFS{"S.json": {Data: []byte(schemaJSON)}}, "file:///postern/fuzz/")
		if err != nil {
			return // e.g. a maximum below a minimum is fine, but some values are not
		}
		checkSound(t, schemaJSON+" on "+body, set.schemas["S"], &d)
	})
}

// gen turns fuzzer bytes into JSON text: each byte picks one choice, and
// zeros follow the end of the data.
type gen struct {
	data []byte
}

func (g *gen) pick(n int) int {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return int(b) % n
}

func (g *gen) from(choices ...string) string { return choices[g.pick(len(choices))] }

var (
	genNumbers = []string{"0", "-0", "1", "1.0", "1.5", "-2", "10", "1e0", "0.1", "100", "2.50", "-0.5"}
	genStrings = []string{`""`, `"a"`, `"ab"`, `"é"`, `"abc"`, `"ba"`, `"2026-11-26T10:00:00Z"`, `"2016-12-31T23:59:60Z"`, `"2026-02-29T00:00:00Z"`, `"b1"`}
	genNames   = []string{`"a"`, `"b"`, `"c"`}
)

// value is a JSON value of at most depth levels.
func (g *gen) value(depth int) string {
	n := 6
	if depth > 0 {
		n = 8
	}
	switch g.pick(n) {
	case 0:
		return "null"
	case 1:
		return g.from("true", "false")
	case 2, 3:
		return g.from(genNumbers...)
	case 4, 5:
		return g.from(genStrings...)
	case 6:
		items := make([]string, g.pick(4))
		for i := range items {
			items[i] = g.value(depth - 1)
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	var members []string
	for i, name := range genNames {
		if g.pick(2) == 1 || (i == 0 && g.pick(3) == 0) {
			members = append(members, name+":"+g.value(depth-1))
		}
	}
	return "{" + strings.Join(members, ",") + "}"
}

// schema is a schema of at most depth levels of subschemas.
func (g *gen) schema(depth int) string {
	switch g.pick(8) {
	case 0:
		return "true"
	case 1:
		return "false"
	}
	sub := func() string {
		if depth == 0 {
			return g.from("true", "false", "{}")
		}
		return g.schema(depth - 1)
	}
	list := func() string {
		items := make([]string, 1+g.pick(3))
		for i := range items {
			items[i] = sub()
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	small := func() string { return strconv.Itoa(g.pick(4)) }
	keywords := make([]string, g.pick(4))
	for i := range keywords {
		var kv string
		switch g.pick(32) {
		case 0:
			kv = `"type":` + g.from(`"null"`, `"boolean"`, `"object"`, `"array"`, `"number"`, `"integer"`, `"string"`, `["integer","string"]`, `["number","null"]`)
		case 1:
			kv = `"const":` + g.value(2)
		case 2:
			kv = `"enum":[` + g.value(1) + "," + g.value(2) + "]"
		case 3:
			kv = `"required":[` + g.from(genNames...) + "]"
		case 4, 5:
			kv = `"properties":{` + g.from(genNames...) + ":" + sub() + "}"
		case 6:
			kv = `"patternProperties":{` + g.from(`"^a"`, `"b$"`, `"^[ab]+$"`, `"."`) + ":" + sub() + "}"
		case 7:
			kv = `"additionalProperties":` + sub()
		case 8:
			kv = g.from(`"minProperties":`, `"maxProperties":`, `"minItems":`, `"maxItems":`, `"minLength":`, `"maxLength":`) + small()
		case 9:
			kv = `"pattern":` + g.from(`"^a"`, `"b$"`, `"^[ab]+$"`, `"\\d"`, `"^.$"`)
		case 10:
			kv = `"format":"date-time"`
		case 11, 12:
			kv = g.from(`"minimum":`, `"maximum":`, `"exclusiveMinimum":`, `"exclusiveMaximum":`) + g.from(genNumbers...)
		case 13:
			kv = `"allOf":` + list()
		case 14:
			kv = `"anyOf":` + list()
		case 15:
			kv = `"oneOf":` + list()
		case 16:
			kv = `"not":` + sub()
		case 17, 18:
			kv = `"if":` + sub()
		case 19:
			kv = `"then":` + sub()
		case 20:
			kv = `"else":` + sub()
		case 21:
			kv = `"dependentRequired":{` + g.from(genNames...) + ":[" + g.from(genNames...) + "]}"
		case 22:
			kv = `"dependentSchemas":{` + g.from(genNames...) + ":" + sub() + "}"
		case 23:
			kv = `"prefixItems":` + list()
		case 24:
			kv = `"items":` + sub()
		case 25:
			kv = g.from(`"title":"t"`, `"$comment":"c"`, `"default":1`, `"examples":[2]`, `"$defs":{"d":{"type":"string"}}`)
		case 26:
			kv = g.from(`"multipleOf":0.5`, `"uniqueItems":true`, `"contains":true`, `"$ref":"#"`, `"format":"email"`)
		default:
			kv = `"type":` + g.from(`"object"`, `"array"`, `"string"`)
		}
		keywords[i] = kv
	}
	return "{" + strings.Join(keywords, ",") + "}"
}
