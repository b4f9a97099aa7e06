package jsonlog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"testing"
	"time"
)

// both logs the same record through Handler and slog.JSONHandler and
// returns the two outputs, and whether the fast path wrote it. It fails
// the test when HandleAttrs writes other bytes than Handle.
func both(t testing.TB, level slog.Level, msg string, when time.Time, attrs ...slog.Attr) (got, want string, fast bool) {
	t.Helper()
	var gb, wb, ab bytes.Buffer
	h := New(&gb, &slog.HandlerOptions{Level: slog.LevelDebug})
	if err := New(&ab, &slog.HandlerOptions{Level: slog.LevelDebug}).HandleAttrs(context.Background(), when, level, msg, attrs); err != nil {
		t.Fatalf("HandleAttrs = %v", err)
	}
	defer func() {
		if ab.String() != got {
			t.Errorf("HandleAttrs wrote\n%s\nHandle wrote\n%s", ab.String(), got)
		}
	}()
	j := slog.NewJSONHandler(&wb, &slog.HandlerOptions{Level: slog.LevelDebug})
	r := slog.NewRecord(when, level, msg, 0)
	r.AddAttrs(attrs...)
	_, fast = appendRecord(nil, &r)
	if err := h.Handle(context.Background(), r.Clone()); err != nil {
		t.Fatalf("Handle = %v", err)
	}
	if err := j.Handle(context.Background(), r.Clone()); err != nil {
		t.Fatalf("JSONHandler.Handle = %v", err)
	}
	return gb.String(), wb.String(), fast
}

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.StringValue("resolved") }

var when = time.Date(2026, 12, 3, 1, 2, 3, 456789000, time.FixedZone("", 3600)).Add(time.Nanosecond)

// TestSameAsJSONHandler: every record comes out byte for byte as
// slog.JSONHandler writes it, through the fast path or not as stated.
func TestSameAsJSONHandler(t *testing.T) {
	for _, tc := range []struct {
		name  string
		when  time.Time
		level slog.Level
		msg   string
		attrs []slog.Attr
		fast  bool
	}{
		{"audit record", when, slog.LevelInfo, "webhook", []slog.Attr{
			slog.String("msg_id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"), slog.String("event_type", "REFERRAL_CREATED"),
			slog.String("outcome", "forwarded"), slog.String("reason", ""), slog.Int("status", 204),
			slog.Int("upstream_status", 204), slog.Int("bytes", 1024), slog.Float64("duration_ms", 0.137),
			slog.String("remote_addr", "127.0.0.1:53412"), slog.Int("key_index", 0),
		}, true},
		{"no time", time.Time{}, slog.LevelWarn, "m", []slog.Attr{slog.Bool("b", true)}, true},
		{"no attrs", when, slog.LevelError, "", nil, true},
		{"custom level", when, slog.LevelInfo + 2, "m", nil, true},
		{"escapes", when, slog.LevelInfo, "a\"b\\c\n\r\t\x00\x1f\x7f<>&", []slog.Attr{
			slog.String("k\"ey\n", "\u2028\u2029 é 日本 \xff\xfe x\xc3"),
		}, true},
		{"numbers", when, slog.LevelDebug, "m", []slog.Attr{
			slog.Int64("min", math.MinInt64), slog.Uint64("max", math.MaxUint64),
			slog.Float64("zero", 0), slog.Float64("negzero", math.Copysign(0, -1)),
			slog.Float64("small", 1e-6), slog.Float64("big", 1e21-1e5), slog.Float64("third", 1.0/3),
			slog.Float64("neg", -12345.678), slog.Duration("d", 1500*time.Millisecond),
			slog.Time("t", when), slog.Time("utc", when.UTC()),
		}, true},
		{"float with exponent", when, slog.LevelInfo, "m", []slog.Attr{slog.Float64("f", 1e-7)}, false},
		{"float too big", when, slog.LevelInfo, "m", []slog.Attr{slog.Float64("f", 1e21)}, false},
		{"NaN", when, slog.LevelInfo, "m", []slog.Attr{slog.Float64("f", math.NaN())}, false},
		{"-Inf", when, slog.LevelInfo, "m", []slog.Attr{slog.Float64("f", math.Inf(-1))}, false},
		{"group", when, slog.LevelInfo, "m", []slog.Attr{slog.Group("g", slog.Int("a", 1))}, false},
		{"any", when, slog.LevelInfo, "m", []slog.Attr{slog.Any("e", errors.New("boom"))}, false},
		{"valuer", when, slog.LevelInfo, "m", []slog.Attr{slog.Any("v", valuer{})}, false},
		{"empty key", when, slog.LevelInfo, "m", []slog.Attr{slog.String("", "x")}, false},
		{"year 10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "m", nil, false},
		{"attr year -1", when, slog.LevelInfo, "m", []slog.Attr{slog.Time("t", time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want, fast := both(t, tc.level, tc.msg, tc.when, tc.attrs...)
			if got != want {
				t.Errorf("Handler wrote\n%s\nslog.JSONHandler wrote\n%s", got, want)
			}
			if fast != tc.fast {
				t.Errorf("fast path = %v, want %v", fast, tc.fast)
			}
		})
	}
}

// TestLevelAndDerivedHandlers: the level filters, and WithAttrs and
// WithGroup write what slog.JSONHandler's do.
func TestLevelAndDerivedHandlers(t *testing.T) {
	var gb, wb bytes.Buffer
	h := New(&gb, &slog.HandlerOptions{Level: slog.LevelWarn})
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelWarn) {
		t.Fatalf("Enabled(Info), Enabled(Warn) = %v, %v; want false, true",
			h.Enabled(context.Background(), slog.LevelInfo), h.Enabled(context.Background(), slog.LevelWarn))
	}
	if New(&gb, nil).Enabled(context.Background(), slog.LevelDebug) {
		t.Errorf("with nil options Enabled(Debug) = true, want the default level Info")
	}
	j := slog.NewJSONHandler(&wb, &slog.HandlerOptions{Level: slog.LevelWarn})
	slog.New(h).With("a", 1).WithGroup("g").Warn("m", "b", 2)
	slog.New(j).With("a", 1).WithGroup("g").Warn("m", "b", 2)
	got, want := dropTime(gb.String()), dropTime(wb.String())
	if got != want || got == "" {
		t.Errorf("derived handler wrote %q, slog.JSONHandler %q", got, want)
	}
}

func dropTime(s string) string {
	if i := bytes.IndexByte([]byte(s), ','); i > 0 {
		return s[i:]
	}
	return s
}

// FuzzSame compares the two handlers on arbitrary strings and numbers.
func FuzzSame(f *testing.F) {
	f.Add("webhook", "msg_1", "a\"\\\n\u2028\xff", int64(204), 0.137, true)
	f.Add("", "", "", int64(-1), 1e-7, false)
	f.Fuzz(func(t *testing.T, msg, key, val string, n int64, x float64, b bool) {
		got, want, _ := both(t, slog.LevelInfo, msg, when, slog.String(key, val), slog.Int64("n", n),
			slog.Float64("x", x), slog.Bool(val, b), slog.Duration(key+"d", time.Duration(n)))
		if got != want {
			t.Fatalf("Handler wrote\n%s\nslog.JSONHandler wrote\n%s", got, want)
		}
	})
}

// BenchmarkAuditRecord compares the audit record through both handlers.
func BenchmarkAuditRecord(b *testing.B) {
	attrs := []slog.Attr{
		slog.String("msg_id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"), slog.String("event_type", "REFERRAL_CREATED"),
		slog.String("outcome", "forwarded"), slog.String("reason", ""), slog.Int("status", 204),
		slog.Int("upstream_status", 204), slog.Int("bytes", 1024), slog.Float64("duration_ms", 0.137),
		slog.String("remote_addr", "127.0.0.1:53412"), slog.Int("key_index", 0),
	}
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"jsonlog", New(discard{}, nil)},
		{"slog.JSONHandler", slog.NewJSONHandler(discard{}, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := slog.New(bc.h)
			b.ReportAllocs()
			for b.Loop() {
				l.LogAttrs(context.Background(), slog.LevelInfo, "webhook", attrs...)
			}
		})
	}
	// As postern writes it: the attributes straight to the handler, with
	// neither slog.Logger nor slog.Record.
	b.Run("jsonlog.HandleAttrs", func(b *testing.B) {
		h := New(discard{}, nil)
		b.ReportAllocs()
		for b.Loop() {
			h.HandleAttrs(context.Background(), when, slog.LevelInfo, "webhook", attrs)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkHandle is the handlers alone, without slog.Logger's own cost
// (notably runtime.Callers for the record's source).
func BenchmarkHandle(b *testing.B) {
	r := slog.NewRecord(when, slog.LevelInfo, "webhook", 0)
	r.AddAttrs(
		slog.String("msg_id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"), slog.String("event_type", "REFERRAL_CREATED"),
		slog.String("outcome", "forwarded"), slog.String("reason", ""), slog.Int("status", 204),
		slog.Int("upstream_status", 204), slog.Int("bytes", 1024), slog.Float64("duration_ms", 0.137),
		slog.String("remote_addr", "127.0.0.1:53412"), slog.Int("key_index", 0),
	)
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"jsonlog", New(discard{}, nil)},
		{"slog.JSONHandler", slog.NewJSONHandler(discard{}, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.h.Handle(context.Background(), r)
			}
		})
	}
}
