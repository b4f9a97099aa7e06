package signature_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/postern-dev/postern/proxy/signature"
)

// BenchmarkVerify measures the HMAC check of a 1 KiB body, with one key and
// with three keys of which the last matches (the worst case during rotation).
func BenchmarkVerify(b *testing.B) {
	body := bytes.Repeat([]byte("a"), 1024)
	other := [][]byte{keyOf(b, v2.secret), bytes.Repeat([]byte("k"), 32)}
	key := keyOf(b, v1.secret)
	sig := signature.Sign(key, v1.id, time.Unix(1_700_000_000, 0), body)
	h, err := signature.Extract(svixHeaders(v1.id, "1700000000", sig))
	if err != nil {
		b.Fatalf("Extract = %v", err)
	}
	for _, bc := range []struct {
		name    string
		keys    [][]byte
		wantIdx int
	}{
		{"1 key", [][]byte{key}, 0},
		{"3 keys, match last", append(other, key), 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			v := signature.NewVerifier(bc.keys)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if idx, err := v.Verify(body, h); idx != bc.wantIdx || err != nil {
					b.Fatalf("Verify = %d, %v; want %d, nil", idx, err, bc.wantIdx)
				}
			}
		})
	}
}

// BenchmarkExtract measures header parsing alone.
func BenchmarkExtract(b *testing.B) {
	h := svixHeaders(v1.id, v1.ts, "v1,AAAA v2,bbbb "+v1.sig)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signature.Extract(h); err != nil {
			b.Fatalf("Extract = %v", err)
		}
	}
}
