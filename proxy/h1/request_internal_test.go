package h1

import "testing"

// TestParseContentLength: all digits, leading zeros allowed as in net/http,
// at most 18 digits after them.
func TestParseContentLength(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"110", 110, true},
		{"0110", 110, true},
		{"0000000000000000110", 110, true}, // 19 characters, 3 digits
		{"0000", 0, true},
		{"999999999999999999", 999999999999999999, true},
		{"000999999999999999999", 999999999999999999, true},
		{"1000000000000000000", 0, false}, // 19 digits
		{"99999999999999999999999", 0, false},
		{"", 0, false},
		{"+1", 0, false},
		{"-1", 0, false},
		{"1 ", 0, false},
		{"0x10", 0, false},
		{"1,1", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseContentLength(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseContentLength(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
