package schema

import "testing"

// BenchmarkValidate validates the 1 KiB REFERRAL_CREATED body through
// Validate (fast path taken) and through the library alone, on a value tree
// built beforehand.
func BenchmarkValidate(b *testing.B) {
	set, err := Builtin()
	if err != nil {
		b.Fatal(err)
	}
	doc := parse(b, benchBody)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := set.Validate("REFERRAL_CREATED", doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		lib := set.schemas["REFERRAL_CREATED"].lib
		tree := doc.Value(0)
		b.ReportAllocs()
		for b.Loop() {
			if err := lib.Validate(tree); err != nil {
				b.Fatal(err)
			}
		}
	})
}
