// Command cpuprobe measures how fast the CPU it runs on is just now, in two
// ways: a loop of integer arithmetic over 4 KiB that stays in the caches
// (it slows when another tenant's thread shares the core) and dependent
// random reads over 64 MiB (memory-bound). It prints one line:
//
//	fnv 4 KiB 3.91 us, random read 98.1 ns
//
// bench/run runs it pinned to each CPU in turn (taskset -c N) before and
// after its rounds. On a shared VM one virtual CPU can be a quarter slower
// than the other for minutes at a time; a proxy whose work is one busy
// thread (postern's event loop) pays what the CPU it is on costs, where
// nginx's two workers pay about the average of both.
package main

import (
	"flag"
	"fmt"
	"time"
)

var sink uint64

func main() {
	d := flag.Duration("d", 200*time.Millisecond, "time spent on each measure")
	flag.Parse()

	// FNV-1a over a 4 KiB buffer, again and again.
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	h, rounds := uint64(14695981039346656037), 0
	start := time.Now()
	for time.Since(start) < *d {
		for range 16 {
			for _, b := range buf {
				h = (h ^ uint64(b)) * 1099511628211
			}
		}
		rounds += 16
	}
	fnvUs := float64(time.Since(start).Nanoseconds()) / 1e3 / float64(rounds)

	// A random cycle through the array (Sattolo's shuffle), so that each
	// read depends on the one before and the prefetcher cannot guess.
	const n = 8 << 20 // 64 MiB of uint64
	next := make([]uint64, n)
	for i := range next {
		next[i] = uint64(i)
	}
	x := uint64(0x9E3779B97F4A7C15)
	for i := n - 1; i > 0; i-- {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		j := int(x % uint64(i))
		next[i], next[j] = next[j], next[i]
	}
	p, reads := uint64(0), 0
	start = time.Now()
	for time.Since(start) < *d {
		for range 1 << 12 {
			p = next[p]
		}
		reads += 1 << 12
	}
	readNs := float64(time.Since(start).Nanoseconds()) / float64(reads)
	sink = h + p
	fmt.Printf("fnv 4 KiB %.2f us, random read %.1f ns\n", fnvUs, readNs)
}
