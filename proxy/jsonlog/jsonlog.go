// Package jsonlog is an slog.Handler that writes what slog.JSONHandler
// writes, byte for byte, at a fraction of its cost for flat records.
//
// postern writes one audit record per webhook. slog.JSONHandler spends most
// of that record on generic machinery: it encodes every float64 with
// encoding/json (reflection and an encoder from a pool) and walks each
// attribute through ReplaceAttr and group bookkeeping. This handler appends
// the record to a pooled buffer directly when every attribute is a string,
// integer, bool, float, duration or time with a non-empty key. Anything else
// (groups, LogValuers, any-values, NaN, a year past 9999, a handler made by
// WithAttrs or WithGroup) goes to a slog.JSONHandler on the same writer, so
// the output is the same either way; TestSameAsJSONHandler and FuzzSame
// compare the two.
package jsonlog

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Handler writes one JSON object per record, as slog.JSONHandler does.
type Handler struct {
	w     io.Writer
	level slog.Leveler
	slow  *slog.JSONHandler

	mu *sync.Mutex // serialises writes, as slog.JSONHandler's does
}

var _ slog.Handler = (*Handler)(nil)

// New returns a handler writing to w. opts may be nil; ReplaceAttr and
// AddSource are not supported by the fast path, so with either set every
// record goes to slog.JSONHandler.
func New(w io.Writer, opts *slog.HandlerOptions) *Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{w: w, level: level, slow: slog.NewJSONHandler(w, opts), mu: new(sync.Mutex)}
}

// Enabled reports whether level is at or above the handler's level.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// WithAttrs returns slog.JSONHandler's handler for attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.slow.WithAttrs(attrs) }

// WithGroup returns slog.JSONHandler's handler for the group.
func (h *Handler) WithGroup(name string) slog.Handler { return h.slow.WithGroup(name) }

// buffers are the pooled record buffers; one over maxPooled is dropped.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooled = 16 << 10

// Handle writes r as one line of JSON.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.flat(r) {
		return h.slow.Handle(ctx, r)
	}
	bp := buffers.Get().(*[]byte)
	b := append((*bp)[:0], '{')
	if !r.Time.IsZero() {
		b = append(b, `"time":"`...)
		b = r.Time.Round(0).AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	b = appendString(b, r.Level.String())
	b = append(b, `,"msg":`...)
	b = appendString(b, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b = append(b, ',')
		b = appendString(b, a.Key)
		b = append(b, ':')
		b = appendValue(b, a.Value)
		return true
	})
	b = append(b, '}', '\n')
	h.mu.Lock()
	_, err := h.w.Write(b)
	h.mu.Unlock()
	if cap(b) <= maxPooled {
		*bp = b
		buffers.Put(bp)
	}
	return err
}

// flat reports whether the fast path writes r exactly as slog.JSONHandler.
func (h *Handler) flat(r slog.Record) bool {
	if !r.Time.IsZero() && !validYear(r.Time) {
		return false
	}
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		ok = a.Key != "" && simple(a.Value)
		return ok
	})
	return ok
}

// simple reports whether v is of a kind appendValue writes.
func simple(v slog.Value) bool {
	switch v.Kind() {
	case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindBool, slog.KindDuration:
		return true
	case slog.KindFloat64:
		f := math.Abs(v.Float64())
		// encoding/json writes these with an exponent, or refuses them.
		return f == 0 || (f >= 1e-6 && f < 1e21)
	case slog.KindTime:
		return validYear(v.Time())
	}
	return false
}

// validYear: slog.JSONHandler adds an error for years RFC 3339 cannot write.
func validYear(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y < 10000
}

func appendValue(b []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendString(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		return strconv.AppendInt(b, int64(v.Duration()), 10)
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'f', -1, 64) // as encoding/json in this range
	case slog.KindTime:
		b = append(b, '"')
		b = v.Time().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	panic("jsonlog: appendValue of a kind simple refuses")
}

const hex = "0123456789abcdef"

// appendString appends s quoted and escaped as slog.JSONHandler does:
// ", \ and control characters escaped, invalid UTF-8 as \ufffd, U+2028 and
// U+2029 escaped, HTML characters left alone.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
