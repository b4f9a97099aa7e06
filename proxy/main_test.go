package proxy

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// testEngine is the HTTP engine the tests' frontends run: the default,
// the event loop (where there is one), unless POSTERN_TEST_ENGINE says
// goroutine.
func testEngine() string {
	if os.Getenv("POSTERN_TEST_ENGINE") == EngineGoroutine || runtime.GOOS != "linux" {
		return EngineGoroutine
	}
	return EngineLoop
}

// TestMain runs the package's tests twice where there is an event loop:
// through it, then, in a child process, through the goroutine engine, so
// that the status contract is proven on both. A fuzzing or benchmark run,
// or one that chose its engine, runs once.
func TestMain(m *testing.M) {
	code := m.Run()
	if code != 0 || os.Getenv("POSTERN_TEST_ENGINE") != "" || runtime.GOOS != "linux" ||
		flagSet("test.fuzz") || flagSet("test.bench") {
		os.Exit(code)
	}
	fmt.Println("== the same tests through the goroutine engine (POSTERN_TEST_ENGINE=goroutine)")
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), "POSTERN_TEST_ENGINE="+EngineGoroutine)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Println("goroutine engine:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() != ""
}
