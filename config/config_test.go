package config_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/postern-dev/postern/config"
)

// The secrets of the published Standard Webhooks and Svix test vectors.
const (
	secret1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secret2 = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
	// badSecret is not base64; no problem line may repeat it.
	badSecret = "whsec_not!base64?secret-material"
)

func key(tb testing.TB, secret string) []byte {
	tb.Helper()
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// ignoreCompiled leaves the parsed pointer and the compiled schemas, which
// have no comparable form, to their own checks.
var ignoreCompiled = cmpopts.IgnoreFields(config.Config{}, "Pointer", "Schemas")

func TestLoadDefaults(t *testing.T) {
	// The process environment is not read: only the environ argument is.
	t.Setenv("POSTERN_DEDUPE", "redis")
	t.Setenv("POSTERN_SECRETS_FILE", "/nonexistent")

	got, err := config.Load([]string{"POSTERN_SECRETS=" + secret1, "PATH=/usr/bin", "UPSTREAM_URL=http://example.com"})
	if err != nil {
		t.Fatalf("Load error = %v, want nil", err)
	}
	// The defaults of DESIGN.md's configuration table.
	want := config.Config{
		ListenAddr:          ":8090",
		AdminAddr:           ":8091",
		UpstreamURL:         "http://127.0.0.1:8080",
		UpstreamTimeout:     10 * time.Second,
		AllowRemoteUpstream: false,
		Secrets:             secret1,
		SecretsFile:         "",
		TimestampTolerance:  5 * time.Minute,
		MaxBodyBytes:        1048576,
		EventTypePointer:    "/eventType",
		SchemaDir:           "",
		UnknownEvents:       "forward",
		Dedupe:              "memory",
		DedupeTTL:           24 * time.Hour,
		DedupeMaxEntries:    100000,
		ShutdownTimeout:     20 * time.Second,
		LogLevel:            "info",
		AuditBody:           false,
		Engine:              "loop",
		Keys:                [][]byte{key(t, secret1)},
	}
	if diff := cmp.Diff(want, got, ignoreCompiled); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
	if got.Pointer.String() != "/eventType" {
		t.Errorf("Pointer = %q, want %q", got.Pointer.String(), "/eventType")
	}
	if got.Schemas == nil {
		t.Fatal("Schemas = nil, want the built-in set")
	}
	if diff := cmp.Diff([]string{"REFERRAL_CREATED"}, got.Schemas.EventTypes()); diff != "" {
		t.Errorf("built-in event types mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadValues(t *testing.T) {
	dir := t.TempDir()
	keysFile := writeFile(t, dir, "keys", "# current\n"+secret2+"\n\n# previous\n"+secret1+"\n")
	schemas := filepath.Join(dir, "schemas")
	writeFile(t, schemas, "ORDER_PAID.json", `{"type":"object","required":["order"]}`)

	got, err := config.Load([]string{
		"POSTERN_LISTEN_ADDR=127.0.0.1:9000",
		"POSTERN_ADMIN_ADDR=127.0.0.1:9001",
		"POSTERN_UPSTREAM_URL=https://app.internal:8443/hooks",
		"POSTERN_UPSTREAM_TIMEOUT=14s",
		"POSTERN_ALLOW_REMOTE_UPSTREAM=true",
		"POSTERN_SECRETS_FILE=" + keysFile,
		"POSTERN_TIMESTAMP_TOLERANCE=90s",
		"POSTERN_MAX_BODY_BYTES=65536",
		"POSTERN_EVENT_TYPE_POINTER=/meta/type",
		"POSTERN_SCHEMA_DIR=" + schemas,
		"POSTERN_UNKNOWN_EVENTS=ack",
		"POSTERN_DEDUPE=off",
		"POSTERN_DEDUPE_TTL=1h",
		"POSTERN_DEDUPE_MAX_ENTRIES=10",
		"POSTERN_SHUTDOWN_TIMEOUT=5s",
		"POSTERN_LOG_LEVEL=DEBUG",
		"POSTERN_AUDIT_BODY=true",
		"POSTERN_ENGINE=goroutine",
	})
	if err != nil {
		t.Fatalf("Load error = %v, want nil", err)
	}
	want := config.Config{
		ListenAddr:          "127.0.0.1:9000",
		AdminAddr:           "127.0.0.1:9001",
		UpstreamURL:         "https://app.internal:8443/hooks",
		UpstreamTimeout:     14 * time.Second,
		AllowRemoteUpstream: true,
		SecretsFile:         keysFile,
		TimestampTolerance:  90 * time.Second,
		MaxBodyBytes:        65536,
		EventTypePointer:    "/meta/type",
		SchemaDir:           schemas,
		UnknownEvents:       "ack",
		Dedupe:              "off",
		DedupeTTL:           time.Hour,
		DedupeMaxEntries:    10,
		ShutdownTimeout:     5 * time.Second,
		LogLevel:            "DEBUG",
		AuditBody:           true,
		Engine:              "goroutine",
		Keys:                [][]byte{key(t, secret2), key(t, secret1)},
	}
	if diff := cmp.Diff(want, got, ignoreCompiled); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
	if got.Pointer.String() != "/meta/type" {
		t.Errorf("Pointer = %q, want %q", got.Pointer.String(), "/meta/type")
	}
	if got.Schemas == nil {
		t.Fatal("Schemas = nil, want the set from POSTERN_SCHEMA_DIR")
	}
	if diff := cmp.Diff([]string{"ORDER_PAID"}, got.Schemas.EventTypes()); diff != "" {
		t.Errorf("event types mismatch (-want +got):\n%s", diff)
	}
}

// writeFile writes content to dir/name, creating dir, and returns the path.
func writeFile(tb testing.TB, dir, name, content string) string {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// problems returns the problem lines of a Load error, failing the test if
// the error is not a *config.Error or its text is not those lines.
func problems(tb testing.TB, err error) []string {
	tb.Helper()
	if err == nil {
		return nil
	}
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		tb.Fatalf("Load error = %T %v, want *config.Error", err, err)
	}
	if got, want := err.Error(), strings.Join(cerr.Problems, "\n"); got != want {
		tb.Errorf("Error() = %q, want the problems one per line %q", got, want)
	}
	return cerr.Problems
}

// variable returns the variable a problem line names, failing the test if
// the line is not "POSTERN_NAME: what is wrong".
func variable(tb testing.TB, line string) string {
	tb.Helper()
	name, msg, ok := strings.Cut(line, ": ")
	if !ok || !strings.HasPrefix(name, "POSTERN_") || strings.ContainsAny(name, " \n") || strings.TrimSpace(msg) == "" {
		tb.Errorf("problem %q is not \"POSTERN_NAME: what is wrong\"", line)
	}
	if strings.ContainsAny(line, "\r\n") {
		tb.Errorf("problem %q is more than one line", line)
	}
	return name
}

func TestLoadProblems(t *testing.T) {
	dir := t.TempDir()
	badSchemas := filepath.Join(dir, "bad-schemas")
	writeFile(t, badSchemas, "REFERRAL_CREATED.json", `{"type":"object"}`)
	writeFile(t, badSchemas, "ORDER_PAID.json", `{"type":"objekt","minLength":"three"}`)
	notJSON := filepath.Join(dir, "not-json")
	writeFile(t, notJSON, "ORDER_PAID.json", `{"type":`)
	emptyDir := filepath.Join(dir, "empty")
	if err := os.Mkdir(emptyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	goodKeys := writeFile(t, dir, "good-keys", secret1+"\n")
	badKeys := writeFile(t, dir, "bad-keys", secret1+"\n"+badSecret+"\n")

	withSecret := func(kv ...string) []string { return append([]string{"POSTERN_SECRETS=" + secret1}, kv...) }
	tests := []struct {
		name    string
		environ []string
		want    []string // the variables named, in order
		// wantLine, when set, is the exact text of the only problem.
		wantLine string
	}{
		{name: "only secrets", environ: withSecret()},
		{name: "empty value means the default", environ: withSecret("POSTERN_UPSTREAM_TIMEOUT=", "POSTERN_DEDUPE=")},

		{name: "bad duration", environ: withSecret("POSTERN_UPSTREAM_TIMEOUT=ten"), want: []string{"POSTERN_UPSTREAM_TIMEOUT"}},
		{name: "duration without unit", environ: withSecret("POSTERN_TIMESTAMP_TOLERANCE=300"), want: []string{"POSTERN_TIMESTAMP_TOLERANCE"}},
		{name: "zero tolerance", environ: withSecret("POSTERN_TIMESTAMP_TOLERANCE=0s"), want: []string{"POSTERN_TIMESTAMP_TOLERANCE"}},
		{name: "negative body cap", environ: withSecret("POSTERN_MAX_BODY_BYTES=-1"), want: []string{"POSTERN_MAX_BODY_BYTES"}},
		{name: "zero body cap", environ: withSecret("POSTERN_MAX_BODY_BYTES=0"), want: []string{"POSTERN_MAX_BODY_BYTES"}},
		{name: "body cap with unit", environ: withSecret("POSTERN_MAX_BODY_BYTES=1MB"), want: []string{"POSTERN_MAX_BODY_BYTES"}},
		{name: "unknown UNKNOWN_EVENTS", environ: withSecret("POSTERN_UNKNOWN_EVENTS=drop"), want: []string{"POSTERN_UNKNOWN_EVENTS"}},
		{name: "UNKNOWN_EVENTS reject", environ: withSecret("POSTERN_UNKNOWN_EVENTS=reject")},
		{name: "unknown ENGINE", environ: withSecret("POSTERN_ENGINE=epoll"), want: []string{"POSTERN_ENGINE"}},
		{name: "unknown DEDUPE", environ: withSecret("POSTERN_DEDUPE=redis"), want: []string{"POSTERN_DEDUPE"}},
		{name: "zero DEDUPE_TTL", environ: withSecret("POSTERN_DEDUPE_TTL=0s"), want: []string{"POSTERN_DEDUPE_TTL"}},
		{name: "zero DEDUPE_MAX_ENTRIES", environ: withSecret("POSTERN_DEDUPE_MAX_ENTRIES=0"), want: []string{"POSTERN_DEDUPE_MAX_ENTRIES"}},
		{name: "huge DEDUPE_MAX_ENTRIES", environ: withSecret("POSTERN_DEDUPE_MAX_ENTRIES=1000000001"), want: []string{"POSTERN_DEDUPE_MAX_ENTRIES"}},
		{name: "negative SHUTDOWN_TIMEOUT", environ: withSecret("POSTERN_SHUTDOWN_TIMEOUT=-1s"), want: []string{"POSTERN_SHUTDOWN_TIMEOUT"}},
		{name: "unknown LOG_LEVEL", environ: withSecret("POSTERN_LOG_LEVEL=verbose"), want: []string{"POSTERN_LOG_LEVEL"}},
		{name: "bad boolean", environ: withSecret("POSTERN_AUDIT_BODY=yes please"), want: []string{"POSTERN_AUDIT_BODY"}},
		{name: "listen address without port", environ: withSecret("POSTERN_LISTEN_ADDR=8090"), want: []string{"POSTERN_LISTEN_ADDR"}},
		{name: "admin address same as listen", environ: withSecret("POSTERN_ADMIN_ADDR=:8090"), want: []string{"POSTERN_ADMIN_ADDR"}},
		{name: "listen port out of range", environ: withSecret("POSTERN_LISTEN_ADDR=:99999"), want: []string{"POSTERN_LISTEN_ADDR"}},
		{name: "admin port out of range", environ: withSecret("POSTERN_ADMIN_ADDR=127.0.0.1:65536"), want: []string{"POSTERN_ADMIN_ADDR"}},
		{name: "listen port a name", environ: withSecret("POSTERN_LISTEN_ADDR=:http"), want: []string{"POSTERN_LISTEN_ADDR"}},
		{name: "listen port signed", environ: withSecret("POSTERN_LISTEN_ADDR=:+8090"), want: []string{"POSTERN_LISTEN_ADDR"}},
		{name: "listen port empty", environ: withSecret("POSTERN_LISTEN_ADDR=127.0.0.1:"), want: []string{"POSTERN_LISTEN_ADDR"}},
		{name: "highest ports", environ: withSecret("POSTERN_LISTEN_ADDR=:65535", "POSTERN_ADMIN_ADDR=[::1]:65534")},

		{name: "remote IP upstream", environ: withSecret("POSTERN_UPSTREAM_URL=http://10.0.0.5:8080"), want: []string{"POSTERN_UPSTREAM_URL"}},
		{name: "remote name upstream", environ: withSecret("POSTERN_UPSTREAM_URL=http://app.internal:8080"), want: []string{"POSTERN_UPSTREAM_URL"}},
		{name: "unspecified address upstream", environ: withSecret("POSTERN_UPSTREAM_URL=http://0.0.0.0:8080"), want: []string{"POSTERN_UPSTREAM_URL"}},
		{
			name:    "remote upstream with ALLOW_REMOTE_UPSTREAM=false",
			environ: withSecret("POSTERN_UPSTREAM_URL=http://10.0.0.5:8080", "POSTERN_ALLOW_REMOTE_UPSTREAM=false"),
			want:    []string{"POSTERN_UPSTREAM_URL"},
		},
		{name: "remote upstream allowed", environ: withSecret("POSTERN_UPSTREAM_URL=http://10.0.0.5:8080", "POSTERN_ALLOW_REMOTE_UPSTREAM=true")},
		{name: "remote https upstream allowed", environ: withSecret("POSTERN_UPSTREAM_URL=https://app.internal", "POSTERN_ALLOW_REMOTE_UPSTREAM=true")},
		{name: "localhost upstream", environ: withSecret("POSTERN_UPSTREAM_URL=http://localhost:8080")},
		{name: "LOCALHOST upstream", environ: withSecret("POSTERN_UPSTREAM_URL=http://LOCALHOST:8080")},
		{name: "IPv6 loopback upstream", environ: withSecret("POSTERN_UPSTREAM_URL=http://[::1]:8080")},
		{name: "other 127/8 upstream", environ: withSecret("POSTERN_UPSTREAM_URL=http://127.0.0.2:8080/path")},
		{name: "upstream without scheme", environ: withSecret("POSTERN_UPSTREAM_URL=127.0.0.1:8080"), want: []string{"POSTERN_UPSTREAM_URL"}},
		{name: "upstream with other scheme", environ: withSecret("POSTERN_UPSTREAM_URL=ftp://127.0.0.1"), want: []string{"POSTERN_UPSTREAM_URL"}},
		{name: "upstream port out of range", environ: withSecret("POSTERN_UPSTREAM_URL=http://127.0.0.1:99999"), want: []string{"POSTERN_UPSTREAM_URL"}},
		{name: "upstream port 0", environ: withSecret("POSTERN_UPSTREAM_URL=http://127.0.0.1:0"), want: []string{"POSTERN_UPSTREAM_URL"}},
		{name: "upstream with credentials", environ: withSecret("POSTERN_UPSTREAM_URL=http://user:hunter2@127.0.0.1:8080"), want: []string{"POSTERN_UPSTREAM_URL"}},

		{name: "upstream timeout of 15s", environ: withSecret("POSTERN_UPSTREAM_TIMEOUT=15s"), want: []string{"POSTERN_UPSTREAM_TIMEOUT"}},
		{name: "upstream timeout over 15s", environ: withSecret("POSTERN_UPSTREAM_TIMEOUT=1m"), want: []string{"POSTERN_UPSTREAM_TIMEOUT"}},
		{name: "upstream timeout just under 15s", environ: withSecret("POSTERN_UPSTREAM_TIMEOUT=14999ms")},
		{name: "zero upstream timeout", environ: withSecret("POSTERN_UPSTREAM_TIMEOUT=0s"), want: []string{"POSTERN_UPSTREAM_TIMEOUT"}},

		{name: "SECRETS and SECRETS_FILE", environ: withSecret("POSTERN_SECRETS_FILE=" + goodKeys), want: []string{"POSTERN_SECRETS"}},
		{name: "neither SECRETS nor SECRETS_FILE", environ: nil, want: []string{"POSTERN_SECRETS"}},
		{name: "empty SECRETS", environ: []string{"POSTERN_SECRETS="}, want: []string{"POSTERN_SECRETS"}},
		{
			name:     "bad second key",
			environ:  []string{"POSTERN_SECRETS=" + secret1 + "," + badSecret},
			want:     []string{"POSTERN_SECRETS"},
			wantLine: "POSTERN_SECRETS: key 2 is not base64 after whsec_",
		},
		{name: "two keys", environ: []string{"POSTERN_SECRETS=" + secret1 + ", " + secret2}},
		{name: "keys without whsec_", environ: []string{"POSTERN_SECRETS=" + strings.TrimPrefix(secret1, "whsec_")}},
		{
			name:     "upstream is the listener",
			environ:  withSecret("POSTERN_UPSTREAM_URL=http://127.0.0.1:8090/hooks"),
			want:     []string{"POSTERN_UPSTREAM_URL"},
			wantLine: "POSTERN_UPSTREAM_URL: is postern's own POSTERN_LISTEN_ADDR: it must be where the app listens",
		},
		{
			name:     "upstream is the admin listener",
			environ:  withSecret("POSTERN_ADMIN_ADDR=127.0.0.1:9000", "POSTERN_UPSTREAM_URL=http://localhost:9000"),
			want:     []string{"POSTERN_UPSTREAM_URL"},
			wantLine: "POSTERN_UPSTREAM_URL: is postern's own POSTERN_ADMIN_ADDR: it must be where the app listens",
		},
		{
			name:     "upstream on port 80 is the listener",
			environ:  withSecret("POSTERN_LISTEN_ADDR=[::]:80", "POSTERN_UPSTREAM_URL=http://[::1]"),
			want:     []string{"POSTERN_UPSTREAM_URL"},
			wantLine: "POSTERN_UPSTREAM_URL: is postern's own POSTERN_LISTEN_ADDR: it must be where the app listens",
		},
		{name: "upstream on another loopback address", environ: withSecret("POSTERN_LISTEN_ADDR=127.0.0.1:8090", "POSTERN_UPSTREAM_URL=http://127.0.0.2:8090")},
		{
			name:     "upstream is the listener, spelled localhost",
			environ:  withSecret("POSTERN_LISTEN_ADDR=127.0.0.1:8090", "POSTERN_UPSTREAM_URL=http://localhost:8090"),
			want:     []string{"POSTERN_UPSTREAM_URL"},
			wantLine: "POSTERN_UPSTREAM_URL: is postern's own POSTERN_LISTEN_ADDR: it must be where the app listens",
		},
		{
			name:     "admin on the listener's port, all addresses",
			environ:  withSecret("POSTERN_LISTEN_ADDR=127.0.0.1:9000", "POSTERN_ADMIN_ADDR=:9000"),
			want:     []string{"POSTERN_ADMIN_ADDR"},
			wantLine: "POSTERN_ADMIN_ADDR: must differ from POSTERN_LISTEN_ADDR (the same port on the same address)",
		},
		{name: "admin on the listener's port, localhost", environ: withSecret("POSTERN_LISTEN_ADDR=127.0.0.1:9000", "POSTERN_ADMIN_ADDR=localhost:9000"), want: []string{"POSTERN_ADMIN_ADDR"}},
		{name: "admin on the listener's port, other address", environ: withSecret("POSTERN_LISTEN_ADDR=127.0.0.1:9000", "POSTERN_ADMIN_ADDR=127.0.0.2:9000")},
		{
			name:     "listen host with a space",
			environ:  withSecret("POSTERN_LISTEN_ADDR= 127.0.0.1:9000"),
			want:     []string{"POSTERN_LISTEN_ADDR"},
			wantLine: `POSTERN_LISTEN_ADDR: host " 127.0.0.1" is not an IP address or a host name`,
		},
		{
			name:     "listen host an IPv4 address out of range",
			environ:  withSecret("POSTERN_LISTEN_ADDR=256.1.1.1:9000"),
			want:     []string{"POSTERN_LISTEN_ADDR"},
			wantLine: `POSTERN_LISTEN_ADDR: host "256.1.1.1" is not an IP address or a host name`,
		},
		{name: "upstream host all digits", environ: withSecret("POSTERN_UPSTREAM_URL=http://127.1:8080", "POSTERN_ALLOW_REMOTE_UPSTREAM=true"), want: []string{"POSTERN_UPSTREAM_URL"}},
		{name: "admin host a name with digits", environ: withSecret("POSTERN_ADMIN_ADDR=node-1.example2:9000")},
		{name: "admin host not a name", environ: withSecret("POSTERN_ADMIN_ADDR=a b:9000"), want: []string{"POSTERN_ADMIN_ADDR"}},
		{name: "admin on an IPv6 zone", environ: withSecret("POSTERN_ADMIN_ADDR=[fe80::1%eth0]:9000")},
		{name: "upstream on the listener's port, other address", environ: withSecret("POSTERN_LISTEN_ADDR=10.0.0.5:8090", "POSTERN_UPSTREAM_URL=http://127.0.0.1:8090")},
		{name: "keys on lines", environ: []string{"POSTERN_SECRETS=" + secret1 + "\n" + secret2 + "\n"}},
		{
			name:     "keys after a CR",
			environ:  []string{"POSTERN_SECRETS=" + secret1 + "\r" + secret2},
			want:     []string{"POSTERN_SECRETS"},
			wantLine: "POSTERN_SECRETS: key 1 has a space or line break inside it (separate keys with commas or newlines)",
		},
		{name: "trailing comma", environ: []string{"POSTERN_SECRETS=" + secret1 + ","}, want: []string{"POSTERN_SECRETS"}},
		{name: "short key", environ: []string{"POSTERN_SECRETS=whsec_c2hvcnQ="}, want: []string{"POSTERN_SECRETS"}},
		{name: "SECRETS_FILE", environ: []string{"POSTERN_SECRETS_FILE=" + goodKeys}},
		{name: "SECRETS_FILE missing", environ: []string{"POSTERN_SECRETS_FILE=" + filepath.Join(dir, "absent")}, want: []string{"POSTERN_SECRETS_FILE"}},
		{
			name:     "SECRETS_FILE with a bad key",
			environ:  []string{"POSTERN_SECRETS_FILE=" + badKeys},
			want:     []string{"POSTERN_SECRETS_FILE"},
			wantLine: "POSTERN_SECRETS_FILE: key 2 is not base64 after whsec_",
		},

		{name: "schema dir that does not exist", environ: withSecret("POSTERN_SCHEMA_DIR=" + filepath.Join(dir, "absent")), want: []string{"POSTERN_SCHEMA_DIR"}},
		{name: "schema dir is a file", environ: withSecret("POSTERN_SCHEMA_DIR=" + goodKeys), want: []string{"POSTERN_SCHEMA_DIR"}},
		{name: "schema that does not compile", environ: withSecret("POSTERN_SCHEMA_DIR=" + badSchemas), want: []string{"POSTERN_SCHEMA_DIR"}},
		{name: "schema that is not JSON", environ: withSecret("POSTERN_SCHEMA_DIR=" + notJSON), want: []string{"POSTERN_SCHEMA_DIR"}},
		{name: "schema dir without schemas", environ: withSecret("POSTERN_SCHEMA_DIR=" + emptyDir), want: []string{"POSTERN_SCHEMA_DIR"}},
		{name: "pointer without leading slash", environ: withSecret("POSTERN_EVENT_TYPE_POINTER=eventType"), want: []string{"POSTERN_EVENT_TYPE_POINTER"}},
		{name: "pointer with bad escape", environ: withSecret("POSTERN_EVENT_TYPE_POINTER=/a~2b"), want: []string{"POSTERN_EVENT_TYPE_POINTER"}},
		{name: "nested pointer", environ: withSecret("POSTERN_EVENT_TYPE_POINTER=/meta/event~1type")},

		{
			name: "several problems at once",
			environ: []string{
				"POSTERN_SECRETS=" + secret1 + "," + badSecret,
				"POSTERN_UPSTREAM_URL=http://10.0.0.5",
				"POSTERN_UPSTREAM_TIMEOUT=ten",
				"POSTERN_MAX_BODY_BYTES=-1",
				"POSTERN_EVENT_TYPE_POINTER=eventType",
				"POSTERN_SCHEMA_DIR=" + badSchemas,
				"POSTERN_UNKNOWN_EVENTS=drop",
				"POSTERN_DEDUPE=redis",
			},
			want: []string{
				"POSTERN_EVENT_TYPE_POINTER", "POSTERN_MAX_BODY_BYTES", "POSTERN_SCHEMA_DIR", "POSTERN_SECRETS",
				"POSTERN_UNKNOWN_EVENTS", "POSTERN_DEDUPE", "POSTERN_UPSTREAM_TIMEOUT", "POSTERN_UPSTREAM_URL",
			},
		},
		{
			name: "several parse errors at once",
			environ: withSecret(
				"POSTERN_UPSTREAM_TIMEOUT=ten",
				"POSTERN_DEDUPE_MAX_ENTRIES=many",
				"POSTERN_ALLOW_REMOTE_UPSTREAM=yes",
			),
			want: []string{"POSTERN_ALLOW_REMOTE_UPSTREAM", "POSTERN_DEDUPE_MAX_ENTRIES", "POSTERN_UPSTREAM_TIMEOUT"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load(tc.environ)
			lines := problems(t, err)
			var got []string
			for _, line := range lines {
				got = append(got, variable(t, line))
			}
			// Order is not part of the contract; one line per variable is.
			if diff := cmp.Diff(tc.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b }), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("variables named mismatch (-want +got):\n%s\nproblems:\n%s", diff, err)
			}
			if tc.wantLine != "" && (len(lines) != 1 || lines[0] != tc.wantLine) {
				t.Errorf("problems = %q, want exactly %q", lines, tc.wantLine)
			}
			for _, line := range lines {
				for _, s := range secretTexts(tc.environ) {
					if strings.Contains(line, s) {
						t.Errorf("problem %q contains secret text %q", line, s)
					}
				}
			}
		})
	}
}

// secretTexts returns the text of every key set in POSTERN_SECRETS, with and
// without its whsec_ prefix, and the passwords of URLs.
func secretTexts(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		switch name {
		case "POSTERN_SECRETS":
			for s := range strings.SplitSeq(value, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s, strings.TrimPrefix(s, "whsec_"))
				}
			}
		case "POSTERN_UPSTREAM_URL":
			if strings.Contains(value, "hunter2") {
				out = append(out, "hunter2")
			}
		}
	}
	out = append(out, "secret-material", strings.TrimPrefix(secret1, "whsec_"), strings.TrimPrefix(secret2, "whsec_"))
	return slices.DeleteFunc(out, func(s string) bool { return len(s) < 6 })
}

// readmeVariables reads the variable table of the README: rows of the form
// "| `POSTERN_NAME` | `default` | meaning |", where a variable without a
// default has an empty default cell or one without backticks.
func readmeVariables(tb testing.TB, path string) map[string]string {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("reading the README: %v", err)
	}
	vars := map[string]string{}
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "| `POSTERN_") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			tb.Errorf("README row %q has fewer than three cells", line)
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		def := ""
		if c := strings.TrimSpace(cells[2]); len(c) >= 2 && strings.HasPrefix(c, "`") && strings.HasSuffix(c, "`") {
			def = c[1 : len(c)-1]
		}
		if _, dup := vars[name]; dup {
			tb.Errorf("README lists %s twice", name)
		}
		vars[name] = def
	}
	return vars
}

func TestReadmeTableMatchesConfig(t *testing.T) {
	params, err := config.Variables()
	if err != nil {
		t.Fatalf("Variables error = %v", err)
	}
	want := map[string]string{}
	for _, p := range params {
		want[p.Key] = p.DefaultValue
	}
	if len(want) == 0 {
		t.Fatal("Variables returned nothing")
	}
	got := readmeVariables(t, filepath.Join("..", "README.md"))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("README variable table (name: default) differs from the Config struct (-struct +README):\n%s", diff)
	}
}

func TestVariablesSortedAndPrefixed(t *testing.T) {
	params, err := config.Variables()
	if err != nil {
		t.Fatalf("Variables error = %v", err)
	}
	var keys []string
	for _, p := range params {
		keys = append(keys, p.Key)
	}
	want := []string{
		"POSTERN_ADMIN_ADDR", "POSTERN_ALLOW_REMOTE_UPSTREAM", "POSTERN_AUDIT_BODY", "POSTERN_DEDUPE",
		"POSTERN_DEDUPE_MAX_ENTRIES", "POSTERN_DEDUPE_TTL", "POSTERN_ENGINE", "POSTERN_EVENT_TYPE_POINTER", "POSTERN_LISTEN_ADDR",
		"POSTERN_LOG_LEVEL", "POSTERN_MAX_BODY_BYTES", "POSTERN_SCHEMA_DIR", "POSTERN_SECRETS",
		"POSTERN_SECRETS_FILE", "POSTERN_SHUTDOWN_TIMEOUT", "POSTERN_TIMESTAMP_TOLERANCE",
		"POSTERN_UNKNOWN_EVENTS", "POSTERN_UPSTREAM_TIMEOUT", "POSTERN_UPSTREAM_URL",
	}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("Variables keys mismatch (-want +got):\n%s", diff)
	}
}
