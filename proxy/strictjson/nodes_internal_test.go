package strictjson

import (
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// TestDocGrowth: a dense document's node list grows with at most about
// twice its final size allocated on the way (append's quarter-at-a-time
// growth would allocate five times), and never past what the input can hold.
func TestDocGrowth(t *testing.T) {
	for _, body := range []string{
		"[" + strings.Repeat("0,", 1<<19-1) + "0]",
		`{"a":[` + strings.Repeat(`{"k":1},`, 1<<16-1) + `{"k":1}]}`,
		"[" + strings.Repeat("[],", 1<<18-1) + "[]]",
	} {
		var d Doc
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := d.ParseString(body); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		size := uint64(cap(d.Nodes)) * uint64(unsafe.Sizeof(Node{}))
		if got := after.TotalAlloc - before.TotalAlloc; got > size*5/2 {
			t.Errorf("%d-byte body, node list of %d bytes: %d bytes allocated, want at most 2.5 times the list",
				len(body), size, got)
		}
		if cap(d.Nodes) > len(body)/2+1 {
			t.Errorf("%d-byte body: node list capacity %d, over the %d values it can hold", len(body), cap(d.Nodes), len(body)/2+1)
		}
	}
}
