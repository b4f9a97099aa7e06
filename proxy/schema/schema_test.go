package schema

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/postern-dev/postern/proxy/strictjson"
)

// parse parses s into a Doc.
func parse(t testing.TB, s string) *strictjson.Doc {
	t.Helper()
	var d strictjson.Doc
	if err := d.ParseString(s); err != nil {
		t.Fatal(err)
	}
	return &d
}

// TestEventType checks EventType on a Doc, and that it agrees with
// refEventType, the walk of the value tree that EventType used to take.
func TestEventType(t *testing.T) {
	tests := []struct {
		name, pointer, doc, want string
	}{
		{"top level", "/eventType", `{"eventType":"A"}`, "A"},
		{"nested", "/meta/type", `{"meta":{"type":"B"}}`, "B"},
		{"escaped slash and tilde", "/a~1b/c~0d", `{"a/b":{"c~d":"C"}}`, "C"},
		{"name a~1b", "/a~01b", `{"a~1b":"E"}`, "E"},
		{"a~1b is a/b", "/a~1b", `{"a~1b":"E"}`, ""},
		{"escape in the body's name", "/ab", `{"a\u0062":"F"}`, "F"},
		{"empty name", "/", `{"":"G"}`, "G"},
		{"later member", "/c", `{"a":{"c":"x"},"b":["c"],"c":"H"}`, "H"},
		{"array index", "/events/1", `{"events":["x","D"]}`, "D"},
		{"index past subtrees", "/e/2", `{"e":[{"a":[1,{"b":"x"}]},[["x"]],"I"]}`, "I"},
		{"index then member", "/e/1/t", `{"e":[{"t":"x"},{"t":"J"}]}`, "J"},
		{"index then index", "/e/1/0", `{"e":[[],["K"]]}`, "K"},
		{"digits name in an object", "/events/1", `{"events":{"1":"L"}}`, "L"},
		{"missing", "/eventType", `{"type":"A"}`, ""},
		{"missing below", "/meta/type", `{"meta":{"kind":"B"}}`, ""},
		{"not a string", "/eventType", `{"eventType":1}`, ""},
		{"boolean", "/eventType", `{"eventType":true}`, ""},
		{"object", "/eventType", `{"eventType":{"a":"A"}}`, ""},
		{"array", "/eventType", `{"eventType":["A"]}`, ""},
		{"empty string", "/eventType", `{"eventType":""}`, ""},
		{"null", "/eventType", `{"eventType":null}`, ""},
		{"token below a string", "/eventType/0", `{"eventType":"A"}`, ""},
		{"body is an array", "/0", `["A"]`, ""},
		{"body is a string", "/eventType", `"A"`, ""},
		{"index with leading zero", "/events/01", `{"events":["x","D"]}`, ""},
		{"index with plus", "/events/+1", `{"events":["x","D"]}`, ""},
		{"index minus zero", "/events/-0", `{"events":["D"]}`, ""},
		{"empty index", "/events/", `{"events":["D"]}`, ""},
		{"index too large for int", "/events/99999999999999999999", `{"events":["D"]}`, ""},
		{"index out of range", "/events/2", `{"events":["x","D"]}`, ""},
		{"control character", "/eventType", `{"eventType":"A\r\nX-Evil: 1"}`, ""},
		{"delete character", "/eventType", `{"eventType":"A\u007f"}`, ""},
		{"leading space", "/eventType", `{"eventType":" REFERRAL_CREATED"}`, ""},
		{"trailing space", "/eventType", `{"eventType":"REFERRAL_CREATED "}`, ""},
		{"C1 control character", "/eventType", `{"eventType":"A\u0085B"}`, ""},
		{"line separator", "/eventType", `{"eventType":"A\u2028B"}`, ""},
		{"space inside", "/eventType", `{"eventType":"A B"}`, "A B"},
		{"beyond ASCII", "/eventType", `{"eventType":"caf\u00e9"}`, "café"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePointer(tt.pointer)
			if err != nil {
				t.Fatal(err)
			}
			d := parse(t, tt.doc)
			got, err := p.EventType(d)
			if got != tt.want || (tt.want == "") != errors.Is(err, ErrNoEventType) {
				t.Errorf("got %q, %v, want %q", got, err, tt.want)
			}
			tokens, _ := refTokens(tt.pointer)
			if ref, _ := refEventType(tokens, d.Value(0)); ref != tt.want {
				t.Errorf("refEventType on the value tree: got %q, want %q", ref, tt.want)
			}
		})
	}
	if _, err := (Pointer{tokens: []string{"a"}}).EventType(&strictjson.Doc{}); !errors.Is(err, ErrNoEventType) {
		t.Errorf("empty Doc: got %v, want %v", err, ErrNoEventType)
	}
}

func TestParsePointerRejects(t *testing.T) {
	for _, s := range []string{"", "eventType", "/a~", "/a~2"} {
		if _, err := ParsePointer(s); err == nil {
			t.Errorf("ParsePointer(%q) = nil error, want an error", s)
		}
	}
}

func TestBuiltinSchema(t *testing.T) {
	set, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, doc  string
		wantDetail string // "" means valid
	}{
		{"created", `{"eventType":"REFERRAL_CREATED","data":{"referralId":"r","customer_type":"INDIVIDUAL","status":"CREATED"}}`, ""},
		{"failed with message", `{"eventType":"REFERRAL_CREATED","data":{"referralId":"r","customer_type":"I","status":"FAILED","message":"m"}}`, ""},
		{"extra fields allowed", `{"eventType":"REFERRAL_CREATED","new":1,"data":{"referralId":"r","customer_type":"I","status":"CREATED","x":[1]}}`, ""},
		{"failed without message", `{"eventType":"REFERRAL_CREATED","data":{"referralId":"r","customer_type":"I","status":"FAILED"}}`, "/data"},
		{"failed with empty message", `{"eventType":"REFERRAL_CREATED","data":{"referralId":"r","customer_type":"I","status":"FAILED","message":""}}`, "/data/message"},
		{"unknown status", `{"eventType":"REFERRAL_CREATED","data":{"referralId":"r","customer_type":"I","status":"PENDING"}}`, "/data/status"},
		{"no customer_type", `{"eventType":"REFERRAL_CREATED","data":{"referralId":"r","status":"CREATED"}}`, "customer_type"},
		{"no data", `{"eventType":"REFERRAL_CREATED"}`, "data"},
		{"bad createdAt", `{"eventType":"REFERRAL_CREATED","createdAt":"yesterday","data":{"referralId":"r","customer_type":"I","status":"CREATED"}}`, "/createdAt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, known, err := set.Validate("REFERRAL_CREATED", parse(t, tt.doc))
			if !known {
				t.Fatal("REFERRAL_CREATED unknown")
			}
			if tt.wantDetail == "" {
				if err != nil {
					t.Errorf("got %v, want valid", err)
				}
				return
			}
			if !errors.Is(err, ErrViolation) || !strings.Contains(err.Error(), tt.wantDetail) {
				t.Errorf("got %v, want a violation naming %q", err, tt.wantDetail)
			}
		})
	}
	if _, known, err := set.Validate("OTHER", parse(t, `{}`)); known || err != nil {
		t.Errorf("unknown type: got %v, %v, want false, nil", known, err)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "common.defs"), []byte(`not a schema file`), 0o644)
	os.WriteFile(filepath.Join(dir, "defs.json"), []byte(`{"$defs":{"id":{"type":"string","pattern":"^u_"}}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "_shared.json"), []byte(`{"$defs":{"name":{"type":"string","minLength":2}}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "USER_CREATED.json"), []byte(`{"type":"object","properties":{"id":{"$ref":"defs.json#/$defs/id"},"name":{"$ref":"_shared.json#/$defs/name"}}}`), 0o644)
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// defs.json is an event type; _shared.json, named with a leading
	// underscore, only holds definitions.
	if got := strings.Join(set.EventTypes(), ","); got != "USER_CREATED,defs" {
		t.Errorf("event types %q, want USER_CREATED,defs", got)
	}
	if _, _, err := set.Validate("USER_CREATED", parse(t, `{"id":"x_1"}`)); !errors.Is(err, ErrViolation) {
		t.Errorf("cross-file $ref not applied: got %v", err)
	}
	if _, _, err := set.Validate("USER_CREATED", parse(t, `{"id":"u_1","name":"x"}`)); !errors.Is(err, ErrViolation) {
		t.Errorf("$ref to an underscore file not applied: got %v", err)
	}
	if _, known, _ := set.Validate("_shared", parse(t, `{}`)); known {
		t.Error("_shared is an event type")
	}
	only := t.TempDir()
	os.WriteFile(filepath.Join(only, "_shared.json"), []byte(`{}`), 0o644)
	if _, err := Load(only); err == nil || !strings.Contains(err.Error(), "no <EVENT_TYPE>.json files") {
		t.Errorf("Load of definitions only: got %v, want no event types", err)
	}
	if _, _, err := set.Validate("REFERRAL_CREATED", parse(t, `{}`)); err != nil {
		t.Errorf("built-in set should be replaced: got %v", err)
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "X.json"), []byte(`{"type":"nonsense"}`), 0o644)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "X.json") {
		t.Errorf("Load of a bad schema: got %v, want an error naming X.json", err)
	}
	if _, err := Load(filepath.Join(bad, "missing")); err == nil {
		t.Error("Load of a missing dir: got nil error")
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("Load of an empty dir: got nil error")
	}
}

// TestValidateName: the name Validate returns does not share the memory it
// was read from, for a known event type (on a valid document and on a
// violation) and for an unknown one.
func TestValidateName(t *testing.T) {
	set, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	valid := `{"eventType":"REFERRAL_CREATED","eventId":"evt_1","createdAt":"2026-11-26T10:00:00Z","data":{"referralId":"ref_1","customer_type":"INDIVIDUAL","status":"CREATED"}}`
	for _, tt := range []struct {
		name, doc string
		known     bool
		violation bool
	}{
		{"REFERRAL_CREATED", valid, true, false},
		{"REFERRAL_CREATED", `{}`, true, true},
		{"NOT_A_KNOWN_TYPE", `{}`, false, false},
	} {
		buf := []byte(tt.name)
		read := unsafe.String(unsafe.SliceData(buf), len(buf)) // as strictjson reads a body
		own, known, err := set.Validate(read, parse(t, tt.doc))
		for i := range buf {
			buf[i] = 'x'
		}
		if own != tt.name || known != tt.known || errors.Is(err, ErrViolation) != tt.violation {
			t.Errorf("Validate(%q, %s) = %q, %v, %v after its source changed; want %q, %v, violation %v",
				tt.name, tt.doc, own, known, err, tt.name, tt.known, tt.violation)
		}
	}
}
