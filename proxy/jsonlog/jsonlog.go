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
	bp := buffers.Get().(*[]byte)
	b, ok := appendRecord((*bp)[:0], &r)
	if !ok {
		buffers.Put(bp)
		return h.slow.Handle(ctx, r)
	}
	return h.write(bp, b)
}

// HandleAttrs writes what Handle writes for a record of t, level, msg and
// attrs, without building the slog.Record: a caller that holds its
// attributes in a slice and calls the Handler directly (not through an
// slog.Handler interface) saves the record's copy of them and its
// allocation for more than five. The caller checks Enabled first, as
// slog.Logger does.
func (h *Handler) HandleAttrs(ctx context.Context, t time.Time, level slog.Level, msg string, attrs []slog.Attr) error {
	bp := buffers.Get().(*[]byte)
	b, ok := appendHead((*bp)[:0], t, level, msg)
	for i := 0; ok && i < len(attrs); i++ {
		b, ok = appendAttr(b, attrs[i])
	}
	if !ok {
		buffers.Put(bp)
		r := slog.NewRecord(t, level, msg, 0)
		r.AddAttrs(attrs...)
		return h.slow.Handle(ctx, r)
	}
	return h.write(bp, append(b, '}', '\n'))
}

// write writes the record b, held in the pooled buffer bp.
func (h *Handler) write(bp *[]byte, b []byte) error {
	h.mu.Lock()
	_, err := h.w.Write(b)
	h.mu.Unlock()
	if cap(b) <= maxPooled {
		*bp = b
		buffers.Put(bp)
	}
	return err
}

// appendRecord appends r as one line of JSON and reports whether that is
// what slog.JSONHandler writes. It stops at the first thing it cannot write
// so, and then b holds part of a record.
func appendRecord(b []byte, r *slog.Record) ([]byte, bool) {
	b, ok := appendHead(b, r.Time, r.Level, r.Message)
	if !ok {
		return b, false
	}
	r.Attrs(func(a slog.Attr) bool {
		b, ok = appendAttr(b, a)
		return ok
	})
	return append(b, '}', '\n'), ok
}

// appendHead appends the record's opening: time, level and message.
func appendHead(b []byte, t time.Time, level slog.Level, msg string) ([]byte, bool) {
	b = append(b, '{')
	if !t.IsZero() {
		if !validYear(t) {
			return b, false
		}
		b = append(b, `"time":"`...)
		b = appendTime(b, t.Round(0))
		b = append(b, `",`...)
	}
	b = append(b, `"level":"`...)
	b = append(b, level.String()...) // a level name, maybe with +n or -n: nothing to escape
	b = append(b, `","msg":`...)
	return appendString(b, msg), true
}

// appendAttr appends ,"key":value for a, or reports false.
func appendAttr(b []byte, a slog.Attr) ([]byte, bool) {
	if a.Key == "" {
		return b, false
	}
	b = append(b, ',')
	b = appendString(b, a.Key)
	b = append(b, ':')
	return appendValue(b, a.Value)
}

// validYear: slog.JSONHandler adds an error for years RFC 3339 cannot write.
func validYear(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y < 10000
}

// appendValue appends v as slog.JSONHandler does, or reports false for a
// value it may write otherwise: a kind not below, a time that validYear
// refuses, or a float encoding/json writes with an exponent or refuses.
func appendValue(b []byte, v slog.Value) ([]byte, bool) {
	switch v.Kind() {
	case slog.KindString:
		return appendString(b, v.String()), true
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		return strconv.AppendInt(b, int64(v.Duration()), 10), true
	case slog.KindFloat64:
		f := v.Float64()
		if a := math.Abs(f); !(a == 0 || a >= 1e-6 && a < 1e21) { // NaN too
			return b, false
		}
		return strconv.AppendFloat(b, f, 'f', -1, 64), true // as encoding/json in this range
	case slog.KindTime:
		t := v.Time()
		if !validYear(t) {
			return b, false
		}
		b = append(b, '"')
		b = appendTime(b, t)
		return append(b, '"'), true
	}
	return b, false
}

// appendTime appends t as t.AppendFormat(b, time.RFC3339Nano) does, for a
// year validYear accepts. The time package writes the date, the clock and
// the zone; the fraction of a second, the slow part of its RFC 3339 code, is
// written here and moved in before the zone.
func appendTime(b []byte, t time.Time) []byte {
	ns := uint32(t.Nanosecond())
	if ns == 0 {
		return t.AppendFormat(b, time.RFC3339)
	}
	var frac [10]byte // '.' and nine digits
	frac[0] = '.'
	for i := 9; i > 0; i-- {
		frac[i] = byte('0' + ns%10)
		ns /= 10
	}
	n := len(frac)
	for frac[n-1] == '0' { // stops at a digit: ns was not 0
		n--
	}
	at := len(b) + len("2006-01-02T15:04:05") // the year has four digits
	b = t.AppendFormat(b, time.RFC3339)
	end := len(b)
	b = append(b, frac[:n]...) // room for the fraction
	copy(b[at+n:], b[at:end])  // the zone after it
	copy(b[at:], frac[:n])
	return b
}
