// Command scale is the fixture of scripts/bench. It parks N goroutines in
// chan receive at recursion depths 1..12 (main.park; depth = 1 + i%12), waits
// until every one of them is parked, then times Go's own stop-the-world dump
// of every goroutine, runtime.Stack(buf, true) (what net/http/pprof
// goroutine?debug=2 does), three times, and prints one line on stdout:
//
//	ready <pid> go_stack_us=<median of 3, microseconds> goroutines=<runtime.NumGoroutine()> dump_bytes=<size of the dump>
//
// then idles forever in main.idle (select{}), with the parked goroutines
// untouched, so that an outside reader (gopeek, Delve) sees the same process.
//
//	scale -n N [-spin K]
//
// With -spin, K more goroutines burn CPU forever (always running), so that
// a non-blocking reader has threads to stop.
//
// With SCALE_DEBUG set in the environment, the three times are also printed
// on stderr.
//
// goroutines= counts every goroutine: the N parked ones, main and one
// sleeper (main.keepAlive, which keeps a timer pending so that the runtime
// does not report "all goroutines are asleep - deadlock!").
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"time"
)

// park recurses to the given depth, then blocks in chan receive forever.
//
//go:noinline
func park(depth int, c chan int, wg *sync.WaitGroup) {
	if depth <= 1 {
		wg.Done()
		<-c
		return
	}
	park(depth-1, c, wg)
}

// keepAlive sleeps forever; its pending timer stops the runtime's deadlock
// detector from killing a process whose goroutines are all blocked.
//
//go:noinline
func keepAlive() {
	for {
		time.Sleep(time.Hour)
	}
}

// spinSink keeps spin's loop from being optimized away.
var spinSink uint64

// spin burns CPU forever in Go code: a goroutine that is always running.
//
//go:noinline
func spin() {
	x := uint64(1)
	for {
		for i := 0; i < 1<<20; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		spinSink = x
	}
}

// idle blocks main forever.
//
//go:noinline
func idle() {
	select {}
}

// countWaiting counts the goroutine headers in a dump of all goroutines, and
// those in chan receive.
func countWaiting(dump []byte) (total, recv int) {
	for i := 0; i+len("goroutine ") <= len(dump); {
		// Headers start a line: "goroutine N [status...]:".
		if (i == 0 || dump[i-1] == '\n') && string(dump[i:i+len("goroutine ")]) == "goroutine " {
			total++
			j := i
			for j < len(dump) && dump[j] != '\n' {
				j++
			}
			line := string(dump[i:j])
			if contains(line, "[chan receive") {
				recv++
			}
			i = j
			continue
		}
		for i < len(dump) && dump[i] != '\n' {
			i++
		}
		i++
	}
	return
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// stackAll returns the full dump and how long the runtime.Stack call that
// produced it took, growing *buf until the dump fits.
func stackAll(buf *[]byte) ([]byte, time.Duration) {
	for {
		t0 := time.Now()
		n := runtime.Stack(*buf, true)
		d := time.Since(t0)
		if n < len(*buf) {
			return (*buf)[:n], d
		}
		*buf = make([]byte, 2*len(*buf))
	}
}

func main() {
	n := flag.Int("n", 10000, "number of goroutines to park")
	spinners := flag.Int("spin", 0, "goroutines running (burning CPU) all the time")
	flag.Parse()
	if *n < 0 {
		fmt.Fprintln(os.Stderr, "scale: -n must be >= 0")
		os.Exit(2)
	}

	go keepAlive()
	c := make(chan int)
	var wg sync.WaitGroup
	wg.Add(*n)
	for i := 0; i < *n; i++ {
		go park(1+i%12, c, &wg)
	}
	wg.Wait()

	// wg.Done runs just before the receive: wait until the dump shows every
	// parked goroutine in chan receive.
	buf := make([]byte, 1<<20+*n*1024)
	for tries := 0; ; tries++ {
		dump, _ := stackAll(&buf)
		if _, recv := countWaiting(dump); recv >= *n {
			break
		}
		if tries > 100 {
			fmt.Fprintln(os.Stderr, "scale: goroutines did not park")
			os.Exit(1)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Running goroutines: what --nonblocking has to stop (their threads).
	for i := 0; i < *spinners; i++ {
		go spin()
	}

	// Time Go's own stop-the-world dump, with a buffer already large enough.
	var ds []time.Duration
	var size int
	for k := 0; k < 3; k++ {
		runtime.GC()
		dump, d := stackAll(&buf)
		ds = append(ds, d)
		size = len(dump)
	}
	if os.Getenv("SCALE_DEBUG") != "" {
		fmt.Fprintln(os.Stderr, "scale: runtime.Stack times:", ds)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })

	buf = nil
	runtime.GC()
	debug.FreeOSMemory()

	fmt.Printf("ready %d go_stack_us=%d goroutines=%d dump_bytes=%d\n",
		os.Getpid(), ds[1].Microseconds(), runtime.NumGoroutine(), size)
	idle()
}
