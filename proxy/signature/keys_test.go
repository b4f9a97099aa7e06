package signature_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/postern-dev/postern/proxy/signature"
)

// rawKey decodes the base64 part of a whsec_ secret, independently of ParseSecrets.
func rawKey(tb testing.TB, secret string) []byte {
	tb.Helper()
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		tb.Fatalf("decode %q: %v", secret, err)
	}
	return k
}

// badSecret is not base64; its text must never appear in an error.
const badSecret = "whsec_not!base64?secret-material"

// TestSplitSecrets: POSTERN_SECRETS takes commas or one key per line, as a
// Secret mounted as a variable holds a rotated pair.
func TestSplitSecrets(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{in: "a", want: []string{"a"}},
		{in: "a,b", want: []string{"a", "b"}},
		{in: "a\nb\n", want: []string{"a\n", "b\n"}},
		{in: "a\r\nb", want: []string{"a\r\n", "b"}},
		{in: "a\n\n  \nb,c", want: []string{"a\n", "b", "c"}},
		{in: "a,", want: []string{"a", ""}}, // an empty key is ParseSecrets' to refuse
		{in: "", want: nil},
		{in: "# rotated 2026-11\na\n  # old:\nb", want: []string{"a\n", "b"}}, // comments, as in a keys file
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, signature.SplitSecrets(tc.in)); diff != "" {
			t.Errorf("SplitSecrets(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseSecrets(t *testing.T) {
	k1, k2 := rawKey(t, v1.secret), rawKey(t, v2.secret)
	short := base64.StdEncoding.EncodeToString(make([]byte, 15))
	minKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	tests := []struct {
		name    string
		in      []string
		want    [][]byte
		wantErr string
	}{
		{name: "with whsec_", in: []string{v1.secret}, want: [][]byte{k1}},
		{name: "without whsec_", in: []string{strings.TrimPrefix(v1.secret, "whsec_")}, want: [][]byte{k1}},
		{name: "surrounding spaces", in: []string{" " + v1.secret + "\t"}, want: [][]byte{k1}},
		{name: "two keys in order", in: []string{v2.secret, v1.secret}, want: [][]byte{k2, k1}},
		{name: "padded standard webhooks key", in: []string{"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))}, want: [][]byte{make([]byte, 32)}},
		{name: "16-byte key", in: []string{minKey}, want: [][]byte{[]byte("0123456789abcdef")}},
		{name: "no keys", in: nil, wantErr: "no keys"},
		{name: "empty key", in: []string{""}, wantErr: "key 1 is empty"},
		{name: "empty second key", in: []string{v1.secret, " "}, wantErr: "key 2 is empty"},
		{name: "second key not base64", in: []string{v1.secret, badSecret}, wantErr: "key 2 is not base64 after whsec_"},
		{name: "base64url key", in: []string{"whsec_C2FVsBQIhrscChlQIMV-b5sSYspob7oD"}, wantErr: "key 1 is not base64 after whsec_"},
		{name: "whsec_ twice", in: []string{"whsec_" + v1.secret}, wantErr: "key 1 is not base64 after whsec_"},
		{name: "no prefix, not base64", in: []string{"nope!"}, wantErr: "key 1 is not base64 (nor whsec_ followed by base64)"},
		{name: "prefix alone", in: []string{"whsec_"}, wantErr: "key 1 decodes to 0 bytes; signing keys are at least 16"},
		{name: "line break inside", in: []string{strings.TrimPrefix(v1.secret, "whsec_") + "\n" + strings.TrimPrefix(v2.secret, "whsec_")}, wantErr: "key 1 has a space or line break inside it (separate keys with commas or newlines)"},
		{name: "too short", in: []string{v1.secret, "whsec_" + short}, wantErr: "key 2 decodes to 15 bytes; signing keys are at least 16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := signature.ParseSecrets(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("ParseSecrets error = %v, want %q", err, tc.wantErr)
				}
				for _, s := range tc.in {
					if s = strings.TrimPrefix(strings.TrimSpace(s), "whsec_"); s != "" && strings.Contains(err.Error(), s) {
						t.Errorf("error %q contains key material %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecrets error = %v, want nil", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("keys mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadSecretsFile(t *testing.T) {
	k1, k2 := rawKey(t, v1.secret), rawKey(t, v2.secret)
	tests := []struct {
		name    string
		content string
		want    [][]byte
		wantErr string
	}{
		{name: "one key", content: v1.secret, want: [][]byte{k1}},
		{name: "one key with newline", content: v1.secret + "\n", want: [][]byte{k1}},
		{
			name:    "comments and blank lines",
			content: "# rotated 2026-01-01\n\n" + v1.secret + "\n   \n  # old key, remove after 2026-02-01\n" + v2.secret + "\n\n",
			want:    [][]byte{k1, k2},
		},
		{name: "CRLF line endings", content: v1.secret + "\r\n" + v2.secret + "\r\n", want: [][]byte{k1, k2}},
		{name: "indented key", content: "  " + v1.secret, want: [][]byte{k1}},
		{name: "empty file", content: "", wantErr: "no keys"},
		{name: "comments only", content: "# no keys yet\n", wantErr: "no keys"},
		{name: "bad second key", content: "# keys\n" + v1.secret + "\n\n" + badSecret + "\n", wantErr: "key 2 is not base64 after whsec_"},
		{name: "two keys on one line", content: v1.secret + " " + v2.secret, wantErr: "key 1 has a space or line break inside it (separate keys with commas or newlines)"},
		{name: "CR line endings", content: v1.secret + "\r" + v2.secret + "\r", wantErr: "key 1 has a space or line break inside it (separate keys with commas or newlines)"},
		{name: "CR line endings, no prefix", content: strings.TrimPrefix(v1.secret, "whsec_") + "\r" + strings.TrimPrefix(v2.secret, "whsec_"), wantErr: "key 1 has a space or line break inside it (separate keys with commas or newlines)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := signature.ReadSecretsFile(path)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("ReadSecretsFile error = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret-material") {
					t.Errorf("error %q contains key material", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadSecretsFile error = %v, want nil", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("keys mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadSecretsFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent")
	_, err := signature.ReadSecretsFile(path)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadSecretsFile error = %v, want one wrapping %v", err, os.ErrNotExist)
	}
}
