package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// maxRSSSlowBodies is the stated memory bound: postern's peak RSS while 1,000
// clients each announce a maximal (1 MiB) body and send it slowly.
const maxRSSSlowBodies = 96 << 20

// TestSlowBodiesMemoryBound runs the real binary (built without the race
// detector, which multiplies memory), opens 1,000 connections that each
// announce Content-Length: 1048576 and trickle the body, and checks the
// peak RSS (VmHWM) against maxRSSSlowBodies. Every client must get an answer
// (the server's read timeout cuts it off, or the body budget refuses it);
// nothing reaches the app.
func TestSlowBodiesMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; run without -short")
	}
	bin := filepath.Join(t.TempDir(), "postern")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var delivered atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { delivered.Add(1) }))
	defer app.Close()

	cmd := exec.Command(bin)
	cmd.Env = []string{
		"POSTERN_SECRETS=" + e2eSecret,
		"POSTERN_UPSTREAM_URL=" + app.URL,
		"POSTERN_LISTEN_ADDR=127.0.0.1:0",
		"POSTERN_ADMIN_ADDR=127.0.0.1:0",
	}
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	listen := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "serving" {
				listen <- m["listen_addr"].(string)
			}
		}
	}()
	var addr string
	select {
	case addr = <-listen:
	case <-time.After(10 * time.Second):
		t.Fatal("postern did not start")
	}

	const clients = 1000
	chunk := strings.Repeat("x", 16<<10)
	var wg sync.WaitGroup
	var answered atomic.Int64
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nSvix-Id: msg_%d\r\nSvix-Timestamp: %d\r\nSvix-Signature: v1,AAAA\r\n\r\n",
				1<<20, i, time.Now().Unix())
			go func() { // trickle 16 KiB every 100 ms until the server stops reading
				for sent := 0; sent < 1<<20; sent += len(chunk) {
					if _, err := io.WriteString(conn, chunk); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
				answered.Add(1)
			} else if err != io.ErrUnexpectedEOF && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
				t.Errorf("client %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var hwmKB int64
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwmKB, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	t.Logf("peak RSS %d MiB with %d slow clients (%d got an HTTP answer, the others were cut off)", hwmKB>>10, clients, answered.Load())
	if hwmKB<<10 > maxRSSSlowBodies {
		t.Errorf("peak RSS %d MiB, bound %d MiB", hwmKB>>10, maxRSSSlowBodies>>20)
	}
	if n := delivered.Load(); n != 0 {
		t.Errorf("app received %d requests, want 0", n)
	}
}
