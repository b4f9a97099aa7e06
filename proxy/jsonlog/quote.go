package jsonlog

import (
	"math/bits"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// appendString appends s quoted and escaped as slog.JSONHandler does:
// ", \ and control characters escaped, invalid UTF-8 as \ufffd, U+2028 and
// U+2029 escaped, HTML characters left alone.
//
// Most strings need no escape at all, so plain first looks for the end of
// the run of bytes copied as they are, eight bytes at a time. Past it, a
// byte at a time as slog.JSONHandler does, plain is called again only where
// two bytes in a row are copied, so that text with an escape every other
// byte, or not ASCII at all, costs no more than it did.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	i := plain(s)
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if copied(c) {
			i++
			if i < len(s) && copied(s[i]) {
				i += plain(s[i:])
			}
			continue
		}
		if c < utf8.RuneSelf {
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
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			start = i + size
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// copied reports whether appendString copies the byte c as it is, wherever
// it is: c is ASCII, not a control character, '"' or '\\'.
func copied(c byte) bool {
	return c >= ' ' && c < utf8.RuneSelf && c != '"' && c != '\\'
}

// plain returns the length of the longest prefix of s whose bytes are all
// copied: none below 0x20 or above 0x7f, no '"' or '\\'.
func plain(s string) int {
	n := len(s)
	switch {
	case n >= 8:
		i := 0
		for ; i <= n-8; i += 8 {
			if m := special(load64(s[i:])); m != 0 {
				return i + bits.TrailingZeros64(m)/8
			}
		}
		if i == n {
			return n
		}
		// The last eight bytes, overlapping those already passed.
		if m := special(load64(s[n-8:])); m != 0 {
			return n - 8 + bits.TrailingZeros64(m)/8
		}
		return n
	case n >= 4:
		// s[:4] in the low half, s[n-4:] (overlapping it if n < 8) in the high.
		m := special(load32(s) | load32(s[n-4:])<<32)
		if m == 0 {
			return n
		}
		k := bits.TrailingZeros64(m) / 8
		if k < 4 {
			return k
		}
		return n - 8 + k
	}
	for i := 0; i < n; i++ {
		if !copied(s[i]) {
			return i
		}
	}
	return n
}

const (
	ones  = 0x0101010101010101 // 0x01 in every byte
	highs = 0x8080808080808080 // 0x80 in every byte
)

// special sets the high bit of each byte of x (the first byte of the string
// lowest) that plain stops at. Of x-0x20, q-1 and e-1, for a byte no borrow
// reaches from below, the first sets the bit for 0x00-0x1f and 0xa0-0xff, the
// second for '"' and 0x80-0xff but 0xa2, the third for '\\' and 0x80-0xff
// but 0xdc. A byte above a marked one may be marked in error, by a borrow,
// but the lowest marked byte is right: a borrow starts only at a byte below
// 0x20, a '"' or a '\\', each rightly marked.
func special(x uint64) uint64 {
	q := x ^ ('"' * ones)  // zero bytes where x has '"'
	e := x ^ ('\\' * ones) // and where it has '\\'
	return ((x - ' '*ones) | (q - ones) | (e - ones)) & highs
}

// load64 reads s[:8] as a little-endian integer, whatever the machine's order.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// load32 reads s[:4] as a little-endian integer.
func load32(s string) uint64 {
	_ = s[3]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
}
