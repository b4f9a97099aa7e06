package strictjson

import (
	"math/rand/v2"
	"testing"
)

// skipPlainBytes is skipPlain one byte at a time, as it was before it read
// words.
func skipPlainBytes(d []byte, i int) int {
	for i < len(d) && plain[d[i]] {
		i++
	}
	return i
}

// TestSkipPlain checks skipPlain against skipPlainBytes with every byte
// value at every offset of the first two words read, from starts that are
// not word aligned, with random bytes after it: whatever the borrows of the
// word tricks do to the bytes above the first stop must not matter.
func TestSkipPlain(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for start := range 8 {
		for k := range 16 {
			for c := range 256 {
				d := make([]byte, start+24)
				for j := range d {
					d[j] = 'a'
				}
				d[start+k] = byte(c)
				for j := start + k + 1; j < len(d); j++ {
					d[j] = byte(rng.Uint32())
				}
				if got, want := skipPlain(d, start), skipPlainBytes(d, start); got != want {
					t.Fatalf("skipPlain(%q, %d) = %d, want %d", d, start, got, want)
				}
			}
		}
	}
}

// TestSkipPlainRandom checks skipPlain against skipPlainBytes on random
// inputs that are mostly plain, from every start.
func TestSkipPlainRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		d := make([]byte, rng.IntN(40))
		for j := range d {
			d[j] = byte(0x20 + rng.IntN(0x60))
			if rng.IntN(12) == 0 {
				d[j] = byte(rng.Uint32())
			}
		}
		for start := range len(d) + 1 {
			if got, want := skipPlain(d, start), skipPlainBytes(d, start); got != want {
				t.Fatalf("skipPlain(%q, %d) = %d, want %d", d, start, got, want)
			}
		}
	}
}
