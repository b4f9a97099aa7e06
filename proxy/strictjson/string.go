package strictjson

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// plain reports the bytes a string may hold as they are: ASCII other than
// control characters, '"' and '\\'. Bytes from 0x80 up need a UTF-8 check.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipPlain returns the index of the first byte of d at or after i that is
// not plain, or len(d). While 8 bytes remain it reads them as one
// little-endian word; d is the whole input, so a word may run past the
// closing quote into what follows.
func skipPlain(d []byte, i int) int {
	for ; len(d)-i >= 8; i += 8 {
		if m := notPlain(binary.LittleEndian.Uint64(d[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(d) && plain[d[i]] {
		i++
	}
	return i
}

// Masks for reading 8 bytes at a time.
const (
	lsbs = 0x0101010101010101 // 0x01 in each byte
	msbs = 0x8080808080808080 // 0x80 in each byte
)

// notPlain returns 0 if the 8 bytes of w are all plain. Otherwise it has the
// high bit set of the lowest byte that is not plain, and of no byte below
// it, so bits.TrailingZeros64 finds that byte. Bytes above it may or may not
// be flagged.
//
// These are the "has a zero byte" and "has a byte less than n" tricks
// ((v-lsbs*n) &^ v & msbs), without their &^ v: that only keeps bytes from
// 0x80 up out of the result, and those are not plain anyway, so w itself is
// ORed in to flag them. Each byte is one of:
//
//   - plain (0x20-0x7f less '"' and '\\'): w-0x20, (w^'"')-1 and (w^'\\')-1
//     are all in 0x00-0x7e, so it is not flagged and does not borrow from
//     the byte above;
//   - below 0x20: w-0x20 wraps to 0xe0 or more;
//   - '"' or '\\': w^'"' or w^'\\' is 0, and 0-1 wraps to 0xff;
//   - 0x80 or more: flagged by w.
//
// So no byte below the lowest one that is not plain borrows, and that one
// is flagged; its own borrow may flag bytes above it, which do not matter.
func notPlain(w uint64) uint64 {
	quote := w ^ (lsbs * '"')
	backslash := w ^ (lsbs * '\\')
	return ((w - lsbs*0x20) | (quote - lsbs) | (backslash - lsbs) | w) & msbs
}

// str parses the string whose opening quote is at p.pos.
func (p *parser) str() (string, error) {
	d := p.data
	start := p.pos + 1
	i := start
	for {
		i = skipPlain(d, i)
		if i >= len(d) {
			return "", p.eof("in string")
		}
		switch c := d[i]; {
		case c == '"':
			p.pos = i + 1
			return p.source(start, i), nil
		case c == '\\':
			return p.escaped(start, i)
		case c < 0x20:
			return "", fail(ErrSyntax, i, "unescaped control character %s in string", describe(c))
		default:
			n, err := runeLen(d, i)
			if err != nil {
				return "", err
			}
			i += n
		}
	}
}

// runeLen returns the length of the valid UTF-8 sequence at d[i], which is
// not ASCII.
func runeLen(d []byte, i int) (int, error) {
	r, n := utf8.DecodeRune(d[i:])
	if r == utf8.RuneError && n == 1 {
		return 0, fail(ErrInvalidUTF8, i, "invalid utf-8 sequence starting with %s", describe(d[i]))
	}
	return n, nil
}

// escaped finishes the string begun at start once its first backslash is
// found at i, decoding it into the scratch buffer.
func (p *parser) escaped(start, i int) (string, error) {
	d := p.data
	buf := append(p.scratch[:0], d[start:i]...)
	defer func() { p.scratch = buf[:0] }()
	for i < len(d) {
		switch c := d[i]; {
		case c == '"':
			p.pos = i + 1
			return string(buf), nil
		case c == '\\':
			if i+1 >= len(d) {
				return "", p.eof("in escape")
			}
			switch e := d[i+1]; e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, n, err := p.unicodeEscape(i)
				if err != nil {
					return "", err
				}
				buf = utf8.AppendRune(buf, r)
				i += n
				continue
			default:
				return "", fail(ErrSyntax, i, "invalid escape '\\' followed by %s", describe(e))
			}
			i += 2
		case c < 0x20:
			return "", fail(ErrSyntax, i, "unescaped control character %s in string", describe(c))
		case c < utf8.RuneSelf:
			j := skipPlain(d, i+1)
			buf = append(buf, d[i:j]...)
			i = j
		default:
			n, err := runeLen(d, i)
			if err != nil {
				return "", err
			}
			buf = append(buf, d[i:i+n]...)
			i += n
		}
	}
	return "", p.eof("in string")
}

// unicodeEscape decodes the \u escape at d[i], joining a surrogate pair, and
// returns the rune and the number of bytes it took.
func (p *parser) unicodeEscape(i int) (rune, int, error) {
	r, err := p.hex4(i + 2)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case r < 0xd800 || r > 0xdfff:
		return r, 6, nil
	case r >= 0xdc00:
		return 0, 0, fail(ErrLoneSurrogate, i, "low surrogate \\u%04x without a high surrogate before it", r)
	}
	d := p.data
	if i+7 < len(d) && d[i+6] == '\\' && d[i+7] == 'u' {
		lo, err := p.hex4(i + 8)
		if err != nil {
			return 0, 0, err
		}
		if lo >= 0xdc00 && lo <= 0xdfff {
			return 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00), 12, nil
		}
	}
	return 0, 0, fail(ErrLoneSurrogate, i, "high surrogate \\u%04x without a low surrogate after it", r)
}

// hex4 decodes the four hex digits at d[i:i+4].
func (p *parser) hex4(i int) (rune, error) {
	var r rune
	for k := i; k < i+4; k++ {
		if k >= len(p.data) {
			return 0, p.eof("in \\u escape")
		}
		c := p.data[k]
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, fail(ErrSyntax, k, "unexpected %s in \\u escape, want hex digit", describe(c))
		}
		r = r<<4 | rune(v)
	}
	return r, nil
}
