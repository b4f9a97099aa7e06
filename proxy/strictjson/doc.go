// Package strictjson parses a webhook body as exactly one I-JSON text
// (RFC 7493) in a single pass over the raw bytes.
//
// postern verifies the signature over the raw body and then parses it once
// with this package, so that the schema validator and the application behind
// the proxy cannot read two different documents out of the same bytes. Where
// ordinary JSON parsers are lenient, this one refuses the input:
//
//   - an object that names the same member twice, compared after unescaping
//     ({"a":1,"\u0061":2} is a duplicate): ErrDuplicateKey;
//   - invalid UTF-8 in a string, including overlong forms and encoded
//     surrogates: ErrInvalidUTF8;
//   - a \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF escape, or a low
//     surrogate escape on its own: ErrLoneSurrogate;
//   - nesting deeper than MaxDepth: ErrTooDeep;
//   - everything else RFC 8259 forbids, such as trailing commas, leading
//     zeros, comments, a byte order mark or data after the value: ErrSyntax.
//
// Every error is a *SyntaxError carrying the byte offset of the problem; test
// for the reason with errors.Is.
//
// A document comes out as a value tree (Parse, ParseString) or as a Doc, a
// flat list of values that costs no allocation per value, which the
// webhook handler reuses across requests. Numbers keep their exact source
// text (json.Number in the tree), never converted to float64.
package strictjson
