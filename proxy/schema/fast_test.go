package schema

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// referralBody is the valid REFERRAL_CREATED body of the proxy tests.
const referralBody = `{"eventType":"REFERRAL_CREATED","eventId":"evt_1","createdAt":"2026-11-26T10:00:00Z","data":{"referralId":"ref_123","customer_type":"INDIVIDUAL","status":"CREATED"}}`

// benchBody is referralBody padded to 1 KiB with a "note" member, as in the
// proxy benchmarks.
var benchBody = func() string {
	pad := strings.Repeat("x", 1024-len(referralBody)-len(`,"note":""`))
	return strings.Replace(referralBody, `"status":"CREATED"}`, `"status":"CREATED","note":"`+pad+`"}`, 1)
}()

// referral builds a REFERRAL_CREATED body with data members dataMembers and
// top-level members extra (both without braces).
func referral(extra, dataMembers string) string {
	if extra != "" {
		extra = "," + extra
	}
	return `{"eventType":"REFERRAL_CREATED"` + extra + `,"data":{` + dataMembers + `}}`
}

const okData = `"referralId":"r","customer_type":"I","status":"CREATED"`

// members is n members "<prefix>0":value, "<prefix>1":value... without braces.
func members(n int, prefix, value string) string {
	list := make([]string, n)
	for k := range list {
		list[k] = strconv.Quote(prefix+strconv.Itoa(k)) + ":" + value
	}
	return strings.Join(list, ",")
}

// fastCases are bodies for the built-in schema and testdata/schemas, with
// the fast path's verdict and the library's decision.
var fastCases = []struct {
	name, eventType, body string
	want                  verdict
	libOK                 bool
}{
	{"referral valid", "REFERRAL_CREATED", referralBody, valid, true},
	{"referral 1 KiB", "REFERRAL_CREATED", benchBody, valid, true},
	{"referral failed with message", "REFERRAL_CREATED", referral("", `"referralId":"r","customer_type":"I","status":"FAILED","message":"m"`), valid, true},
	{"referral extra members", "REFERRAL_CREATED", referral(`"new":1,"x":[1.5e3,null]`, okData+`,"more":{"a":true}`), valid, true},
	{"referral eventId one code point", "REFERRAL_CREATED", referral(`"eventId":"é"`, okData), valid, true},
	{"referral createdAt offset and fraction", "REFERRAL_CREATED", referral(`"createdAt":"2024-02-29T23:59:59.123456+05:30"`, okData), valid, true},
	{"referral createdAt lower case", "REFERRAL_CREATED", referral(`"createdAt":"2026-11-26t10:00:00z"`, okData), valid, true},
	{"referral createdAt leap second", "REFERRAL_CREATED", referral(`"createdAt":"2016-12-31T23:59:60Z"`, okData), unsure, true},
	{"referral createdAt signed hour", "REFERRAL_CREATED", referral(`"createdAt":"2026-11-26T+1:00:00Z"`, okData), unsure, true},
	{"referral createdAt no such day", "REFERRAL_CREATED", referral(`"createdAt":"2026-02-29T10:00:00Z"`, okData), unsure, false},
	{"referral createdAt yesterday", "REFERRAL_CREATED", referral(`"createdAt":"yesterday"`, okData), unsure, false},
	{"referral createdAt a number", "REFERRAL_CREATED", referral(`"createdAt":20261126`, okData), invalid, false},
	{"referral eventId empty", "REFERRAL_CREATED", referral(`"eventId":""`, okData), invalid, false},
	{"referral wrong eventType", "REFERRAL_CREATED", `{"eventType":"OTHER","data":{` + okData + `}}`, invalid, false},
	{"referral no data", "REFERRAL_CREATED", `{"eventType":"REFERRAL_CREATED"}`, invalid, false},
	{"referral data not an object", "REFERRAL_CREATED", `{"eventType":"REFERRAL_CREATED","data":[]}`, invalid, false},
	{"referral no customer_type", "REFERRAL_CREATED", referral("", `"referralId":"r","status":"CREATED"`), invalid, false},
	{"referral unknown status", "REFERRAL_CREATED", referral("", `"referralId":"r","customer_type":"I","status":"PENDING"`), invalid, false},
	{"referral failed without message", "REFERRAL_CREATED", referral("", `"referralId":"r","customer_type":"I","status":"FAILED"`), invalid, false},
	{"referral failed empty message", "REFERRAL_CREATED", referral("", `"referralId":"r","customer_type":"I","status":"FAILED","message":""`), invalid, false},
	{"referral body an array", "REFERRAL_CREATED", `[1]`, invalid, false},
	{"referral members reordered", "REFERRAL_CREATED", `{"data":{"status":"CREATED","customer_type":"I","referralId":"r"},"eventType":"REFERRAL_CREATED"}`, valid, true},

	{"strings valid", "STRINGS", `{"s":"ab","p":"abc_12","d":null,"u":"xyz"}`, valid, true},
	{"strings code points", "STRINGS", `{"s":"ééééé"}`, valid, true},
	{"strings too many code points", "STRINGS", `{"s":"éééééé"}`, invalid, false},
	{"strings too short", "STRINGS", `{"s":"a"}`, invalid, false},
	{"strings pattern mismatch", "STRINGS", `{"p":"abc_1"}`, invalid, false},
	{"strings maxLength ignores numbers", "STRINGS", `{"u":12345}`, valid, true},
	{"strings date-time", "STRINGS", `{"d":"1999-12-31T23:59:59-08:00"}`, valid, true},
	{"strings date-time unsure", "STRINGS", `{"d":"1999-12-31"}`, unsure, false},
	{"strings additional member", "STRINGS", `{"s":"ab","t":1}`, invalid, false},
	{"strings empty object", "STRINGS", `{}`, valid, true},

	{"numbers valid", "NUMBERS", `{"i":10,"n":99.99,"c":1.5,"e":1}`, valid, true},
	{"numbers integer written 1.0", "NUMBERS", `{"i":1.0}`, valid, true},
	{"numbers integer at minimum", "NUMBERS", `{"i":-5}`, valid, true},
	{"numbers integer below minimum", "NUMBERS", `{"i":-6}`, invalid, false},
	{"numbers integer above maximum", "NUMBERS", `{"i":10.000001}`, invalid, false},
	{"numbers not an integer", "NUMBERS", `{"i":2.5}`, invalid, false},
	{"numbers integer with exponent", "NUMBERS", `{"i":1e1}`, unsure, true},
	{"numbers at exclusiveMinimum", "NUMBERS", `{"n":0.5}`, invalid, false},
	{"numbers above exclusiveMinimum", "NUMBERS", `{"n":0.50001}`, valid, true},
	{"numbers at exclusiveMaximum", "NUMBERS", `{"n":100.0}`, invalid, false},
	{"numbers negative zero", "NUMBERS", `{"n":-0}`, invalid, false},
	{"numbers const by value", "NUMBERS", `{"c":1.5000}`, valid, true},
	{"numbers const with exponent", "NUMBERS", `{"c":15e-1}`, unsure, true},
	{"numbers const string", "NUMBERS", `{"c":"1.5"}`, invalid, false},
	{"numbers enum number", "NUMBERS", `{"e":1.0}`, valid, true},
	{"numbers enum string", "NUMBERS", `{"e":"1"}`, valid, true},
	{"numbers enum null", "NUMBERS", `{"e":null}`, valid, true},
	{"numbers enum deep array", "NUMBERS", `{"e":[1,{"a":2}]}`, valid, true},
	{"numbers enum deep object", "NUMBERS", `{"e":{"k":[]}}`, valid, true},
	{"numbers enum miss", "NUMBERS", `{"e":false}`, invalid, false},
	{"numbers enum other number", "NUMBERS", `{"e":2}`, invalid, false},
	{"numbers enum exponent", "NUMBERS", `{"e":1e0}`, unsure, true},
	{"numbers pattern property", "NUMBERS", `{"x-count":3}`, valid, true},
	{"numbers pattern property wrong type", "NUMBERS", `{"x-count":"3"}`, invalid, false},
	{"numbers additional schema", "NUMBERS", `{"other":"s","more":true}`, valid, true},
	{"numbers additional schema fails", "NUMBERS", `{"other":3}`, invalid, false},
	{"numbers 64 members", "NUMBERS", "{" + members(64, "x-", "1") + "}", valid, true},
	{"numbers 65 members", "NUMBERS", "{" + members(65, "x-", "1") + "}", unsure, true},
	{"numbers 65 members one wrong", "NUMBERS", "{" + members(64, "x-", "1") + `,"x-z":"s"}`, unsure, false},

	{"combined then", "COMBINED", `{"kind":"x","a":"s"}`, valid, true},
	{"combined else", "COMBINED", `{"kind":"y","a":1}`, valid, true},
	{"combined then fails", "COMBINED", `{"kind":"x","a":1}`, invalid, false},
	{"combined else fails", "COMBINED", `{"kind":"y","a":1.5}`, invalid, false},
	{"combined else unsure", "COMBINED", `{"kind":"y","a":2e0}`, unsure, true},
	{"combined oneOf none", "COMBINED", `{"kind":"z","a":1}`, invalid, false},
	{"combined anyOf none", "COMBINED", `{"kind":"x","z":1}`, invalid, false},
	{"combined minProperties", "COMBINED", `{"kind":"x"}`, invalid, false},
	{"combined maxProperties", "COMBINED", `{"kind":"y","a":1,"d":1,"e":1,"f":1,"g":1}`, invalid, false},
	{"combined not", "COMBINED", `{"kind":"x","a":"s","forbidden":1}`, invalid, false},
	{"combined dependentRequired", "COMBINED", `{"kind":"y","b":1}`, invalid, false},
	{"combined dependentSchemas", "COMBINED", `{"kind":"y","b":1,"c":true}`, valid, true},
	{"combined dependentSchemas fails", "COMBINED", `{"kind":"y","b":1,"c":"no"}`, invalid, false},
	{"combined not an object", "COMBINED", `"x"`, invalid, false},
	{"combined 65 members", "COMBINED", `{"kind":"x","a":"s",` + members(63, "m", "1") + "}", invalid, false},

	{"arrays prefix", "ARRAYS", `["a",1]`, valid, true},
	{"arrays short", "ARRAYS", `["a"]`, valid, true},
	{"arrays items", "ARRAYS", `["a",1,{"v":1},{}]`, valid, true},
	{"arrays empty", "ARRAYS", `[]`, invalid, false},
	{"arrays prefix fails", "ARRAYS", `["a","b"]`, invalid, false},
	{"arrays false property", "ARRAYS", `["a",1,{"w":1}]`, invalid, false},
	{"arrays maxItems", "ARRAYS", `["a",1,{},{},{}]`, invalid, false},
	{"arrays first item", "ARRAYS", `[1]`, invalid, false},

	{"labels", "LABELS", `{"n_a":1.5,"b":"s"}`, valid, true},
	{"labels pattern fails", "LABELS", `{"n_a":"1.5"}`, invalid, false},
	{"labels 65 members", "LABELS", "{" + members(65, "l", `"v"`) + "}", valid, true},
	{"labels 65 members one wrong", "LABELS", "{" + members(64, "l", `"v"`) + `,"x":1}`, invalid, false},

	{"true schema", "TRUE", `{"a":[1.5e300]}`, valid, true},
	{"false schema", "FALSE", `null`, invalid, false},
}

// testSet compiles the built-in schema and testdata/schemas as one set.
func testSet(t testing.TB) *Set {
	t.Helper()
	fsys := fstest.MapFS{}
	data, err := builtin.ReadFile("REFERRAL_CREATED.json")
	if err != nil {
		t.Fatal(err)
	}
	fsys["REFERRAL_CREATED.json"] = &fstest.MapFile{Data: data}
	names, err := filepath.Glob(filepath.Join("testdata", "schemas", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fsys[filepath.Base(name)] = &fstest.MapFile{Data: data}
	}
	set, err := compile(fsys, "file:///postern/test/")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestFastPath(t *testing.T) {
	set := testSet(t)
	for _, tt := range fastCases {
		t.Run(tt.name, func(t *testing.T) {
			sch := set.schemas[tt.eventType]
			if sch.fast == nil {
				t.Fatalf("%s has no fast validator", tt.eventType)
			}
			doc := parse(t, tt.body)
			got := sch.fast.check(doc, 0)
			libErr := sch.lib.Validate(doc.Value(0))
			if got != tt.want {
				t.Errorf("fast path says %v, want %v", got, tt.want)
			}
			if (libErr == nil) != tt.libOK {
				t.Errorf("library says %v, want ok=%v", libErr, tt.libOK)
			}
			if (got == valid && libErr != nil) || (got == invalid && libErr == nil) {
				t.Errorf("fast path says %v, library says %v", got, libErr)
			}
			if _, _, err := set.Validate(tt.eventType, doc); (err == nil) != tt.libOK {
				t.Errorf("Validate: got %v, want ok=%v", err, tt.libOK)
			}
		})
	}
}

// TestFastPathTaken fails when the built-in schema loses its fast validator
// or the fast path stops deciding the benchmark body on its own.
func TestFastPathTaken(t *testing.T) {
	set, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	sch := set.schemas["REFERRAL_CREATED"]
	if sch.fast == nil {
		t.Fatal("REFERRAL_CREATED has no fast validator")
	}
	doc := parse(t, benchBody)
	if got := sch.fast.check(doc, 0); got != valid {
		t.Fatalf("fast path on the 1 KiB body: got %v, want valid", got)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := set.Validate("REFERRAL_CREATED", doc); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Validate of the 1 KiB body: got %v allocs, want 0", allocs)
	}
}

func TestFastPathUnsupported(t *testing.T) {
	set := testSet(t)
	sch := set.schemas["UNSUPPORTED"]
	if sch.fast != nil {
		t.Fatal("UNSUPPORTED (multipleOf, uniqueItems) has a fast validator")
	}
	tests := []struct {
		name, body, wantDetail string // "" means valid
	}{
		{"valid", `{"n":1.5,"tags":["a","b"]}`, ""},
		{"multipleOf", `{"n":0.3}`, "/n: multipleOf: got 0.3, want 0.5"},
		{"uniqueItems", `{"tags":["a","a"]}`, "/tags: items at 0 and 1 are equal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := set.Validate("UNSUPPORTED", parse(t, tt.body))
			if tt.wantDetail == "" {
				if err != nil {
					t.Errorf("got %v, want valid", err)
				}
				return
			}
			if !errors.Is(err, ErrViolation) || !strings.Contains(err.Error(), tt.wantDetail) {
				t.Errorf("got %v, want a violation with %q", err, tt.wantDetail)
			}
		})
	}
}

// TestCompileFast checks which schemas get a fast validator: any keyword or
// keyword value it does not implement exactly means none.
func TestCompileFast(t *testing.T) {
	tests := []struct {
		name, schema string
		want         bool
	}{
		{"empty", `{}`, true},
		{"annotations", `{"title":"t","description":"d","$comment":"c","examples":[1],"default":2,"deprecated":true,"readOnly":false,"writeOnly":false,"$defs":{"x":{"$ref":"#"}}}`, true},
		{"draft 2020-12", `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"string"}`, true},
		{"draft-07", `{"$schema":"http://json-schema.org/draft-07/schema#","type":"string"}`, false},
		{"$schema below the root", `{"items":{"$schema":"https://json-schema.org/draft/2020-12/schema"}}`, false},
		{"$ref", `{"$defs":{"x":{"type":"string"}},"$ref":"#/$defs/x"}`, false},
		{"$id", `{"$id":"https://example.com/s","type":"string"}`, false},
		{"unknown keyword", `{"x-go-type":"int"}`, false},
		{"other format", `{"format":"email"}`, false},
		{"multipleOf", `{"multipleOf":2}`, false},
		{"uniqueItems", `{"uniqueItems":true}`, false},
		{"contains", `{"contains":{"type":"string"}}`, false},
		{"propertyNames", `{"propertyNames":{"maxLength":3}}`, false},
		{"unevaluatedProperties", `{"unevaluatedProperties":false}`, false},
		{"contentMediaType", `{"contentMediaType":"application/json"}`, false},
		{"minLength written 1.0", `{"minLength":1.0}`, false},
		{"minimum with exponent", `{"minimum":1e3}`, false},
		{"unsupported deep inside", `{"properties":{"a":{"items":{"anyOf":[{"multipleOf":2}]}}}}`, false},
		{"then without if", `{"then":{"type":"string"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(tt.schema)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := compile(fstest.MapFS{"S.json": {Data: []byte(tt.schema)}}, "file:///postern/test/"); err != nil {
				t.Fatalf("the library refuses the schema: %v", err)
			}
			if got := compileFast(doc) != nil; got != tt.want {
				t.Errorf("fast validator: got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPlainDateTime checks the date-time subset against the library's format.
func TestPlainDateTime(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"2026-11-26T10:00:00Z", true},
		{"2026-11-26t10:00:00z", true},
		{"2026-11-26T10:00:00.5+01:00", true},
		{"2024-02-29T00:00:00-23:59", true},
		{"2000-02-29T00:00:00Z", true},
		{"0001-01-01T00:00:00Z", true},
		{"1900-02-29T00:00:00Z", false},
		{"2026-04-31T00:00:00Z", false},
		{"2026-13-01T00:00:00Z", false},
		{"0000-01-01T00:00:00Z", false},
		{"2026-11-26T24:00:00Z", false},
		{"2016-12-31T23:59:60Z", false},
		{"2026-11-26T10:00:00.Z", false},
		{"2026-11-26T10:00:00+24:00", false},
		{"2026-11-26T10:00:00+0100", false},
		{"2026-11-26 10:00:00Z", false},
		{"2026-11-26T10:00:00", false},
		{"2026-11-26T1:00:00Z", false},
	}
	set := formatSet(t)
	for _, tt := range tests {
		if got := isPlainDateTime(tt.s); got != tt.want {
			t.Errorf("isPlainDateTime(%q) = %v, want %v", tt.s, got, tt.want)
		}
		if err := set.schemas["DATE_TIME"].lib.Validate(tt.s); tt.want && err != nil {
			t.Errorf("isPlainDateTime(%q) = true, library says %v", tt.s, err)
		}
	}
}

// formatSet compiles {"format":"date-time"} as DATE_TIME.
func formatSet(t testing.TB) *Set {
	t.Helper()
	set, err := compile(fstest.MapFS{"DATE_TIME.json": {Data: []byte(`{"format":"date-time"}`)}}, "file:///postern/test/")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestDecimal(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"0", "-0", 0},
		{"0.0", "0", 0},
		{"1", "1.000", 0},
		{"1.5", "1.50", 0},
		{"-1", "0", -1},
		{"0.5", "0.51", -1},
		{"0.6", "0.51", 1},
		{"10", "9.99", 1},
		{"-10", "-9.99", -1},
		{"123456789012345678901234567890", "123456789012345678901234567891", -1},
	}
	for _, tt := range tests {
		a, okA := parseDecimal(tt.a)
		b, okB := parseDecimal(tt.b)
		if !okA || !okB {
			t.Errorf("parseDecimal(%q), parseDecimal(%q): ok %v, %v", tt.a, tt.b, okA, okB)
			continue
		}
		if got := a.cmp(b); got != tt.want {
			t.Errorf("cmp(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	for _, s := range []string{"", "-", "01", "1.", ".5", "1e3", "1E3", "+1", "0x10", "1.5.", "1 ", "Inf", "-01"} {
		if _, ok := parseDecimal(s); ok {
			t.Errorf("parseDecimal(%q): ok, want refused", s)
		}
	}
}

// TestUncheckableAt: the first number big.Rat cannot hold, by sorted keys
// and array order, as JSON pointer tokens.
func TestUncheckableAt(t *testing.T) {
	tests := []struct {
		body string
		want string // pointer, "" for none
	}{
		{`{"a":{"b/c":[1,2e9999999]},"z":1e-9999999}`, "/a/b~1c/1"},
		{`[1e999999,1e1000001]`, "/1"},
		{`1e2000000`, "/"},
		{`{"a":1e1000000,"b":[0.5]}`, ""},
	}
	for _, tt := range tests {
		at, ok := uncheckableAt(parse(t, tt.body).Value(0), nil)
		if got := map[bool]string{true: pointer(at)}[ok]; got != tt.want {
			t.Errorf("uncheckableAt(%s) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

// TestHugeNumbers: the library panics on numbers such as 1e2000000 against
// minimum, maximum or multipleOf; Validate answers a violation instead.
func TestHugeNumbers(t *testing.T) {
	set := testSet(t)
	tests := []struct{ eventType, body, at string }{
		{"NUMBERS", `{"n":1e2000000}`, "/n"},
		{"NUMBERS", `{"n":-1e2000000}`, "/n"},
		{"NUMBERS", `{"n":1e-2000000}`, "/n"},
		{"UNSUPPORTED", `{"n":1e2000000}`, "/n"},
		{"NUMBERS", `{"i":1,"n":2e9999999}`, "/n"},
	}
	for _, tt := range tests {
		t.Run(tt.eventType+" "+tt.body, func(t *testing.T) {
			_, known, err := set.Validate(tt.eventType, parse(t, tt.body))
			if !known || !errors.Is(err, ErrViolation) || !strings.Contains(err.Error(), ": "+tt.at+": a number is too large or too small") {
				t.Errorf("got known=%v, %v; want a violation naming the number at %s", known, err, tt.at)
			}
		})
	}
}
