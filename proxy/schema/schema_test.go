package schema

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern-dev/postern/proxy/strictjson"
)

func parse(t testing.TB, s string) any {
	t.Helper()
	doc, err := strictjson.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestEventType(t *testing.T) {
	tests := []struct {
		name, pointer, doc, want string
	}{
		{"top level", "/eventType", `{"eventType":"A"}`, "A"},
		{"nested", "/meta/type", `{"meta":{"type":"B"}}`, "B"},
		{"escaped slash and tilde", "/a~1b/c~0d", `{"a/b":{"c~d":"C"}}`, "C"},
		{"array index", "/events/1", `{"events":["x","D"]}`, "D"},
		{"missing", "/eventType", `{"type":"A"}`, ""},
		{"not a string", "/eventType", `{"eventType":1}`, ""},
		{"empty string", "/eventType", `{"eventType":""}`, ""},
		{"null", "/eventType", `{"eventType":null}`, ""},
		{"body is an array", "/0", `["A"]`, ""},
		{"body is a string", "/eventType", `"A"`, ""},
		{"index with leading zero", "/events/01", `{"events":["x","D"]}`, ""},
		{"index out of range", "/events/2", `{"events":["x","D"]}`, ""},
		{"control character", "/eventType", `{"eventType":"A\r\nX-Evil: 1"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePointer(tt.pointer)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.EventType(parse(t, tt.doc))
			if got != tt.want || (tt.want == "") != errors.Is(err, ErrNoEventType) {
				t.Errorf("got %q, %v, want %q", got, err, tt.want)
			}
		})
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
			known, err := set.Validate("REFERRAL_CREATED", parse(t, tt.doc))
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
	if known, err := set.Validate("OTHER", parse(t, `{}`)); known || err != nil {
		t.Errorf("unknown type: got %v, %v, want false, nil", known, err)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "common.defs"), []byte(`not a schema file`), 0o644)
	os.WriteFile(filepath.Join(dir, "defs.json"), []byte(`{"$defs":{"id":{"type":"string","pattern":"^u_"}}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "USER_CREATED.json"), []byte(`{"type":"object","properties":{"id":{"$ref":"defs.json#/$defs/id"}}}`), 0o644)
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.EventTypes(), ","); got != "USER_CREATED,defs" {
		t.Errorf("event types %q, want USER_CREATED,defs", got)
	}
	if _, err := set.Validate("USER_CREATED", parse(t, `{"id":"x_1"}`)); !errors.Is(err, ErrViolation) {
		t.Errorf("cross-file $ref not applied: got %v", err)
	}
	if _, err := set.Validate("REFERRAL_CREATED", parse(t, `{}`)); err != nil {
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
