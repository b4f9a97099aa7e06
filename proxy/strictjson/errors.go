package strictjson

import (
	"errors"
	"fmt"
	"strconv"
)

// Reasons a document is rejected. Parse wraps each in a *SyntaxError; test for
// them with errors.Is.
var (
	// ErrSyntax reports anything RFC 8259 forbids that has no more specific
	// reason below: empty input, trailing commas, malformed numbers or
	// literals, unescaped control characters, invalid escapes, whitespace
	// other than space, tab, LF and CR, comments, and data after the value.
	ErrSyntax = errors.New("syntax error")
	// ErrDuplicateKey reports an object that has the same member name twice,
	// compared after unescaping.
	ErrDuplicateKey = errors.New("duplicate object member name")
	// ErrInvalidUTF8 reports a string holding bytes that are not valid UTF-8,
	// including overlong encodings and encoded surrogates.
	ErrInvalidUTF8 = errors.New("invalid utf-8 in string")
	// ErrLoneSurrogate reports a \u escape of a UTF-16 surrogate that is not
	// half of a high-low pair.
	ErrLoneSurrogate = errors.New("lone surrogate escape")
	// ErrTooDeep reports arrays and objects nested more than MaxDepth deep.
	ErrTooDeep = errors.New("nesting too deep")
)

// SyntaxError describes why and where Parse rejected its input.
type SyntaxError struct {
	// Offset is the byte offset in the input of the problem: the offending
	// byte, the start of the offending escape or member name, or the input
	// length when the input ends too early.
	Offset int
	// Err says what is wrong. It wraps one of the Err* sentinels of this
	// package.
	Err error
}

// Error returns the reason and the byte offset.
func (e *SyntaxError) Error() string {
	return "strictjson: " + e.Err.Error() + " at byte offset " + strconv.Itoa(e.Offset)
}

// Unwrap returns e.Err.
func (e *SyntaxError) Unwrap() error { return e.Err }

// fail builds the error returned for a problem of the given kind at offset
// off, with a detail message after the sentinel's own text.
func fail(kind error, off int, format string, args ...any) error {
	return &SyntaxError{Offset: off, Err: fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))}
}

// describe names the byte c for an error message.
func describe(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
