package h1

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseTarget: parseTarget gives what url.ParseRequestURI gives, for
// any target, through its fast path or not.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"/", "/webhooks", "/a/b-c_d.e~f/", "//x", "/a%2Fb", "/a?b=c", "/a#f",
		"/a;b", "/é", "*", "http://h/p", "/a b", "", "/%zz", "/a/../b", "/+!$&'()*,;=:@", "http://u:p@h/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		var reused url.URL
		got, gotErr := parseTarget(target, &reused)
		want, wantErr := url.ParseRequestURI(target)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("parseTarget(%q) error %v, ParseRequestURI error %v", target, gotErr, wantErr)
		}
		if wantErr != nil {
			return
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(url.URL{}, url.Userinfo{})); diff != "" {
			t.Fatalf("parseTarget(%q) (-ParseRequestURI +parseTarget):\n%s", target, diff)
		}
	})
}

// TestParseTargetFastPath: the usual webhook paths take the fast path
// (they are filled into the reused URL).
func TestParseTargetFastPath(t *testing.T) {
	for _, target := range []string{"/", "/webhooks/svix", "/api/v1/hooks.json", "/a_b~c-d"} {
		var reused url.URL
		u, err := parseTarget(target, &reused)
		if err != nil || u != &reused || u.Path != target {
			t.Errorf("parseTarget(%q) = %v, %v; want the reused URL with Path %q", target, u, err, target)
		}
	}
}
