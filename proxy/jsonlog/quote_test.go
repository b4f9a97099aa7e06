package jsonlog

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// quoted returns s as slog.JSONHandler writes it: the message of a record
// with no time, {"level":"INFO","msg":...}\n.
func quoted(t testing.TB, s string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := slog.NewJSONHandler(&buf, nil).Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, s, 0)); err != nil {
		t.Fatalf("JSONHandler.Handle = %v", err)
	}
	const prefix, suffix = `{"level":"INFO","msg":`, "}\n"
	out := buf.String()
	if !strings.HasPrefix(out, prefix) || !strings.HasSuffix(out, suffix) {
		t.Fatalf("slog.JSONHandler wrote %q, want %s...%q", out, prefix, suffix)
	}
	return out[len(prefix) : len(out)-len(suffix)]
}

// specials are the characters appendString must look at, and those on
// either side of them that it must copy as they are.
func specials() []struct{ name, s string } {
	cs := []struct{ name, s string }{
		{`"`, `"`}, {`\`, `\`},
		{"é (2 bytes)", "é"}, {"日 (3 bytes)", "日"}, {"😀 (4 bytes)", "😀"}, {"U+0080", "\u0080"},
		{"U+2028", "\u2028"}, {"U+2029", "\u2029"}, {"U+2027", "\u2027"}, {"U+202A", "\u202a"},
		{"invalid 0xff", "\xff"}, {"invalid 0x80", "\x80"}, {"truncated 日", "\xe6\x97"}, {"surrogate", "\xed\xa0\x80"},
		// Copied as they are: the neighbours of the escaped bytes, and HTML.
		{"space", " "}, {"!", "!"}, {"#", "#"}, {"[", "["}, {"]", "]"}, {"DEL", "\x7f"}, {"~", "~"},
		{"<", "<"}, {">", ">"}, {"&", "&"},
	}
	for c := range byte(' ') {
		cs = append(cs, struct{ name, s string }{fmt.Sprintf("0x%02x", c), string(c)})
	}
	return cs
}

const filler = "abcdefghijklmnopqrstuvwxyz"

// TestAppendStringEdges puts each special character at each position of
// strings of up to 24 ASCII bytes, across appendString's eight-byte words,
// its overlapping last word and its paths for strings under 8 and 4 bytes.
func TestAppendStringEdges(t *testing.T) {
	for _, c := range specials() {
		t.Run(c.name, func(t *testing.T) {
			for n := 1; n <= 24; n++ {
				for at := range n {
					s := filler[:at] + c.s + filler[at+1:n]
					if got, want := string(appendString(nil, s)), quoted(t, s); got != want {
						t.Errorf("appendString(%q) = %s, slog.JSONHandler %s", s, got, want)
					}
				}
			}
		})
	}
}

// stop is plain's definition, a byte at a time.
func stop(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			return i
		}
	}
	return len(s)
}

// TestPlain: plain stops where stop does for every byte value at every
// position of strings of up to 24 bytes, and for every pair of byte values
// side by side at each position of a 16-byte string, which is where a
// borrow from one byte of a word reaches the next.
func TestPlain(t *testing.T) {
	for n := 1; n <= 24; n++ {
		for at := range n {
			for c := range 256 {
				s := filler[:at] + string([]byte{byte(c)}) + filler[at+1:n]
				if got, want := plain(s), stop(s); got != want {
					t.Errorf("plain(%q) = %d, want %d", s, got, want)
				}
			}
		}
	}
	buf := []byte(filler[:16])
	for at := range 15 {
		for c := range 256 * 256 {
			copy(buf, filler)
			buf[at], buf[at+1] = byte(c), byte(c>>8)
			if got, want := plain(string(buf)), stop(string(buf)); got != want {
				t.Fatalf("plain(%q) = %d, want %d", buf, got, want)
			}
		}
	}
}

// TestAppendStringTwoSpecials: after the first character that needs a look,
// appendString goes back to its fast scan and finds the second.
func TestAppendStringTwoSpecials(t *testing.T) {
	kinds := []string{`"`, "\n", "\x00", "é", "\u2028", "\xff", "<"}
	for _, first := range kinds {
		for _, second := range kinds {
			for n := 2; n <= 20; n++ {
				for i := range n {
					for j := i + 1; j < n; j++ {
						s := filler[:i] + first + filler[i+1:j] + second + filler[j+1:n]
						if got, want := string(appendString(nil, s)), quoted(t, s); got != want {
							t.Errorf("appendString(%q) = %s, slog.JSONHandler %s", s, got, want)
						}
					}
				}
			}
		}
	}
}

// TestAppendStringLong: long runs in either form, and text that is mostly
// not ASCII.
func TestAppendStringLong(t *testing.T) {
	for _, s := range []string{
		"",
		strings.Repeat(filler, 10),
		strings.Repeat(filler, 10) + "\n",
		"\t" + strings.Repeat(filler, 10),
		strings.Repeat("日本語のテキスト", 10),
		strings.Repeat("\"\\\n", 30),
		strings.Repeat("é\u2029\xffa", 20),
	} {
		if got, want := string(appendString(nil, s)), quoted(t, s); got != want {
			t.Errorf("appendString(%q) = %s, slog.JSONHandler %s", s, got, want)
		}
	}
}

// TestAppendTime: appendTime writes what time.RFC3339Nano does.
func TestAppendTime(t *testing.T) {
	base := time.Date(2026, 12, 3, 1, 2, 3, 0, time.UTC)
	for _, loc := range []*time.Location{
		time.UTC, time.Local, time.FixedZone("", 3600), time.FixedZone("", -(5*3600 + 1800)),
		time.FixedZone("", -3599), time.FixedZone("", 59), time.FixedZone("", 1_000_000), time.FixedZone("", -1_000_000),
	} {
		for _, ns := range []int{0, 1, 10, 100_000_000, 120_000_000, 123_456_789, 999_999_999, 500} {
			for _, day := range []time.Time{base, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)} {
				tm := day.Add(time.Duration(ns)).In(loc)
				if !validYear(tm) {
					continue
				}
				if got, want := string(appendTime([]byte("x"), tm)), "x"+tm.Format(time.RFC3339Nano); got != want {
					t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
				}
			}
		}
	}
}

// FuzzAppendTime compares appendTime with time.RFC3339Nano.
func FuzzAppendTime(f *testing.F) {
	f.Add(when.Unix(), uint32(when.Nanosecond()), int32(3600))
	f.Add(int64(0), uint32(0), int32(0))
	f.Add(int64(-62167219200), uint32(1), int32(-3599))
	f.Fuzz(func(t *testing.T, sec int64, ns uint32, offset int32) {
		tm := time.Unix(sec, int64(ns%1e9)).In(time.FixedZone("", int(offset)))
		if !validYear(tm) {
			return
		}
		if got, want := string(appendTime(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	})
}

// BenchmarkAppendString: the audit record's strings, and strings that
// leave the fast scan.
func BenchmarkAppendString(b *testing.B) {
	for _, bc := range []struct {
		name string
		s    []string
	}{
		{"audit record", []string{
			"webhook", "msg_id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "event_type", "REFERRAL_CREATED",
			"outcome", "forwarded", "reason", "", "status", "upstream_status", "bytes", "duration_ms",
			"remote_addr", "127.0.0.1:53412", "key_index",
		}},
		{"ascii 260", []string{strings.Repeat(filler, 10)}},
		{"escapes", []string{strings.Repeat("a\"b\n", 20)}},
		{"japanese", []string{strings.Repeat("日本語のテキスト", 10)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf = buf[:0]
				for _, s := range bc.s {
					buf = appendString(buf, s)
				}
			}
		})
	}
}
