// Command busy is a target for gopeek's fault tests: it must keep making
// progress while gopeek attaches, detaches, is interrupted or killed.
//
//	busy [-n 50] [-busy 500us] [-sleep 25ms]
//
// It prints "ready <pid>" on stdout, then a heartbeat line "tick N" every
// 50ms (N = 1, 2, 3...), and keeps n goroutines alternately burning CPU for
// -busy and sleeping for about -sleep (jittered by ±50%). A test can tell the
// process was left stopped by the heartbeat ceasing to advance.
package main

import (
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

var spins int64

//go:noinline
func burn(d time.Duration) {
	end := time.Now().Add(d)
	x := 0
	for time.Now().Before(end) {
		for i := 0; i < 1000; i++ {
			x += i
		}
	}
	atomic.AddInt64(&spins, int64(x&1))
}

//go:noinline
func churn(id int, busy, sleep time.Duration) {
	seed := uint64(id)*0x9E3779B97F4A7C15 + 1
	for {
		burn(busy)
		seed = seed*6364136223846793005 + 1442695040888963407
		jitter := time.Duration((seed>>16)%uint64(sleep+1)) - sleep/2
		time.Sleep(sleep + jitter)
	}
}

//go:noinline
func heartbeat() {
	t := time.NewTicker(50 * time.Millisecond)
	for n := 1; ; n++ {
		<-t.C
		fmt.Printf("tick %d\n", n)
	}
}

func main() {
	n := flag.Int("n", 50, "number of busy/sleeping goroutines")
	busy := flag.Duration("busy", 500*time.Microsecond, "CPU burst per cycle")
	sleep := flag.Duration("sleep", 25*time.Millisecond, "mean sleep per cycle")
	flag.Parse()
	startCgo()
	for i := 0; i < *n; i++ {
		go churn(i, *busy, *sleep)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	heartbeat()
}
