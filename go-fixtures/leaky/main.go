// Command leaky is gopeek's fixture for `gopeek leaks`: a service with
// four kinds of goroutines, each started from its own function so that
// the "created by" site names the kind:
//
//   - a fixed worker pool (main.startPool): -workers goroutines parked in
//     main.poolWorker on a job channel, woken briefly every 20 ms; the same
//     goroutines forever. Must never be reported as growing.
//   - a recycling pool (main.superviseRecyclers): -recyclers goroutines in
//     main.recycledWorker, each handling one job every few ms and exiting,
//     replaced at once by a new goroutine: constant size, ids churning.
//     Must never be reported as growing either.
//   - the leak (main.serveRequests): every -leak-every, -leak-batch new
//     goroutines of main.handleRequest park forever on a reply channel
//     nobody ever sends on or closes. This, and only this, grows.
//   - a transient burst (main.burstLoop): every 300 ms, 20 goroutines of
//     main.burstTask sleep 30 ms and exit.
//
//	leaky [-out FILE] [-workers N] [-recyclers N] [-leak-every D]
//	      [-leak-batch N] [-lifetime D]
//
//	-out FILE     once everything runs, write Go's own traceback of all
//	              goroutines (runtime.Stack(buf, true)) to FILE (via
//	              FILE.tmp and a rename), for the grouping oracle.
//	-lifetime D   exit(0) after D as a safety net (default 10m).
//
// Prints "ready <pid>" on stdout once started (and -out written).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

var (
	sink   int
	sinkMu sync.Mutex
	// replies keeps every leaked request's channel reachable, like a
	// request map nobody cleans up.
	replies   []chan int
	repliesMu sync.Mutex
)

//go:noinline
func work(n int) {
	s := 0
	for i := 0; i < n; i++ {
		s += i * i
	}
	sinkMu.Lock()
	sink += s
	sinkMu.Unlock()
}

//go:noinline
func poolWorker(jobs chan int) {
	for j := range jobs {
		work(j)
	}
}

//go:noinline
func startPool(n int) {
	jobs := make(chan int)
	for i := 0; i < n; i++ {
		go poolWorker(jobs)
	}
	go func() {
		for {
			time.Sleep(20 * time.Millisecond)
			jobs <- 1000
		}
	}()
}

//go:noinline
func recycledWorker(jobs chan int, done chan struct{}) {
	work(<-jobs)
	done <- struct{}{}
}

//go:noinline
func superviseRecyclers(n int) {
	jobs := make(chan int)
	done := make(chan struct{})
	for i := 0; i < n; i++ {
		go recycledWorker(jobs, done)
	}
	go func() {
		for {
			time.Sleep(5 * time.Millisecond)
			jobs <- 100
		}
	}()
	for {
		<-done
		go recycledWorker(jobs, done)
	}
}

//go:noinline
func handleRequest(reply chan int) {
	// Waits for a reply that never comes: the leak.
	<-reply
}

//go:noinline
func serveRequests(every time.Duration, batch int) {
	for {
		for i := 0; i < batch; i++ {
			reply := make(chan int)
			repliesMu.Lock()
			replies = append(replies, reply)
			repliesMu.Unlock()
			go handleRequest(reply)
		}
		time.Sleep(every)
	}
}

//go:noinline
func burstTask() {
	time.Sleep(30 * time.Millisecond)
}

//go:noinline
func burstLoop() {
	for {
		for i := 0; i < 20; i++ {
			go burstTask()
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func main() {
	out := flag.String("out", "", "write runtime.Stack of all goroutines to this `file`")
	workers := flag.Int("workers", 8, "fixed pool size")
	recyclers := flag.Int("recyclers", 6, "recycling pool size")
	leakEvery := flag.Duration("leak-every", 100*time.Millisecond, "leak period")
	leakBatch := flag.Int("leak-batch", 3, "goroutines leaked per period")
	lifetime := flag.Duration("lifetime", 10*time.Minute, "exit after this `duration`")
	flag.Parse()
	if flag.NArg() != 0 || *workers < 0 || *recyclers < 0 || *leakBatch < 0 || *leakEvery <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *lifetime > 0 {
		time.AfterFunc(*lifetime, func() { os.Exit(0) })
	}
	startPool(*workers)
	go superviseRecyclers(*recyclers)
	go serveRequests(*leakEvery, *leakBatch)
	go burstLoop()
	time.Sleep(300 * time.Millisecond)
	if *out != "" {
		buf := make([]byte, 1<<20)
		for {
			n := runtime.Stack(buf, true)
			if n < len(buf) {
				buf = buf[:n]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		tmp := *out + ".tmp"
		if err := os.WriteFile(tmp, buf, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.Rename(tmp, *out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Printf("ready %d\n", os.Getpid())
	select {}
}
