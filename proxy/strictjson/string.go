package strictjson

import "unicode/utf8"

// plain reports the bytes a string may hold as they are: ASCII other than
// control characters, '"' and '\\'. Bytes from 0x80 up need a UTF-8 check.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str parses the string whose opening quote is at p.pos.
func (p *parser) str() (string, error) {
	d := p.data
	start := p.pos + 1
	i := start
	for {
		for i < len(d) && plain[d[i]] {
			i++
		}
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
			j := i + 1
			for j < len(d) && plain[d[j]] {
				j++
			}
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
